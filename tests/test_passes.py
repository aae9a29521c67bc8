"""Pass counting: exact per model and kind on a toy FaceModel, per-process files summed, the floor and cost model."""
import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from facexai import passes
from facexai.explain import LEAM, GradCAM
from facexai.models.registry import MODELS, FaceModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import cost_account  # noqa: E402


def toy_model(name: str = "TOY") -> FaceModel:
    spec = dataclasses.replace(MODELS["SFACE"], name=name, input_size=8)
    backbone = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Conv2d(2, 2, 3), nn.Flatten())
    return FaceModel(spec, nn.Identity(), backbone, {"conv": "0", "conv2": "1", "flat": "2"}).eval()


def by_kind() -> dict[tuple[str, str], tuple[int, int]]:
    return {(r["model"], r["kind"]): (r["images"], r["calls"]) for r in passes.rows()}


@pytest.fixture(autouse=True)
def fresh_counts():
    passes.reset()
    yield
    passes.reset()


def test_every_image_is_counted_once_and_grad_passes_apart():
    model, images = toy_model(), torch.rand(5, 3, 8, 8) * 255
    with torch.no_grad():
        model(images[:3])
        model(images[3:])
    assert by_kind() == {("TOY", "nograd"): (5, 2)}
    maps = LEAM(model, {"conv": "backbone.0"})(images[:4], lambda e: e.sum(1))  # the explainers' pass
    assert maps.shape == (4, 1, 8, 8)  # its backward reaches the first named layer: the deep kind
    assert by_kind() == {("TOY", "nograd"): (5, 2), ("TOY", "grad_all_layers"): (4, 1)}
    GradCAM(model, {"conv2": "backbone.1"})(images[:2], lambda e: e.sum(1))  # a backward to a later layer only
    assert by_kind()[("TOY", "grad")] == (2, 1)
    toy_model("OTHER")(images[:1])  # grad enabled, no explicit no_grad: an autograd graph, so a grad pass
    assert by_kind()[("OTHER", "grad")] == (1, 1)
    assert all(r["seconds"] > 0 and r["device"] == "cpu" for r in passes.rows())
    with pytest.raises(ValueError, match="expects RGB images"):  # a refused batch is not counted
        model(torch.rand(2, 3, 9, 9))
    assert by_kind()[("TOY", "nograd")] == (5, 2)


def test_grad_kind_is_scoped_and_checked():
    with passes.grad_kind("grad_all_layers"):
        passes.counted("M", torch.zeros(2, 1), lambda: torch.zeros(2, 1, requires_grad=True))
    passes.counted("M", torch.zeros(3, 1), lambda: torch.zeros(3, 1, requires_grad=True))
    assert by_kind() == {("M", "grad_all_layers"): (2, 1), ("M", "grad"): (3, 1)}
    with pytest.raises(ValueError, match="grad kind"):
        with passes.grad_kind("nograd"):
            pass


def test_processes_write_their_own_file_at_exit_and_read_sums_them(tmp_path, monkeypatch):
    code = ("import torch; from facexai import passes\n"
            "for n in (3, 4): passes.counted('M', torch.zeros(n, 1), lambda: torch.zeros(n, 1))\n")
    env = {**os.environ, passes.ENV: str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    assert len(list(tmp_path.glob("passes-*.json"))) == 1
    monkeypatch.setenv(passes.ENV, str(tmp_path))
    passes.write_requested()  # this process has forwarded nothing yet: it writes no file
    assert len(list(tmp_path.glob("passes-*.json"))) == 1
    passes.counted("M", torch.zeros(2, 1), lambda: torch.zeros(2, 1))
    passes.write(tmp_path)
    total = passes.read(tmp_path)
    assert total["processes"] == 2 and torch.get_num_threads() in total["threads"]
    assert [(r["model"], r["kind"], r["images"], r["calls"]) for r in total["rows"]] == [("M", "nograd", 9, 3)]
    assert passes.read(tmp_path / "none") is None
    assert not list(tmp_path.glob("*.tmp"))


def test_a_notebook_kernel_writes_its_counts_after_every_cell(tmp_path):
    """The runner stops a kernel without its exit (no atexit): the counts must be on disk after the cell."""
    cell = "import torch; from facexai import passes; passes.counted('M', torch.zeros(3, 1), lambda: torch.zeros(3, 1))"
    code = ("import os; from IPython.core.interactiveshell import InteractiveShell\n"
            f"InteractiveShell.instance().run_cell({cell!r})\n"
            "os._exit(0)  # no atexit handlers: only the after-cell hook can have written the file\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, passes.ENV: str(tmp_path)}, check=True, timeout=300)
    total = passes.read(tmp_path)
    assert total is not None and [(r["model"], r["images"]) for r in total["rows"]] == [("M", 3)]


def _child_rows(queue):
    queue.put(passes.rows())


def test_a_forked_child_does_not_count_its_parents_passes():
    passes.counted("M", torch.zeros(2, 1), lambda: torch.zeros(2, 1))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_rows, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == []
    child.join(timeout=60)
    assert len(passes.rows()) == 1


COSTS = {"measured": "t", "rows": [
    {"model": "A", "kind": "nograd", "threads": 1, "img_per_s": [8.0, 10.0, 9.0]},
    {"model": "A", "kind": "nograd", "threads": 2, "img_per_s": [20.0, 15.0]},
    {"model": "A", "kind": "grad", "threads": 1, "img_per_s": [4.0]},
    {"model": "A", "kind": "grad", "threads": 2, "img_per_s": [5.0]},
    {"model": "C", "kind": "nograd", "threads": 1, "img_per_s": [10.0]},
    {"model": "C", "kind": "nograd", "threads": 2, "img_per_s": [3.0]},  # 2 threads measured under load
    {"model": "C", "kind": "nograd", "threads": 4, "img_per_s": [30.0]},
]}


def counts(*rows, threads=2):
    return {"processes": 1, "threads": [threads],
            "rows": [{"model": m, "kind": k, "device": d, "images": n, "calls": 1, "seconds": 1.0}
                     for m, k, d, n in rows]}


def test_dask_workers_passes_are_counted_by_the_kernel_and_shared_among_workers(tmp_path):
    """A shard task returns what it forwarded (since); the kernel writes it beside its own passes, and the
    floor prices it at the workers' thread count, divided by the workers that ran in parallel."""
    before = passes.snapshot()
    passes.counted("A", torch.zeros(40, 1), lambda: torch.zeros(40, 1))  # as on a worker, for one shard
    made = passes.since(before)
    assert [(r["model"], r["kind"], r["images"], r["calls"]) for r in made] == [("A", "nograd", 40, 1)]
    assert passes.since(passes.snapshot()) == []
    passes.reset()
    passes.counted("A", torch.zeros(20, 1), lambda: torch.zeros(20, 1))  # the kernel's own passes (threads: 1)
    passes.add_remote(made, threads=1, workers=2)
    passes.add_remote(made, threads=1, workers=2)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = passes.write(tmp_path)
    finally:
        torch.set_num_threads(torch_threads)
    assert sorted(f.name.endswith("-workers.json") for f in files) == [False, True]
    counts = passes.read(tmp_path)
    assert [(r["images"], r["calls"]) for r in counts["rows"]] == [(100, 3)]
    acc = passes.account(counts, COSTS, 8.0)
    assert acc["dask_workers"] == 2 and acc["floor_seconds"] == 6.0  # 20 / 10 + 80 / 10 / 2
    again = cost_account.repriced({"seconds": 8.0, "cost": acc}, COSTS)  # from the manifest entry, as stored
    assert again["floor_seconds"] == 6.0 and again["dask_workers"] == 2
    older = {k: v for k, v in acc.items() if k != "groups"}  # stored before the split was kept: not repriced
    assert cost_account.repriced({"seconds": 8.0, "cost": older}, COSTS)["floor_seconds"] == 6.0
    passes.reset()  # forgets the workers' setup with their counts
    passes.add_remote(made, threads=1, workers=1)
    assert passes.write(tmp_path / "again") and passes.read(tmp_path / "again")["groups"][0]["workers"] == 1


def test_counting_sees_one_models_images_here_and_on_dask_workers():
    """What a block forwarded of one model: its own passes and the shard tasks' passes the workers returned,
    not another model's, nor what was forwarded before the block."""
    model, images = toy_model(), torch.rand(5, 3, 8, 8) * 255
    with torch.no_grad():
        model(images[:2])
        with passes.counting("TOY") as toy, passes.counting("OTHER") as other:
            model(images)
            toy_model("OTHER")(images[:1])
            passes.add_remote([{"model": "TOY", "kind": "nograd", "device": "cpu", "images": 7, "calls": 1,
                                "seconds": 0.1}], threads=1, workers=2)
            assert toy.images == 0  # set when the block ends
    assert (toy.images, other.images) == (12, 1)
    assert passes.images_forwarded("TOY") == 14
    with passes.counting("TOY") as none:
        pass
    assert none.images == 0


def test_rate_takes_the_fastest_repeat_at_up_to_the_thread_count():
    assert passes.rate(COSTS, "A", "nograd", 2) == (20.0, 2)
    assert passes.rate(COSTS, "A", "nograd", 1) == (10.0, 1)
    assert passes.rate(COSTS, "A", "nograd", 8) == (20.0, 2)
    assert passes.rate(COSTS, "C", "nograd", 2) == (10.0, 1)  # never slower than on fewer threads
    assert passes.rate(COSTS, "C", "nograd", 4) == (30.0, 4)
    assert passes.rate(COSTS, "C", "nograd", 0) == (10.0, 1)  # below every measurement: the lowest measured
    assert passes.rate(COSTS, "B", "nograd", 1) is None


def test_account_floor_and_ratio():
    acc = passes.account(counts(("A", "nograd", "cpu", 100), ("A", "grad", "cpu", 10)), COSTS, 14.0)
    assert acc["floor_seconds"] == 7.0 and acc["ratio"] == 2.0  # 100 / 20 + 10 / 5
    assert acc["forward_seconds"] == 2.0 and acc["unpriced"] == []
    acc = passes.account(counts(("A", "nograd", "cpu", 100), ("B", "grad", "cpu", 1), ("A", "grad", "cuda", 5)),
                         COSTS, 10.0)
    assert acc["floor_seconds"] == 5.0 and acc["unpriced"] == ["B/grad/cpu", "A/grad/cuda"]
    assert passes.account(counts(("A", "nograd", "cpu", 1)), None, 3.0)["ratio"] is None  # no table: no floor
    assert passes.account(None, COSTS, 3.0) == {"recorded": False}


def test_cost_model_prediction():
    acc = passes.account(counts(("A", "nograd", "cpu", 100), ("A", "grad", "cpu", 10)), COSTS, 14.0)
    remainder = 14.0 - 7.0
    assert passes.predicted_seconds(acc, COSTS, workers=1, worker_threads=2) == pytest.approx(14.0)
    assert passes.predicted_seconds(acc, COSTS, workers=2, worker_threads=1) == \
        pytest.approx((100 / 10 + 10 / 4) / 2 + remainder)
    # a device at 200 img/s; grad passes at 200 x the measured grad / no-grad ratio (5 / 20)
    assert passes.predicted_seconds(acc, COSTS, img_per_s=200) == pytest.approx(100 / 200 + 10 / 50 + remainder)
    unpriced = passes.account(counts(("B", "nograd", "cpu", 1)), COSTS, 3.0)
    assert passes.predicted_seconds(unpriced, COSTS) is None
    faster = passes.account(counts(("A", "nograd", "cpu", 100), ("A", "grad", "cpu", 10)), COSTS, 4.0)  # floor 7 > wall
    assert passes.predicted_seconds(faster, COSTS, workers=1, worker_threads=2) == pytest.approx(7.0)  # no negative rest


def test_cost_account_prints_the_target_verdicts(tmp_path, capsys):
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps(COSTS))
    notebooks = {
        "01_fast": {"seconds": 10.0, "cost": passes.account(counts(("A", "nograd", "cpu", 160)), COSTS, 10.0)},
        "02_slow": {"seconds": 40.0, "cost": passes.account(counts(("A", "grad", "cpu", 100)), COSTS, 40.0)},
        "03_none": {"seconds": 5.0, "cost": {"recorded": False}},
        "04_old": {"seconds": 5.0},
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"run_name": "r", "profile": "smoke", "notebooks": notebooks}))
    assert cost_account.main([str(manifest), "--costs", str(costs), "--workers", "1", "2",
                              "--img-per-s", "160"]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out.splitlines() if line.startswith("| 0")}
    assert set(rows) == {"01_fast", "02_slow", "03_none"}
    # 01: floor 160 / 20 = 8 s, ratio 1.25; 1 worker x 1 thread: 160 / 10 + 2 = 18; 2 workers: 8 + 2; device: 1 + 2
    assert rows["01_fast"][1:] == ["A nograd 160", "1.0", "8.0", "10.0", "1.25 ok", "10.0", "18.0", "10.0", "3.0 |"]
    # 02: floor 100 / 5 = 20 s, ratio 2.0 above the target
    assert rows["02_slow"][5] == "2.00 **above**"
    assert rows["03_none"][1:] == ["none", "n/a", "n/a", "5.0", "n/a", "n/a", "5.0", "5.0", "5.0 |"]
    # 02's predictions: 100 / 4 + 20 = 45, 12.5 + 20, device grad rate 160 x 5 / 20 = 40: 2.5 + 20
    assert rows["02_slow"][7:] == ["45.0", "32.5", "22.5 |"]
    assert "| **all** |  |  | 28.0 | 55.0 | 1.96 |  | 68.0 | 47.5 | 30.5 |" in out
    missing = cost_account.main([str(manifest), "--costs", str(tmp_path / "absent.json")])
    assert missing == 2


def test_the_smoke_run_records_each_notebooks_passes(smoke_run):
    """The runner gives every kernel its passes folder: the smoke run's manifest holds 03's LEAM passes
    (forward + backward of each selected image per model) and 01's embedding passes."""
    manifest = json.loads((smoke_run[1] / "manifest.json").read_text())["notebooks"]
    for stem, kind in (("01_models", "nograd"), ("03_leam_layers", "grad_all_layers")):
        cost = manifest[stem]["cost"]
        assert cost["recorded"], stem
        assert sum(p["images"] for p in cost["passes"] if p["kind"] == kind) > 0, stem
