"""Sharded execution on Dask (facexai.executor): same cache files and results as in-process, a killed
worker leaves no partial shard, a worker that cannot see the cache root is named, the CLI forwards it."""
from __future__ import annotations

import io
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from facexai import cache, cli, embed, executor, passes, profiles, saliency, study
from facexai.models import load_model

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers run this module's helpers by value

LAYERS = ["conv_6", "conv_14"]
#: explicit map definition, so the cache names below do not follow edits of the [method] table
MAP_SETTINGS = dict(target="cosine", reference="leave_one_out", weighting="elementwise", antialias=False)
#: Cache files of the in-process path for the six images below, as the code before facexai.executor
#: named them (computed at commit d4d39ce): the executor must not change a key, or caches are lost.
BEFORE = {
    "embeddings": "SFACE-2f86dba56a8ea1c9/0dbf4a4f9bafbda8/rows00000000-00000006.npz",
    "maps": "SFACE/5b91bc16085916c5-6330cc2c44aea4f7/rows00000000-00000006.npz",
}


def shard_files(root: Path) -> dict[str, Path]:
    """Every cached array file under ``root`` (alignment, detections, embeddings, maps, channels) by relative path."""
    return {str(p.relative_to(root)): p for sub in ("aligned", "detections", "embeddings", "maps", "channels")
            for p in sorted((root / sub).rglob("*.npz"))}


def compute(cfg: profiles.Config, images: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Align, embed and explain the images with the current executor: (embeddings, maps)."""
    model = load_model("SFACE", cfg.device, cfg.cache_root)
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    emb = embed.cached_embed(model, crops, keys, cfg.cache_root)
    return emb, saliency.image_maps(cfg, model, images, layers=LAYERS, **MAP_SETTINGS).maps


@pytest.fixture(scope="module")
def images(sample_dir) -> pd.DataFrame:
    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:2]
    rows = [(who, str(f)) for who in people for f in sorted((sample_dir / who).glob("*.jpg"))[:3]]
    return pd.DataFrame(rows, columns=["identity", "path"])


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, images):
    """The in-process result and its cache root, with one torch thread like each worker.

    (torch's CPU kernels sum in another order with another thread count: SFACE embeddings made
    with 2 threads differ from 1-thread ones by about 4e-7 relative, so the bitwise comparison
    below holds the thread count equal; the notebook-level test allows that rounding.)
    """
    import torch

    root = tmp_path_factory.mktemp("in-process")
    cfg = profiles.resolve("smoke", cache_root=str(root), run_name="executor-test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return root, compute(cfg, images)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def clean_environment():
    """This process's environment before any cluster of this module started."""
    return dict(os.environ)


@pytest.fixture(autouse=True)
def keep_environment(clean_environment):
    """Dask's nannies write OMP_NUM_THREADS=1 and malloc settings into this process's environment each time
    they (re)start a worker. ``start_local`` undoes it for the start, not for the restart of a killed worker:
    undone after every test, or the session's later subprocesses (the smoke run's kernels) would compute
    with one thread and other float rounding than the smoke references."""
    yield
    os.environ.clear()
    os.environ.update(clean_environment)


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker LocalCluster (one thread each) whose scheduler does not retry a task of a killed worker."""
    import dask
    from distributed import Client

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = executor.start_local(2)
        client = Client(local)
    client.wait_for_workers(2, timeout=120)
    yield client
    client.close()
    local.close()


def use_cluster(client, monkeypatch) -> None:
    """The cluster as the current executor for the rest of the test (after profiles.resolve, which sets it)."""
    monkeypatch.setattr(executor, "_current", executor.Distributed(client, "test"))


def test_scheduler_values():
    for good in ("", "local:1", "local:4", "tcp://10.0.0.5:8786", "tls://host:8786"):
        assert executor.check_scheduler(good) == good
    for bad in ("local", "local:0", "local:x", "host:8786", "dask"):
        with pytest.raises(ValueError, match="neither empty"):
            executor.check_scheduler(bad)
    args = cli.build_parser().parse_args(["--profile", "smoke", "--only", "00", "--scheduler", "local:0"])
    with pytest.raises(cli.UsageError, match="--scheduler: 'local:0'"):
        cli.plan(args)
    args = cli.build_parser().parse_args(["--profile", "smoke", "--only", "00,03", "--scheduler", "local:2"])
    plan = cli.plan(args)
    assert {p["scheduler"] for p in plan.parameters.values()} == {"local:2"}


def environment_variable(name: str) -> str | None:
    """A variable of the worker's environment (``client.run(os.environ.get, ...)`` would pickle this process's)."""
    return os.environ.get(name)


def test_a_local_cluster_leaves_this_environment_alone(monkeypatch):
    """Its worker computes with one thread; this process, and every kernel it starts later, keeps its own setting."""
    from distributed import Client

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # unset: the nanny's default, 1, applies to its worker
    before = dict(os.environ)
    local = executor.start_local(1)
    try:
        assert dict(os.environ) == before
        with Client(local) as client:
            assert set(client.run(environment_variable, "OMP_NUM_THREADS").values()) == {"1"}
    finally:
        local.close()


def test_local_workers_keep_glibc_dynamic_mmap_threshold(cluster):
    """Workers start with MALLOC_MMAP_THRESHOLD_ (Dask's MALLOC_TRIM_THRESHOLD_ alone made LEAM 1.5x slower)."""
    assert set(cluster.run(environment_variable, "MALLOC_MMAP_THRESHOLD_").values()) == {str(executor.MMAP_THRESHOLD)}


def test_in_process_keeps_the_cache_files(in_process):
    """The in-process path writes the files the code before the executor wrote, under the same names."""
    root, (emb, maps) = in_process
    files = shard_files(root)
    assert BEFORE["embeddings"] in {k.removeprefix("embeddings/") for k in files}
    maps_files = [k.removeprefix("maps/") for k in files if k.startswith("maps/")]
    assert maps_files == [BEFORE["maps"]]
    assert emb.shape == (6, 128) and maps.shape == (6, 2, 112, 112)


def test_cluster_writes_the_same_cache_and_results(in_process, cluster, tmp_path, images, monkeypatch):
    """Alignment, embeddings and maps through 2 workers: the same files, equal arrays, equal results."""
    root, (emb, maps) = in_process
    cfg = profiles.resolve("smoke", cache_root=str(tmp_path), run_name="executor-test")
    use_cluster(cluster, monkeypatch)
    emb2, maps2 = compute(cfg, images)
    np.testing.assert_array_equal(emb2, emb)
    np.testing.assert_array_equal(maps2, maps)
    ours, theirs = shard_files(tmp_path), shard_files(root)
    assert sorted(ours) == sorted(theirs)
    for name, path in ours.items():
        a, b = cache.load_npz(path), cache.load_npz(theirs[name])
        assert sorted(a) == sorted(b), name
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=name)


def other_sharded_steps(cfg: profiles.Config, images: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """What notebooks 06-08 and 10 shard besides LEAM: S-RISE and CorrRISE maps (16 masks), the embeddings
    of black-occluded crops (random 1% masks; the occluded crops exist only in memory and travel in the
    task) and channel patterns."""
    from facexai import channel_patterns, occlusion_runner

    model = load_model("SFACE", cfg.device, cfg.cache_root)
    srise = saliency.image_maps(cfg, model, images, explainer="srise", n_masks=16, max_images=0).maps
    corr = saliency.image_maps(cfg, model, images, explainer="corrrise", n_masks=16, max_images=0).maps
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    masks = occlusion_runner.random_masks(keys, crops.shape[1], crops.shape[1] ** 2 // 100, seed=3)
    occluded, okeys = occlusion_runner.occlude(crops, masks, "black", keys)
    channels = channel_patterns.channel_patterns(cfg, model, images, statistics=list(channel_patterns.STATISTICS))
    assert channels.layers == list(model.layers) and sum(channels.channels) == channels.patterns.shape[-1]
    return srise, corr, embed.cached_embed(model, occluded, okeys, cfg.cache_root), channels.patterns


def test_cluster_gives_the_rise_maps_occluded_embeddings_and_channel_patterns(cluster, tmp_path, images,
                                                                              monkeypatch):
    """RISE (notebook 08), occluded embeddings (06, 07) and channel patterns (10) through 2 workers equal the
    1-thread in-process arrays."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = other_sharded_steps(profiles.resolve("smoke", cache_root=str(tmp_path / "alone"), run_name="x"), images)
    finally:
        torch.set_num_threads(threads)
    cfg = profiles.resolve("smoke", cache_root=str(tmp_path / "dask"), run_name="x")
    use_cluster(cluster, monkeypatch)
    passes.reset()
    sharded = other_sharded_steps(cfg, images)
    assert isinstance(executor.current(), executor.Distributed)  # profiles.resolve did not reset it
    made = {(r["model"], r["kind"]): r["images"] for r in passes.worker_rows()}  # the kernel's cost account
    assert made[("SFACE", "grad_all_layers")] == len(images)  # channel patterns: one forward + backward to every layer per image
    assert made[("SFACE", "nograd")] >= len(images) * (2 + 16)  # clean, occluded and 16 RISE masks per image
    for name, ours, theirs in zip(("srise", "corrrise"), sharded, alone):
        assert ours.shape == theirs.shape == (len(images), 1, 112, 112), name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    np.testing.assert_array_equal(sharded[2], alone[2], err_msg="occluded embeddings")
    np.testing.assert_array_equal(sharded[3], alone[3], err_msg="channel patterns")
    assert not np.array_equal(sharded[0], sharded[1])  # two planes, not one twice
    assert sorted(shard_files(tmp_path / "dask")) == sorted(shard_files(tmp_path / "alone"))


def _arm_kill() -> None:
    """On a worker: the next .npz write dies half-way (the process is killed, as by the OOM killer)."""
    def savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half a shard")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    np.savez, np.savez_real = savez, np.savez


def _disarm() -> None:
    if hasattr(np, "savez_real"):
        np.savez = np.savez_real


def test_killed_worker_leaves_no_partial_shard(in_process, cluster, tmp_path, images, monkeypatch):
    """The worker writing the embedding shard is killed mid-write: no shard file; the rerun gives the same rows."""
    from distributed import KilledWorker

    root, (emb, _) = in_process
    cfg = profiles.resolve("smoke", cache_root=str(root), run_name="executor-test")
    model = load_model("SFACE", cfg.device, cfg.cache_root)
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    use_cluster(cluster, monkeypatch)
    cluster.run(_arm_kill)
    try:
        with pytest.raises(KilledWorker):
            embed.cached_embed(model, crops, keys, tmp_path)
    finally:
        cluster.run(_disarm)
    written = list((tmp_path / "embeddings").rglob("*"))
    assert not [p for p in written if p.suffix == ".npz"]  # no shard file, whole or partial
    assert [p for p in written if p.name.endswith(cache.TMP_SUFFIX)]  # the killed write's temporary file
    cluster.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
    np.testing.assert_array_equal(embed.cached_embed(model, crops, keys, tmp_path), emb)


def test_a_worker_that_cannot_see_the_cache_is_named(cluster, tmp_path, monkeypatch):
    """Two workers whose working folders differ see a relative cache root as two different folders."""
    (tmp_path / "a" / "cache").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    first, second = sorted(cluster.scheduler_info()["workers"])
    before = cluster.run(os.getcwd)
    cluster.run(os.chdir, str(tmp_path / "a"), workers=[first])
    cluster.run(os.chdir, str(tmp_path / "b"), workers=[second])
    monkeypatch.chdir(tmp_path / "a")
    try:
        with pytest.raises(executor.CacheNotVisible, match="1 of 2") as err:
            executor.check_cache_visible(cluster, Path("cache"))
        assert f"worker {second}" in str(err.value) and f"worker {first}" not in str(err.value)
        executor.check_cache_visible(cluster, tmp_path / "a" / "cache")  # an absolute root: both see it
    finally:
        for worker, cwd in before.items():
            cluster.run(os.chdir, cwd, workers=[worker])
    assert not list((tmp_path / "a" / "cache").iterdir())  # the probe files are removed


def test_smoke_notebooks_through_a_local_cluster(smoke_run, tmp_path):
    """./run_all.sh --scheduler local:2 on notebooks 00, 01, 03 writes the tables of the in-process smoke run.

    Equal as tables: every non-float cell exactly, floats to 1e-6 relative (torch's 1-thread workers
    round sums differently from the 2-thread in-process kernel; see the ``in_process`` fixture).
    """
    import json
    import subprocess

    repo = profiles.REPO_ROOT
    run = "smoke-dask-test"
    for folder in (repo / "figures" / run, repo / "outputs" / run):
        shutil.rmtree(folder, ignore_errors=True)
    res = subprocess.run([sys.executable, "-P", "-m", "facexai.cli", "--profile", "smoke", "--only", "00,01,03",
                          "--run-name", run, "--cache-dir", str(tmp_path), "--scheduler", "local:2", "--no-html"],
                         cwd=repo, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "Dask LocalCluster: 2 workers (1 thread each)" in res.stdout
    logs = repo / "outputs" / run / "notebooks"
    for nb, bar in (("00_data", "align"), ("03_leam_layers", "leam maps SFACE")):  # one bar of finished shards
        assert re.search(rf"{bar}: 100%.{{0,40}}\d+/\d+ \[[^\]]*shard", (logs / f"{nb}.log").read_text()), nb
    manifest = json.loads((repo / "figures" / run / "manifest.json").read_text())
    assert manifest["options"]["scheduler"] == "local:2"
    reference = smoke_run[1]
    tables = sorted(p.relative_to(reference) for nb in ("00_data", "01_models", "03_leam_layers")
                    for p in (reference / nb).glob("*.csv"))
    assert len(tables) >= 8
    for table in tables:
        ours = pd.read_csv(io.StringIO((repo / "figures" / run / table).read_text().replace(run, "smoke-test")))
        pd.testing.assert_frame_equal(ours, pd.read_csv(reference / table), check_exact=False, rtol=1e-6,
                                      obj=str(table))
