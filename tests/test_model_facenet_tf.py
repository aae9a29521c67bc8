"""FN_C converter (facexai.models.facenet_tf) against OpenCV dnn running the same frozen TF graph."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import facexai  # noqa: F401  (compat layer before facenet_pytorch)
from facexai.models import facenet_tf
from conftest import vendor_file

#: Three LFW people, two photos each: same-person pairs are (0,1), (2,3), (4,5).
PEOPLE = ("George_W_Bush", "Colin_Powell", "Serena_Williams")
CROP = 130  # central box of the 250x250 deep-funneled image, ~ an MTCNN face box plus margin
RAW_NODE = "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1"  # graph output before its L2 normalisation


@pytest.fixture(scope="module")
def source() -> Path:
    return vendor_file("FN_C")


@pytest.fixture(scope="module")
def model(source: Path) -> torch.nn.Module:
    """Preprocess + converted backbone, in eval mode."""
    backbone = facenet_tf.build()
    backbone.load_state_dict(facenet_tf.convert(source))
    return torch.nn.Sequential(facenet_tf.Preprocess(), backbone).eval()


@pytest.fixture(scope="module")
def faces(lfw_centre_crops) -> np.ndarray:
    """(6,160,160,3) centre crops of LFW photos of PEOPLE (skips when ../shared is absent)."""
    return lfw_centre_crops(PEOPLE, CROP, 160)


def _pixels(faces: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float()


@pytest.mark.shared
def test_matches_opencv_dnn(source: Path, model: torch.nn.Module, faces: np.ndarray) -> None:
    """Raw and L2-normalised embeddings equal OpenCV's run of the same graph on real faces."""
    net = cv2.dnn.readNetFromTensorflow(str(source))
    blobs = ((faces.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2)
    normed, raw = [], []
    for blob in blobs:  # the graph's reshape fixes batch size 1
        net.setInput(blob[None])
        normed.append(net.forward().reshape(-1))  # the graph's output node, "embeddings"
        raw.append(net.forward(RAW_NODE).reshape(-1))  # OpenCV 5 cannot return both from one call
    with torch.no_grad():
        ours = model(_pixels(faces))
    assert ours.shape == (len(faces), facenet_tf.EMBEDDING_DIM)
    raw_diff = np.abs(ours.numpy() - np.stack(raw)).max()
    normed_diff = np.abs(F.normalize(ours, dim=1).numpy() - np.stack(normed)).max()
    print(f"max abs diff vs OpenCV: raw {raw_diff:.2e}, L2-normalised {normed_diff:.2e}")
    assert normed_diff < 1e-4
    assert raw_diff < 1e-4 * np.abs(np.stack(raw)).max()
    assert ours.norm(dim=1).min() > 2.0  # the backbone returns the un-normalised embedding


@pytest.mark.shared
def test_same_person_closer_than_different(model: torch.nn.Module, faces: np.ndarray) -> None:
    """Every same-person cosine beats every different-person cosine among the six photos."""
    with torch.no_grad():
        emb = F.normalize(model(_pixels(faces)), dim=1)
    cos = (emb @ emb.T).numpy()
    person = np.repeat(np.arange(len(PEOPLE)), 2)
    same = person[:, None] == person[None, :]
    off_diagonal = ~np.eye(len(faces), dtype=bool)
    assert cos[same & off_diagonal].min() > cos[~same].max() + 0.2


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "graph_final.pb"
    with pytest.raises(FileNotFoundError, match="graph_final.pb"):
        facenet_tf.convert(missing)


@pytest.mark.parametrize("content", [b"", b"not a protobuf \xff\xfe" * 50, "truncated"])
def test_corrupt_file_is_named(tmp_path: Path, source: Path, content: bytes | str) -> None:
    """Empty, garbage and truncated files raise ValueError naming the file."""
    bad = tmp_path / "bad_graph.pb"
    if content == "truncated":
        with open(source, "rb") as fh:
            content = fh.read(200_000)
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="bad_graph.pb"):
        facenet_tf.convert(bad)


def test_graph_missing_a_tensor_is_rejected(tmp_path: Path, source: Path) -> None:
    """A well-formed GraphDef lacking one conv bias fails the completeness check, naming the key."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(source.read_bytes())
    dropped = "InceptionResnetV1/Block8/Conv2d_1x1/biases"
    kept = [node for node in graph.node if node.name != dropped]
    del graph.node[:]
    graph.node.extend(kept)
    bad = tmp_path / "incomplete.pb"
    bad.write_bytes(graph.SerializeToString())
    with pytest.raises(ValueError, match=r"incomplete\.pb.*block8\.conv2d\.bias"):
        facenet_tf.convert(bad)


def test_gradients_reach_pixels(model: torch.nn.Module) -> None:
    pixels = (torch.rand(2, 3, facenet_tf.INPUT_SIZE, facenet_tf.INPUT_SIZE) * 255).requires_grad_()
    emb = model(pixels)
    F.cosine_similarity(emb[0:1], emb[1:2]).sum().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all()
    assert pixels.grad.abs().sum(dim=(1, 2, 3)).min() > 0


def test_layers_are_ordered_4d_stages() -> None:
    backbone = facenet_tf.build().eval()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [backbone.get_submodule(path).register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
        for name, path in facenet_tf.LAYERS.items()]
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, facenet_tf.INPUT_SIZE, facenet_tf.INPUT_SIZE))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, facenet_tf.EMBEDDING_DIM)
    assert list(shapes) == list(facenet_tf.LAYERS)  # hooks fired in input-to-output order
    assert all(len(shape) == 4 for shape in shapes.values())
    assert [s[-1] for s in shapes.values()] == sorted((s[-1] for s in shapes.values()), reverse=True)
