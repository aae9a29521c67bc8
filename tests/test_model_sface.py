"""SFACE converter: the hand-written PyTorch net against onnxruntime (and OpenCV) on real LFW faces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import facexai  # noqa: F401
from facexai.models import sface
from conftest import vendor_file

IDENTITIES = ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Serena_Williams")
PER_IDENTITY = 2


@pytest.fixture(scope="module")
def onnx_path() -> Path:
    return vendor_file("SFACE")


@pytest.fixture(scope="module")
def model(onnx_path: Path) -> torch.nn.Module:
    """Preprocess + converted backbone: RGB [0,255] in, raw 128-d embedding out."""
    backbone = sface.build()
    backbone.load_state_dict(sface.convert(onnx_path))
    return torch.nn.Sequential(sface.Preprocess(), backbone).eval()


@pytest.fixture(scope="module")
def faces(lfw_centre_crops) -> np.ndarray:
    """(8,112,112,3) resizes of the central 128x128 of LFW photos of IDENTITIES (skips without ../shared)."""
    return lfw_centre_crops(IDENTITIES, 128, 112, PER_IDENTITY)


def _embed(model: torch.nn.Module, faces: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(faces.transpose(0, 3, 1, 2).astype(np.float32))).numpy()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.shared
def test_matches_onnxruntime(model, faces, onnx_path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the MXNet export lists initializers as inputs: silence that warning
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    blobs = faces.transpose(0, 3, 1, 2).astype(np.float32)  # the graph takes RGB 0..255 (batch 1)
    reference = np.concatenate([session.run(None, {"data": blob[None]})[0] for blob in blobs])
    ours = _embed(model, faces)
    raw_diff = np.abs(ours - reference).max()
    unit_diff = np.abs(_unit(ours) - _unit(reference)).max()
    print(f"SFACE vs onnxruntime: max abs diff raw {raw_diff:.2e}, L2-normalised {unit_diff:.2e}")
    assert ours.shape == (len(faces), sface.EMBEDDING_DIM)
    assert np.abs(reference).max() > 0.1  # the comparison is not between near-zero vectors
    assert raw_diff < 1e-4 and unit_diff < 1e-4


@pytest.mark.shared
def test_channel_order_matches_opencv(model, faces, onnx_path):
    """OpenCV's own FaceRecognizerSF takes BGR and swaps to RGB: our RGB input must give its features."""
    import cv2
    if not hasattr(cv2, "FaceRecognizerSF"):
        pytest.skip("this OpenCV build has no FaceRecognizerSF")
    recognizer = cv2.FaceRecognizerSF.create(str(onnx_path), "")
    reference = np.stack([recognizer.feature(np.ascontiguousarray(face[:, :, ::-1])).ravel() for face in faces])
    ours = _embed(model, faces)
    assert np.abs(ours - reference).max() < 1e-4
    swapped = _embed(model, np.ascontiguousarray(faces[..., ::-1]))
    assert np.abs(swapped - reference).max() > 1e-2  # BGR input would be detectably different


@pytest.mark.shared
def test_same_person_closer_than_different(model, faces):
    unit = _unit(_embed(model, faces))
    cosine = unit @ unit.T
    person = np.repeat(np.arange(len(IDENTITIES)), PER_IDENTITY)
    for i in range(0, len(faces), PER_IDENTITY):
        same = cosine[i, i + 1]
        different = cosine[i, person != person[i]].max()
        assert same > different, f"{IDENTITIES[person[i]]}: same {same:.3f} <= different {different:.3f}"


def test_layers_are_ordered_4d_stages(model):
    backbone = model[1]
    shapes = {}
    hooks = [backbone.get_submodule(path).register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
        for name, path in sface.LAYERS.items()]
    with torch.no_grad():
        model(torch.rand(1, 3, sface.INPUT_SIZE, sface.INPUT_SIZE) * 255)
    for hook in hooks:
        hook.remove()
    assert list(shapes) == list(sface.LAYERS)
    assert all(len(shape) == 4 for shape in shapes.values())
    sides = [shape[2] for shape in shapes.values()]
    assert sides == sorted(sides, reverse=True) and sides[0] == 112 and sides[-1] == 7


def test_gradients_reach_pixels(model):
    pixels = (torch.rand(2, 3, sface.INPUT_SIZE, sface.INPUT_SIZE) * 255).requires_grad_()
    model(pixels).pow(2).sum().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "face_recognition_sface_2021dec.onnx"
    with pytest.raises(FileNotFoundError, match="face_recognition_sface_2021dec.onnx"):
        sface.convert(missing)


def test_corrupt_file_is_named(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07 this is not an onnx protobuf \xff\xfe" * 10)
    with pytest.raises(ValueError, match="corrupt.onnx"):
        sface.convert(corrupt)


def test_other_onnx_model_is_rejected(onnx_path):
    """A valid ONNX file that is not SFace (the YuNet detector shipped next to it) is refused by name."""
    yunet = next(onnx_path.parent.glob("face_detection_yunet*.onnx"), None)
    if yunet is None:
        pytest.skip("no YuNet ONNX file next to the SFace model")
    with pytest.raises(ValueError, match=yunet.name):
        sface.convert(yunet)


def test_initializers_read_from_their_bytes_equal_onnxs_own_reading(onnx_path):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    assert graph.initializer
    for init in graph.initializer:
        np.testing.assert_array_equal(sface._initializer_array(init), numpy_helper.to_array(init), err_msg=init.name)


def test_packed_floats_skip_every_other_field():
    import onnx

    values = np.array([1.5, -0.0, np.pi, 3e-38], np.float32)
    tensor = onnx.helper.make_tensor("w" * 300, onnx.TensorProto.FLOAT, [2, 2], values.tolist())  # 2-byte lengths
    tensor.doc_string = "after the floats"
    tensor.int64_data.extend([2**40])  # a multi-byte varint field
    read = sface._packed_floats(tensor.SerializeToString(), 4)
    np.testing.assert_array_equal(read, values)
    assert read.flags.writeable  # torch.from_numpy needs its own writable copy
    assert sface._packed_floats(onnx.TensorProto(name="none").SerializeToString(), 4).size == 0
    short = onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    del short.float_data[-1]
    with pytest.raises(ValueError, match="2 float_data values for dims \\[3\\]"):
        sface._initializer_array(short)
