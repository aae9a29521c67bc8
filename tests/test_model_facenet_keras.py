"""FN_M converter: structure and stem checked against the Keras HDF5 itself, identity on real LFW faces."""
import facexai  # noqa: F401  (compat layer first)

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from facexai.models import facenet_keras as fk
from conftest import vendor_file

# unrelated people (no siblings), two LFW images each
PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld",
          "Gerhard_Schroeder", "Ariel_Sharon", "Laura_Bush", "Jennifer_Lopez"]


@pytest.fixture(scope="module")
def source() -> Path:
    return vendor_file("FN_M")


@pytest.fixture(scope="module")
def keras_layers(source: Path) -> dict[str, dict]:
    with h5py.File(source, "r") as fh:
        config = json.loads(fh.attrs["model_config"])
    return {layer["config"]["name"]: layer for layer in config["config"]["layers"]}


@pytest.fixture(scope="module")
def model(source: Path) -> torch.nn.Module:
    net = fk.build()
    net.load_state_dict(fk.convert(source), strict=True)
    return net


def test_torch_structure_matches_keras_config(model, keras_layers):
    """Every conv's kernel/stride/padding and every residual scale follow the Keras model_config."""
    convs = [n for n, layer in keras_layers.items() if layer["class_name"] == "Conv2D"]
    paths = fk.keras_to_torch_paths(convs)
    for name in convs:
        cfg = keras_layers[name]["config"]
        conv = model.get_submodule(paths[name])
        conv = getattr(conv, "conv", conv)
        pad = [k // 2 for k in cfg["kernel_size"]] if cfg["padding"] == "same" else [0, 0]
        if cfg["padding"] == "same":
            assert cfg["strides"] == [1, 1], name  # 'same' with stride 2 would pad asymmetrically
        assert (list(conv.kernel_size), list(conv.stride), list(conv.padding)) == \
            (cfg["kernel_size"], cfg["strides"], pad), name
    lambdas = [layer for layer in keras_layers.values() if layer["class_name"] == "Lambda"]
    assert len(lambdas) == 21
    for layer in lambdas:
        block = paths[layer["inbound_nodes"][0][0][0]].rsplit(".", 1)[0]
        assert model.get_submodule(block).scale == pytest.approx(layer["config"]["arguments"]["scale"])
    # the last Keras block feeds the pooling without a ReLU
    assert keras_layers["AvgPool"]["inbound_nodes"][0][0][0].startswith("add")
    assert model.block8.noReLU


def _numpy_stem(image: np.ndarray, source: Path, keras_layers: dict) -> np.ndarray:
    """Prewhitening + Conv2d_1a/2a/2b (conv, BN, ReLU) in float64 numpy, NHWC, from the HDF5 arrays."""
    x = image.astype(np.float64)[None]
    x = (x - x.mean()) / max(x.std(), 1.0 / np.sqrt(x.size))
    with h5py.File(source, "r") as fh:
        weights = fh["model_weights"]
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
            cfg = keras_layers[name]["config"]
            kernel = weights[name][name]["kernel:0"][()].astype(np.float64)
            kh, kw = kernel.shape[:2]
            if cfg["padding"] == "same":
                x = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
            sh, sw = cfg["strides"]
            win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
            x = np.einsum("nhwcij,ijco->nhwo", win, kernel)
            bn_name = f"{name}_BatchNorm"
            bn = {k: weights[bn_name][bn_name][f"{k}:0"][()] for k in ("beta", "moving_mean", "moving_variance")}
            eps = keras_layers[bn_name]["config"]["epsilon"]
            x = np.maximum((x - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + eps) + bn["beta"], 0)
    return x


def test_stem_matches_numpy_reference(model, source, keras_layers):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(160, 160, 3))
    expected = _numpy_stem(image, source, keras_layers)
    seen = {}
    hook = model.conv2d_2b.register_forward_hook(lambda m, i, out: seen.update(out=out))
    x = torch.from_numpy(image).float().permute(2, 0, 1)[None]
    with torch.no_grad():
        model(fk.Preprocess()(x))
    hook.remove()
    got = seen["out"].permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape == (1, 77, 77, 64)
    assert np.abs(got - expected).max() < 1e-4


def test_same_person_closer_than_different(model, lfw_dir):
    crops = [np.asarray(Image.open(lfw_dir / p / f"{p}_{i:04d}.jpg").convert("RGB"))[45:205, 45:205]
             for p in PEOPLE for i in (1, 2)]
    x = torch.from_numpy(np.stack(crops)).float().permute(0, 3, 1, 2)
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model(fk.Preprocess()(x)), dim=1)
    sim = (emb @ emb.T).numpy()
    n = len(PEOPLE)
    same = np.array([sim[2 * k, 2 * k + 1] for k in range(n)])
    diff = np.array([sim[i, j] for i in range(2 * n) for j in range(i + 1, 2 * n) if i // 2 != j // 2])
    auc = (same[:, None] > diff[None, :]).mean()
    assert same.mean() > diff.mean() + 0.4, (same, diff.mean())
    assert auc > 0.95, (auc, same, np.sort(diff)[-5:])


def test_layers_give_4d_activations(model):
    seen = {}
    hooks = [model.get_submodule(path).register_forward_hook(
        lambda m, i, out, name=name: seen.update({name: out.shape})) for name, path in fk.LAYERS.items()]
    with torch.no_grad():
        out = model(torch.randn(1, 3, fk.INPUT_SIZE, fk.INPUT_SIZE))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, fk.EMBEDDING_DIM)
    assert list(seen) == list(fk.LAYERS) and all(len(s) == 4 for s in seen.values())
    assert seen["block8"][1:] == (1792, 3, 3)


def test_gradients_reach_pixels(model):
    full = torch.nn.Sequential(fk.Preprocess(), model)
    x = (torch.rand(2, 3, 160, 160) * 255).requires_grad_()
    emb = full(x)
    torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad != 0).float().mean() > 0.9
    flat = torch.full((1, 3, 160, 160), 128.0, requires_grad=True)  # std below the floor
    full(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_preprocess_rejects_wrong_layout():
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        fk.Preprocess()(torch.zeros(1, 160, 160, 3))


def test_missing_and_corrupt_files(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        fk.convert(missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(ValueError, match="garbage.h5"):
        fk.convert(garbage)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as fh:
        fh.create_group("model_weights")
    with pytest.raises(ValueError, match="empty.h5"):
        fk.convert(empty)
    other = tmp_path / "other.h5"  # a Keras file of some other network
    with h5py.File(other, "w") as fh:
        group = fh.create_group("model_weights")
        group.attrs["layer_names"] = [b"dense_1"]
        group.create_group("dense_1").attrs["weight_names"] = [b"dense_1/kernel:0"]
        group["dense_1"].create_dataset("dense_1/kernel:0", data=np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="other.h5.*dense_1"):
        fk.convert(other)
