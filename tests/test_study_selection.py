"""Notebook 00's selection: min_images counts aligned images, who was dropped is reported, and no
committed table holds this machine's paths."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexai import data, profiles, study
from facexai.profiles import REPO_ROOT


@pytest.fixture(scope="module")
def prepared(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Four sample people with >= 3 images; two images of one person of the first draw hold no face."""
    sample = data.load_lfw(sample_dir)
    people = [n for n, files in sample.identities.items() if len(files) >= 3][:4]
    root = tmp_path_factory.mktemp("faces")
    for name in people:
        shutil.copytree(sample_dir / name, root / name)
    victim = data.select_identities(data.load_lfw(root), 3, 3, seed=0)[0]
    broken = sorted((root / victim).iterdir())[:len(list((root / victim).iterdir())) - 1]
    for path in broken:  # no face: the person keeps one aligned image
        Image.fromarray(np.full((250, 250, 3), 128, np.uint8)).save(path, format="JPEG")
    cfg = profiles.resolve("smoke", data_root=str(root), cache_root=str(root.parent / "cache"), models="SFACE",
                           n_identities=3, min_images=3, n_folds=2, pairs_per_fold=4, run_name="selection-test")
    st, dataset, _ = study.prepare(cfg)
    return cfg, st, dataset, victim, people, broken


def test_min_images_applies_to_aligned_images(prepared) -> None:
    cfg, st, _, victim, people, _ = prepared
    counts = st.images.groupby("identity").size()
    assert (counts >= cfg.min_images).all(), counts.to_dict()
    assert victim not in counts.index
    assert sorted(counts.index) == sorted(set(people) - {victim})  # replaced by the next seeded draw
    assert st.summary["selected_identities"] == 3 and st.summary["dropped_identities"] == 1


def test_dropped_people_are_reported_with_the_reason(prepared) -> None:
    cfg, st, dataset, victim, _, broken = prepared
    (row,) = st.dropped.itertuples()
    assert row.identity == victim and row.aligned == 1 and row.images == len(broken) + 1
    assert "1 aligned images < min_images 3" in row.reason and "no face detected" in row.reason
    assert broken[0].name in row.reason
    reloaded = study.load(cfg)
    assert reloaded.dropped.identity.tolist() == [victim]
    tables = study.report_tables(st, dataset)
    assert tables["dropped_identities"].identity.tolist() == [victim]


def test_report_tables_hold_paths_relative_to_the_data_root(prepared) -> None:
    _, st, dataset, victim, _, broken = prepared
    tables = study.report_tables(st, dataset)
    failures = tables["alignment_failures"]
    assert f"{victim}/{broken[0].name}" in failures.path.tolist()
    for name, table in tables.items():  # the summary shows a data root outside the clone as given
        text = table.to_csv(index=False)
        assert text.count(str(dataset.root)) == (name == "summary"), name
    assert {"faces_found", "face_kept", "face_box"} <= set(st.images.columns)


def test_shown_path_never_shows_this_machine_for_the_sample(tmp_path: Path) -> None:
    assert study.shown_path(REPO_ROOT / "data" / "lfw_sample") == "data/lfw_sample"
    assert study.shown_path(REPO_ROOT.parent / "shared" / "data" / "lfw") == "../shared/data/lfw"
    outside = Path("/") / "opt" / "faces"
    if not outside.resolve().is_relative_to(REPO_ROOT.parent):
        assert study.shown_path(outside) == str(outside)  # outside the clone's folder: as given
    cfg = profiles.resolve("smoke")
    assert str(REPO_ROOT) not in study.shown_path(cfg.data_root)


def test_a_damaged_run_artifact_is_named(prepared) -> None:
    cfg, *_ = prepared
    path = cfg.artifacts_dir / "pairs.csv"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"True", b"Fals", 1))
        with pytest.raises(ValueError, match=f"corrupt cache file {path}.*rerun"):
            study.load(cfg)
    finally:
        path.write_bytes(original)
    assert len(study.load(cfg).pairs)
