"""Cache keys carry what defines a result: an edited crop template, a swapped checkpoint or a
converter fix never reuses results cached before the change."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facexai import align, data, embed, profiles, study
from facexai.models import iresnet, registry, sface


class _TinyNet(nn.Module):
    """A small fixed network standing in for a backbone: the test is about keys, not the model."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 7, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x / 255.0).mean((2, 3))


@pytest.fixture(scope="module")
def faces(sample_dir: Path) -> list[str]:
    return [str(files[0]) for files in list(data.load_lfw(sample_dir).identities.values())[:2]]


def test_an_edited_crop_template_is_not_served_old_embeddings(faces: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = profiles.resolve("smoke", cache_root=str(tmp_path))
    model = registry.FaceModel(registry.get_spec("SFACE"), nn.Identity(), _TinyNet(), {"conv": "conv"}).eval()
    crops, keys = study.crops(cfg, faces, "arcface112")
    before = embed.cached_embed(model, crops, keys, cfg.cache_root)
    geo = align.GEOMETRIES["arcface112"]
    shifted = tuple((x + 6.0, y + 4.0) for x, y in geo.template)  # the same name, another definition
    monkeypatch.setitem(align.GEOMETRIES, "arcface112", dataclasses.replace(geo, template=shifted))
    new_crops, new_keys = study.crops(cfg, faces, "arcface112")
    assert not np.array_equal(new_crops, crops)  # alignment follows the edit ...
    after = embed.cached_embed(model, new_crops, new_keys, cfg.cache_root)
    np.testing.assert_allclose(after, embed.embed(model, new_crops, progress=False), rtol=1e-6)  # ... and so must embeddings
    assert not np.allclose(after, before)


def _save_random_ir18(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(iresnet.build(18).state_dict(), path)


def test_a_swapped_user_checkpoint_is_not_served_old_embeddings(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    path = weights / registry.get_spec("IR18").weights.filename
    crops = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    keys = [f"crop{i}" for i in range(3)]
    _save_random_ir18(path, 1)
    first_model = registry.load_model("IR18", user_weights=weights)
    first = embed.cached_embed(first_model, crops, keys, tmp_path / "cache")
    _save_random_ir18(path, 2)  # same file name, other weights
    second_model = registry.load_model("IR18", user_weights=weights)
    second = embed.cached_embed(second_model, crops, keys, tmp_path / "cache")
    np.testing.assert_allclose(second, embed.embed(second_model, crops, progress=False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(second, first)
    assert second_model.fingerprint != first_model.fingerprint


def test_converter_version_and_weights_are_in_the_model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.get_spec("SFACE")
    before = registry.spec_fingerprint(spec)
    monkeypatch.setattr(sface, "VERSION", sface.VERSION + 1)
    assert registry.spec_fingerprint(spec) != before
    monkeypatch.undo()
    other = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, sha256="0" * 64))
    assert registry.spec_fingerprint(other) != before
    assert registry.spec_fingerprint(spec) == before


def test_crop_keys_carry_the_geometry_definition_and_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    sha = "ab" * 32
    key = align.crop_key(sha, "arcface112")
    assert key.startswith(f"{sha}:arcface112-")
    geo = align.GEOMETRIES["arcface112"]
    monkeypatch.setitem(align.GEOMETRIES, "arcface112", dataclasses.replace(geo, size=113))
    assert align.crop_key(sha, "arcface112") != key
    monkeypatch.setitem(align.GEOMETRIES, "arcface112", dataclasses.replace(geo, description="words only"))
    assert align.crop_key(sha, "arcface112") == key  # the description does not shape the crop
    monkeypatch.setattr(align, "ALIGN_VERSION", align.ALIGN_VERSION + 1)
    assert align.crop_key(sha, "arcface112") != key


def test_a_swapped_user_checkpoint_gets_its_own_map_cache(tmp_path: Path) -> None:
    """Saliency maps are keyed by the model's fingerprint (weights SHA-256 and converter version)."""
    from facexai import saliency, techniques

    weights = tmp_path / "weights"
    weights.mkdir()
    path = weights / registry.get_spec("IR18").weights.filename
    cfg = profiles.resolve("smoke", cache_root=str(tmp_path / "cache"))
    settings = techniques.default_settings("cam")
    names = []
    for seed in (1, 2):  # same file name, other weights
        _save_random_ir18(path, seed)
        model = registry.load_model("IR18", user_weights=weights)
        names.append(saliency._cache_name(cfg, model, ["leam"], ["layer4"], settings, ["k0", "k1"], np.arange(2)))
    assert names[0] != names[1]
