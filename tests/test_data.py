"""Data sets and pairs: the shipped sample, folder loading, LFW/CALFW/CPLFW pair lists, fetch_lfw."""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facexai import data
from facexai.cache import file_sha256


@pytest.fixture(scope="module")
def sample(sample_dir: Path) -> data.FaceDataset:
    return data.load_lfw(sample_dir)


def test_manifest_matches_files(sample_dir: Path) -> None:
    with open(sample_dir / "MANIFEST.csv") as fh:
        rows = list(csv.DictReader(fh))
    on_disk = sorted(str(p.relative_to(sample_dir)) for p in sample_dir.glob("*/*.jpg"))
    assert sorted(r["file"] for r in rows) == on_disk
    for r in rows:
        path = sample_dir / r["file"]
        assert file_sha256(path) == r["sha256"], r["file"]
        assert path.stat().st_size == int(r["bytes"])
        assert r["file"].split("/")[0] == r["name"]


def test_sample_layout(sample: data.FaceDataset) -> None:
    assert sample.n_identities == 60 and sample.n_images == 301 and not sample.skipped
    assert list(sample.identities) == sorted(sample.identities)
    for name, files in sample.identities.items():
        assert 4 <= len(files) <= 6 and files == sorted(files)
        assert all(f.name.startswith(name + "_") for f in files)
    assert len(sample.paths()) == len(sample.labels()) == 301


def test_corrupt_and_foreign_files_are_counted_skips(sample: data.FaceDataset, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    names = list(sample.identities)[:2]
    for name in names:
        shutil.copytree(sample.identities[name][0].parent, tmp_path / name)
    good = tmp_path / names[0] / "Good_grey.png"
    Image.open(sample.identities[names[0]][0]).convert("L").save(good)
    truncated = tmp_path / names[0] / "Bad_0001.jpg"
    truncated.write_bytes(sample.identities[names[0]][0].read_bytes()[:2000])
    (tmp_path / names[1] / "notes.txt").write_text("not an image")
    (tmp_path / names[1] / "fake.jpg").write_text("not a jpeg")
    with caplog.at_level(logging.WARNING):
        ds = data.load_folder_dataset(tmp_path)
    skipped = {p.name: why for p, why in ds.skipped}
    assert set(skipped) == {"Bad_0001.jpg", "notes.txt", "fake.jpg"}
    assert "extension" in skipped["notes.txt"] and "unreadable" in skipped["fake.jpg"]
    assert good in ds.identities[names[0]]
    assert ds.n_images == sum(len(sample.identities[n]) for n in names) + 1
    assert "skipped 3 entries" in caplog.text


def test_load_image_converts_to_rgb(sample: data.FaceDataset, tmp_path: Path) -> None:
    src = sample.paths()[0]
    rgb = data.load_image(src)
    assert rgb.dtype == np.uint8 and rgb.shape == (250, 250, 3)
    Image.open(src).convert("L").save(tmp_path / "g.png")
    Image.open(src).convert("RGBA").save(tmp_path / "a.png")
    grey, rgba = data.load_image(tmp_path / "g.png"), data.load_image(tmp_path / "a.png")
    assert grey.shape == rgba.shape == (250, 250, 3)
    assert (grey[..., 0] == grey[..., 2]).all() and np.array_equal(rgba, rgb)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 nonsense")
    with pytest.raises(ValueError, match="bad.jpg"):
        data.load_image(tmp_path / "bad.jpg")


def test_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(data.DatasetMissing, match="does not exist"):
        data.load_folder_dataset(tmp_path / "nowhere")
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no identity folders"):
        data.load_folder_dataset(tmp_path)


def _write_pairs(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_read_lfw_pairs_view2_format(sample: data.FaceDataset, tmp_path: Path) -> None:
    a, b, c = list(sample.identities)[:3]
    pairs = data.read_lfw_pairs(_write_pairs(tmp_path / "pairs.txt", "2 1", [
        f"{a} 1 2", f"{a} 1 {b} 3", f"{b} 2 4", f"{c} 1 {a} 4"]), sample)
    assert list(pairs.columns) == data.PAIR_COLUMNS
    assert pairs.fold.tolist() == [0, 0, 1, 1] and pairs.same.tolist() == [True, False, True, False]
    assert pairs.path_b[1] == str(sample.root / b / f"{b}_0003.jpg")
    assert (pairs.name_a == pairs.name_b).tolist() == pairs.same.tolist()


def test_read_lfw_pairs_missing_images(sample: data.FaceDataset, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    a = list(sample.identities)[0]
    path = _write_pairs(tmp_path / "pairs.txt", "1 2", [f"{a} 1 2", f"{a} 1 99", f"{a} 1 Nobody 1", f"{a} 2 Nobody 2"])
    with pytest.raises(ValueError, match=r"3 of 4 pairs .*3 images missing.*Nobody_0001.jpg"):
        data.read_lfw_pairs(path, sample)
    with caplog.at_level(logging.WARNING):
        kept = data.read_lfw_pairs(path, sample, on_missing="skip")
    assert len(kept) == 1 and kept.same[0] and "3 of 4 pairs" in caplog.text
    with pytest.raises(ValueError, match="line 3"):
        data.read_lfw_pairs(_write_pairs(tmp_path / "bad.txt", "1 1", [f"{a} 1 2", f"{a} 1 2"]), sample)


@pytest.mark.shared
def test_official_pairs_on_full_lfw_and_sample(shared_dir: Path, sample: data.FaceDataset) -> None:
    lfw = data.load_lfw(shared_dir / "data/lfw", verify=False)
    pairs = data.read_lfw_pairs(shared_dir / "data/lfw/pairs.txt", lfw)
    assert len(pairs) == 6000 and pairs.same.sum() == 3000
    assert (pairs.groupby("fold").same.agg(["size", "sum"]).values == [600, 300]).all()
    assert pairs.path_a[0].endswith("Abel_Pacheco/Abel_Pacheco_0001.jpg")
    inside = data.read_lfw_pairs(shared_dir / "data/lfw/pairs.txt", sample, on_missing="skip")
    assert len(inside) > 0 and inside.path_a.str.startswith(str(sample.root)).all()


def test_make_pairs_balanced_disjoint_reproducible(sample: data.FaceDataset) -> None:
    pairs = data.make_pairs(sample, n_folds=5, pairs_per_fold=40, seed=0)
    assert list(pairs.columns) == data.PAIR_COLUMNS
    assert (pairs.groupby("fold").same.agg(["size", "sum"]).values == [40, 20]).all()
    assert (pairs.same == (pairs.name_a == pairs.name_b)).all()
    folds = [set(g.name_a) | set(g.name_b) for _, g in pairs.groupby("fold")]
    assert all(not (folds[i] & folds[j]) for i in range(5) for j in range(i + 1, 5))
    keys = {frozenset(k) for k in zip(pairs.path_a, pairs.path_b)}
    assert len(keys) == len(pairs) and (pairs.path_a != pairs.path_b).all()
    known = {str(p) for p in sample.paths()}
    assert pairs.path_a.isin(known).all() and pairs.path_b.isin(known).all()
    assert pairs.equals(data.make_pairs(sample, n_folds=5, pairs_per_fold=40, seed=0))
    assert not pairs.equals(data.make_pairs(sample, n_folds=5, pairs_per_fold=40, seed=1))


def test_make_pairs_small_data(sample: data.FaceDataset, caplog: pytest.LogCaptureFixture) -> None:
    tiny = sample.subset(list(sample.identities)[:4], max_images=2)
    with caplog.at_level(logging.WARNING):
        pairs = data.make_pairs(tiny, n_folds=2, pairs_per_fold=10)
    assert (pairs.groupby("fold").same.agg(["size", "sum"]).values == [4, 2]).all()
    assert "only 2 genuine" in caplog.text  # 2 people x 1 pair each per fold
    with pytest.raises(ValueError, match="fewer folds"):
        data.make_pairs(tiny, n_folds=3)


def test_select_identities(sample: data.FaceDataset, caplog: pytest.LogCaptureFixture) -> None:
    picked = data.select_identities(sample, 10, min_images=5, seed=3)
    assert len(picked) == 10 and picked == sorted(picked)
    assert all(len(sample.identities[n]) >= 5 for n in picked)
    assert picked == data.select_identities(sample, 10, min_images=5, seed=3)
    assert picked != data.select_identities(sample, 10, min_images=5, seed=4)
    six = [n for n, f in sample.identities.items() if len(f) >= 6]
    with caplog.at_level(logging.WARNING):
        assert data.select_identities(sample, 500, min_images=6) == six
    assert f"only {len(six)} identities" in caplog.text


def _pair_list_fixture(sample: data.FaceDataset, root: Path, kind: str, same_label: str) -> list[tuple]:
    """Write a tiny CALFW/CPLFW release: flat 'aligned images/' folder and pairs_<KIND>.txt."""
    images = root / kind / "aligned images"
    images.mkdir(parents=True)
    a, b = list(sample.identities)[:2]
    for p in sample.identities[a][:2] + sample.identities[b][:2]:
        shutil.copyfile(p, images / p.name)
    pairs = [(f"{a}_0001.jpg", f"{a}_0002.jpg", same_label), (f"{a}_0001.jpg", f"{b}_0001.jpg", "0"),
             (f"{b}_0001.jpg", f"{b}_0002.jpg", same_label), (f"{b}_0002.jpg", f"{a}_0002.jpg", "0")]
    lines = [f"{f} {lab}" for fa, fb, lab in pairs for f in (fa, fb)]
    (root / kind / data.PAIR_LIST_FILES[kind]).write_text("\n".join(lines) + "\n")
    return pairs


@pytest.mark.parametrize("kind,same_label", [("calfw", "3"), ("cplfw", "1")])
def test_pair_list_dataset(sample: data.FaceDataset, tmp_path: Path, kind: str, same_label: str) -> None:
    written = _pair_list_fixture(sample, tmp_path, kind, same_label)
    ds, pairs = data.load_pair_list_dataset(tmp_path, kind=kind, n_folds=2)
    assert ds.n_identities == 2 and ds.n_images == 4 and ds.root.name == "aligned images"
    assert pairs.same.tolist() == [True, False, True, False] and pairs.fold.tolist() == [0, 0, 1, 1]
    assert [Path(p).name for p in pairs.path_a] == [w[0] for w in written]
    assert (pairs.name_a == [w[0].rsplit("_", 1)[0] for w in written]).all()
    assert data.load_image(pairs.path_b[3]).shape == (250, 250, 3)


def test_pair_list_dataset_errors(sample: data.FaceDataset, tmp_path: Path) -> None:
    with pytest.raises(data.DatasetMissing, match="CPLFW is not available"):
        data.load_pair_list_dataset(tmp_path, kind="cplfw")
    with pytest.raises(ValueError, match="kind must be one of"):
        data.load_pair_list_dataset(tmp_path, kind="agedb")
    _pair_list_fixture(sample, tmp_path, "calfw", "1")
    pair_file = tmp_path / "calfw" / "pairs_CALFW.txt"
    lines = pair_file.read_text().splitlines()
    pair_file.write_text("\n".join(lines[:1] + [lines[1].replace(" 1", " 0")] + lines[2:]))
    with pytest.raises(ValueError, match="labels 1 and 0 disagree"):
        data.load_pair_list_dataset(tmp_path, kind="calfw")
    pair_file.write_text("\n".join(lines + ["Nobody_0001.jpg 0", lines[0].replace(" 1", " 0")]))
    with pytest.raises(ValueError, match="1 of 5 pairs"):
        data.load_pair_list_dataset(tmp_path, kind="calfw")


def _make_archive(sample: data.FaceDataset, path: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for p in sample.identities[list(sample.identities)[0]]:
            tar.add(p, arcname=f"lfw-deepfunneled/{p.parent.name}/{p.name}")
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_fetch_lfw_verifies_and_extracts_local_archive(sample: data.FaceDataset, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    md5 = _make_archive(sample, tmp_path / "lfw-deepfunneled.tgz")

    def no_download(url: str, path: Path) -> None:
        raise AssertionError("downloaded although the archive is present")

    monkeypatch.setattr(data, "_download", no_download)
    with pytest.raises(ValueError, match="does not match"):
        data.fetch_lfw(tmp_path, md5="0" * 32)
    assert (tmp_path / "lfw-deepfunneled.tgz").is_file() and not (tmp_path / "lfw-deepfunneled").exists()
    folder = data.fetch_lfw(tmp_path, md5=md5)
    assert folder == tmp_path / "lfw-deepfunneled"
    name = list(sample.identities)[0]
    got = data.load_lfw(tmp_path).identities[name]
    assert [file_sha256(p) for p in got] == [file_sha256(p) for p in sample.identities[name]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lfw-deepfunneled", "lfw-deepfunneled.tgz"]
    assert data.fetch_lfw(tmp_path, md5="ignored once extracted") == folder


def test_fetch_lfw_downloads_only_when_absent(sample: data.FaceDataset, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    md5 = _make_archive(sample, tmp_path / "elsewhere.tgz")
    calls = []

    def fake_download(url: str, path: Path) -> None:
        calls.append(url)
        shutil.copyfile(tmp_path / "elsewhere.tgz", path)

    monkeypatch.setattr(data, "_download", fake_download)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert data.fetch_lfw(dest, md5=md5).is_dir() and calls == [data.LFW_URL]


def test_fetch_lfw_refuses_path_traversal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "lfw-deepfunneled.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("lfw-deepfunneled/../../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    monkeypatch.setattr(data, "_download", lambda url, path: None)
    with pytest.raises(ValueError, match="unsafe member"):
        data.fetch_lfw(tmp_path, md5=hashlib.md5(archive.read_bytes()).hexdigest())
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "lfw-deepfunneled").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["lfw-deepfunneled.tgz"]
