"""DLIB converter (facexai.models.dlib_resnet) against dlib-bin running the same .dat file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import facexai  # noqa: F401
from facexai.models import dlib_resnet
from conftest import vendor_file

#: Three LFW people, two photos each: same-person pairs are (0,1), (2,3), (4,5).
PEOPLE = ("George_W_Bush", "Colin_Powell", "Serena_Williams")
CROP = 120  # central box of the 250x250 deep-funneled image, roughly a dlib face chip
FILE = "dlib_face_recognition_resnet_model_v1.dat"


@pytest.fixture(scope="module")
def source() -> Path:
    return vendor_file("DLIB")


@pytest.fixture(scope="module")
def model(source: Path) -> torch.nn.Module:
    """Preprocess + converted backbone (strict load), in eval mode."""
    backbone = dlib_resnet.build()
    backbone.load_state_dict(dlib_resnet.convert(source))
    return torch.nn.Sequential(dlib_resnet.Preprocess(), backbone).eval()


@pytest.fixture(scope="module")
def faces(lfw_centre_crops) -> np.ndarray:
    """(6,150,150,3) centre crops of LFW photos of PEOPLE (skips when ../shared is absent)."""
    return lfw_centre_crops(PEOPLE, CROP, 150)


def _pixels(faces: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float()


@pytest.mark.shared
def test_matches_dlib(source: Path, model: torch.nn.Module, faces: np.ndarray) -> None:
    """Raw embeddings equal dlib's compute_face_descriptor on the same 150x150 chips."""
    import dlib
    recognizer = dlib.face_recognition_model_v1(str(source))
    theirs = np.stack([np.array(recognizer.compute_face_descriptor(chip)) for chip in faces])
    with torch.no_grad():
        ours = model(_pixels(faces)).numpy()
    assert ours.shape == (len(faces), dlib_resnet.EMBEDDING_DIM)
    diff = np.abs(ours - theirs).max()
    print(f"max abs diff vs dlib: {diff:.2e} (embedding norms {np.linalg.norm(theirs, axis=1).round(2)})")
    assert diff < 1e-4


@pytest.mark.shared
def test_same_person_closer(model: torch.nn.Module, faces: np.ndarray) -> None:
    """Every same-person cosine exceeds every different-person cosine on the six photos."""
    with torch.no_grad():
        emb = F.normalize(model(_pixels(faces)), dim=1)
    cos = (emb @ emb.T).numpy()
    person = np.repeat(np.arange(len(PEOPLE)), 2)
    same = person[:, None] == person[None, :]
    off_diag = ~np.eye(len(faces), dtype=bool)
    print(f"cosine same {cos[same & off_diag].round(3)}, different max {cos[~same].max():.3f}")
    assert cos[same & off_diag].min() > cos[~same].max()


def test_layers_and_shapes(model: torch.nn.Module) -> None:
    """Every LAYERS path exists and yields a 4-D map; down-sampling follows dlib (no padding,
    zero-padded residual sums: level1 4x4, level0 2x2)."""
    backbone = model[1]
    outputs: dict[str, tuple[int, ...]] = {}
    for friendly, path in dlib_resnet.LAYERS.items():
        backbone.get_submodule(path).register_forward_hook(
            lambda _m, _i, out, friendly=friendly: outputs.__setitem__(friendly, tuple(out.shape)))
    with torch.no_grad():
        model(torch.zeros(2, 3, 150, 150))
    assert list(outputs) == list(dlib_resnet.LAYERS)  # ordered from input to output
    assert all(len(shape) == 4 for shape in outputs.values())
    assert outputs["stem"] == (2, 32, 72, 72) and outputs["pool"] == (2, 32, 35, 35)
    assert outputs["level3_0"] == (2, 64, 17, 17) and outputs["level2_0"] == (2, 128, 8, 8)
    assert outputs["level1_2"] == (2, 256, 4, 4) and outputs["level0_0"] == (2, 256, 2, 2)


def test_gradients_reach_pixels(model: torch.nn.Module) -> None:
    """The full model (Preprocess + backbone) is differentiable down to the input pixels."""
    pixels = (torch.rand(1, 3, 150, 150) * 255).requires_grad_()
    model(pixels).norm().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all()
    assert pixels.grad.abs().sum() > 0


def test_padded_add_zero_fills() -> None:
    """dlib's add_prev: the smaller tensor is zero-padded at the end of C, H and W."""
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 1, 4, 4), 10.0)
    out = dlib_resnet.padded_add(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, :3, :3].eq(11).all() and out[0, 1, :3, :3].eq(1).all()
    assert out[0, 0, 3].eq(10).all() and out[0, 1, 3].eq(0).all()


def test_reader_decodes_dlib_numbers() -> None:
    """dlib's int header (size | 0x80 sign) and float_details (mantissa * 2**exponent)."""
    r = dlib_resnet._Reader(bytes.fromhex("0100" "0296" "00" "8201" "01" "030ad7a3811c" "0110" "8104"))
    assert [r.read_int(), r.read_int(), r.read_int()] == [0, 150, -257]
    assert r.read_float() == pytest.approx(0.04, abs=1e-8) and r.read_float() == 1.0
    with pytest.raises(ValueError, match="truncated"):
        r.read_int()


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / FILE
    with pytest.raises(FileNotFoundError, match=FILE):
        dlib_resnet.convert(missing)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "trailing", "other_net"])
def test_bad_file_names_it(source: Path, tmp_path: Path, damage: str) -> None:
    """Truncated, overwritten, padded or foreign .dat files give a ValueError naming the file."""
    data = source.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "corrupt":
        data = data[:300] + bytes(range(256)) * 4 + data[300 + 1024:]
    elif damage == "trailing":
        data = data + b"\x00"
    else:  # another dlib net: the shape predictor's file next to it
        data = (source.parent / "shape_predictor_5_face_landmarks.dat").read_bytes()
    bad = tmp_path / f"{damage}.dat"
    bad.write_bytes(data)
    with pytest.raises(ValueError, match=f"{damage}.dat"):
        dlib_resnet.convert(bad)
