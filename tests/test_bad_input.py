"""Bad input where it enters: each kind gets a clear error naming file and line, or a counted skip with the reason."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facexai import data


@pytest.fixture(scope="module")
def face(sample_dir: Path) -> Path:
    return next(iter(data.load_lfw(sample_dir).identities.values()))[0]


def _person_set(root: Path, face: Path, names: tuple[str, ...] = ("Ann_A", "Bob_B")) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        for i in (1, 2):
            shutil.copy(face, root / name / f"{name}_{i:04d}.jpg")
    return root


# ---------------------------------------------------------------- images

def test_16_bit_png_is_scaled_not_clipped(face: Path, tmp_path: Path) -> None:
    rgb8 = data.load_image(face)
    grey8 = cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY)
    grey16, bgr16 = tmp_path / "grey16.png", tmp_path / "rgb16.png"
    cv2.imwrite(str(grey16), grey8.astype(np.uint16) * 257)
    cv2.imwrite(str(bgr16), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    got_grey = data.load_image(grey16)
    assert got_grey.dtype == np.uint8 and got_grey.shape == (*grey8.shape, 3)
    assert np.abs(got_grey[..., 0].astype(int) - grey8).max() <= 1
    assert (got_grey == 255).mean() < 0.05  # clipping made 86% of pixels white
    assert np.abs(data.load_image(bgr16).astype(int) - rgb8).max() <= 1


def test_decompression_bomb_is_a_counted_skip(face: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _person_set(tmp_path / "set", face)
    big = root / "Ann_A" / "Ann_A_0003.png"
    Image.new("RGB", (400, 400)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 70_000)  # 160,000 px > 2 x the limit: Pillow's bomb error
    ds = data.load_folder_dataset(root)
    assert ds.n_images == 4
    reasons = dict(ds.skipped)
    assert "decompression-bomb" in reasons[big]
    with pytest.raises(ValueError, match=f"cannot read image {big}.*decompression-bomb"):
        data.load_image(big)


def test_non_utf8_names_are_skipped_with_the_reason(face: Path, tmp_path: Path) -> None:
    root = _person_set(tmp_path / "set", face)
    bad_file = root / "Ann_A" / os.fsdecode(b"Ann_A_\xe9.jpg")
    bad_folder = root / os.fsdecode(b"Jos\xe9_C")
    try:
        shutil.copy(face, bad_file)
        bad_folder.mkdir()
    except (OSError, UnicodeError) as err:
        pytest.skip(f"this file system refuses non-UTF-8 names: {err}")
    shutil.copy(face, bad_folder / "x_0001.jpg")
    ds = data.load_folder_dataset(root)
    assert sorted(ds.identities) == ["Ann_A", "Bob_B"] and ds.n_images == 4
    reasons = dict(ds.skipped)
    assert "not valid UTF-8" in reasons[bad_file] and "not valid UTF-8" in reasons[bad_folder]
    for p in ds.paths():
        str(p).encode("utf-8")  # what crashed study.prepare after all the alignment work


def test_empty_and_nested_folders_are_reported(face: Path, tmp_path: Path) -> None:
    root = _person_set(tmp_path / "set", face)
    (root / "Empty_Person").mkdir()
    nested = root / "Bob_B" / "more"
    nested.mkdir()
    shutil.copy(face, nested / "Bob_B_0009.jpg")
    ds = data.load_folder_dataset(root)
    reasons = dict(ds.skipped)
    assert reasons[root / "Empty_Person"] == "empty folder"
    assert reasons[nested].startswith("nested folder not read")
    assert ds.n_images == 4


# ---------------------------------------------------------------- pair lists

@pytest.fixture(scope="module")
def sample(sample_dir: Path) -> data.FaceDataset:
    return data.load_lfw(sample_dir)


def _pairs_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("", r"pairs\.txt: the pair list is empty"),
    ("\n  \n", r"pairs\.txt: the pair list is empty"),
    ("1 1 1\n", r"pairs\.txt line 1: the header must be"),
    ("one 1\n", r"pairs\.txt line 1: the header must be an integer, got 'one'"),
    ("1 1\n\n{a} 1 x\n{a} 1 {b} 2\n", r"pairs\.txt line 3: an image number must be an integer, got 'x'"),
    ("1 1\n{a} 1 1\n{a} 1 {b} 2\n", r"pairs\.txt line 2: pairs image {a} 1 with itself"),
    ("1 1\n{a} 1 2\n{a} 1 {a} 1\n", r"pairs\.txt line 3: pairs image {a} 1 with itself"),
])
def test_lfw_pair_list_errors_name_file_and_line(sample: data.FaceDataset, tmp_path: Path, text: str,
                                                 message: str) -> None:
    a, b = list(sample.identities)[:2]
    path = _pairs_file(tmp_path / "pairs.txt", text.format(a=a, b=b))
    with pytest.raises(ValueError, match=message.format(a=a)):
        data.read_lfw_pairs(path, sample)


def test_a_pair_list_that_is_not_utf8_names_the_line(sample: data.FaceDataset, tmp_path: Path) -> None:
    a = list(sample.identities)[0]
    path = tmp_path / "pairs.txt"
    path.write_bytes(f"1 1\n{a} 1 2\n".encode() + b"Jos\xe9 1 " + f"{a} 2\n".encode())
    with pytest.raises(ValueError, match=r"pairs\.txt line 3: not UTF-8 text"):
        data.read_lfw_pairs(path, sample)


def test_missing_image_message_names_the_settable_policy(sample: data.FaceDataset, tmp_path: Path) -> None:
    a = list(sample.identities)[0]
    path = _pairs_file(tmp_path / "pairs.txt", f"1 1\n{a} 1 2\n{a} 1 Nobody 1\n")
    with pytest.raises(ValueError, match="on_missing='skip' \\(notebook 00 parameter"):
        data.read_lfw_pairs(path, sample)


def _pair_list(root: Path, lines: list[str], sample: data.FaceDataset) -> Path:
    folder = root / "calfw" / "aligned images"
    folder.mkdir(parents=True)
    for files in list(sample.identities.values())[:2]:
        for f in files[:2]:
            shutil.copy(f, folder / f.name)
    (root / "calfw" / "pairs_CALFW.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("lines, message", [
    ([], r"pairs_CALFW\.txt: the pair list is empty"),
    (["{a1} 1", "{a2} one"], r"pairs_CALFW\.txt line 2: the label must be an integer, got 'one'"),
    (["{a1} 1", "{a1} 1"], r"pairs_CALFW\.txt lines 1-2: pairs image {a1} with itself"),
    (["{a1} 1", "{a2}"], r"pairs_CALFW\.txt line 2: expected `name_NNNN.jpg label`"),
])
def test_pair_list_dataset_errors_name_file_and_line(sample: data.FaceDataset, tmp_path: Path, lines: list[str],
                                                     message: str) -> None:
    a1, a2 = (f.name for f in list(sample.identities.values())[0][:2])
    root = _pair_list(tmp_path, [ln.format(a1=a1, a2=a2) for ln in lines], sample)
    with pytest.raises(ValueError, match=message.format(a1=a1)):
        data.load_pair_list_dataset(root, "calfw")


# ---------------------------------------------------------------- weights files

def test_dlib_predictor_checksum_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from facexai import parsing
    from facexai.models.registry import WeightsError

    assert parsing.SHAPE_PREDICTOR.verified().is_file()  # the installed file matches its record
    wrong = dataclasses.replace(parsing.SHAPE_PREDICTOR, sha256="0" * 64)
    monkeypatch.setattr(parsing, "SHAPE_PREDICTOR", wrong)
    parsing._dlib_models.cache_clear()
    try:
        with pytest.raises(WeightsError, match="checksum mismatch for .*shape_predictor_68_face_landmarks.dat"):
            parsing._dlib_models()
    finally:
        parsing._dlib_models.cache_clear()


def test_pair_list_dataset_skips_non_utf8_names(sample: data.FaceDataset, tmp_path: Path) -> None:
    a1, a2 = list(sample.identities.values())[0][:2]
    root = _pair_list(tmp_path, [f"{a1.name} 1", f"{a2.name} 1"], sample)
    bad = root / "calfw" / "aligned images" / os.fsdecode(b"Jos\xe9_0001.jpg")
    try:
        shutil.copy(a1, bad)
    except (OSError, UnicodeError) as err:
        pytest.skip(f"this file system refuses non-UTF-8 names: {err}")
    dataset, pairs = data.load_pair_list_dataset(root, "calfw")
    assert "not valid UTF-8" in dict(dataset.skipped)[bad] and len(pairs) == 1
