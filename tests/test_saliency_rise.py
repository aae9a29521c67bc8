"""RISE family in the saliency store: maps equal direct S-RISE / CorrRISE calls, one shared cache, subsets."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from facexai import embed, profiles, saliency, study, techniques
from facexai.explain import SRISE, CorrRISE, person_target
from facexai.models import load_model

RISE = dict(n_masks=12, cell_size=16, p=0.5, batch_size=12)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_dir):
    cache = tmp_path_factory.mktemp("cache")
    cfg = profiles.resolve("smoke", cache_root=str(cache), run_name="saliency-rise-test", seed=3)
    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:2]
    rows = [(who, str(f)) for who in people for f in sorted((sample_dir / who).glob("*.jpg"))[:3]]
    images = pd.DataFrame(rows, columns=["identity", "path"])
    model = load_model("SFACE", cache_root=cache)
    crops, _ = study.crops(cfg, images.path.tolist(), "arcface112")
    x = embed.to_tensor(crops)
    with torch.no_grad():
        tgt = person_target(list(model(x).split([3, 3])), "cosine", "leave_one_out")
    return cfg, model, images, x, tgt


def direct(cls, setup) -> np.ndarray:
    """The explainer called on its own (other chunking), raw saliency (N, H, W)."""
    cfg, model, _, x, tgt = setup
    return cls(model, n_masks=12, cell_size=16, p=0.5, seed=cfg.seed, batch_size=5, progress=False)(x, tgt).numpy()


def as_map(raw: np.ndarray) -> np.ndarray:
    return raw / raw.sum((-2, -1), keepdims=True)


def test_maps_equal_direct_calls_and_share_one_cache(setup, monkeypatch):
    cfg, model, images, _, _ = setup
    ms = saliency.image_maps(cfg, model, images, explainer="srise", max_images=0, **RISE)
    assert ms.maps.shape == (6, 1, 112, 112) and ms.maps.dtype == np.float16 and ms.layers == ["input"]
    np.testing.assert_allclose(ms.maps.astype(np.float32).sum((-2, -1)), 1.0, atol=2e-3)
    s = direct(SRISE, setup)
    want = as_map(s - s.min((-2, -1), keepdims=True))
    np.testing.assert_allclose(ms.maps[:, 0].astype(np.float32), want, atol=2e-3 * want.max())
    # CorrRISE comes from the same masked forward passes: no explainer may run now
    monkeypatch.setattr(saliency, "rise_runner", None)
    corr = saliency.image_maps(cfg, model, images, explainer="corrrise", **RISE)
    want = as_map(np.clip(direct(CorrRISE, setup), 0, None))
    assert corr.layers == ["input"] and corr.explainer == "corrrise"
    np.testing.assert_allclose(corr.maps[:, 0].astype(np.float32), want, atol=2e-3 * want.max())
    assert not np.array_equal(corr.maps, ms.maps)


def test_subset_keeps_the_full_references(setup):
    cfg, model, images, _, _ = setup
    full = saliency.image_maps(cfg, model, images, explainer="corrrise", max_images=0, **RISE)
    part = images.path.tolist()[:2]  # two of the first person's three images
    sub = saliency.image_maps(cfg, model, images, explainer="corrrise", paths=part, **RISE)
    assert sub.images.path.tolist() == part and sub.maps.shape == (2, 1, 112, 112)
    want = full.maps[:2].astype(np.float32)
    np.testing.assert_allclose(sub.maps.astype(np.float32), want, atol=2e-3 * want.max())
    # a data frame of just those images would use two-image references: different maps
    alone = saliency.image_maps(cfg, model, images.iloc[:2], explainer="corrrise", **RISE)
    assert np.abs(alone.maps.astype(np.float32) - want).max() > 0.05 * want.max()


def test_rise_explains_the_profiles_image_subset_unless_told(setup):
    cfg, model, images, _, _ = setup
    few = replace(cfg, rise_images=2)  # nobody fits in 2 images: the seeded first person, of three
    sub = saliency.image_maps(few, model, images, explainer="srise", **RISE)
    assert len(sub.images) == 3 and sub.images.identity.nunique() == 1
    every = saliency.image_maps(few, model, images, explainer="srise", max_images=0, **RISE)
    assert len(every.images) == 6
    full = saliency.image_maps(cfg, model, images, explainer="srise", **RISE)
    rows = full.images.path.isin(sub.images.path).to_numpy()
    np.testing.assert_array_equal(sub.maps, full.maps[rows])  # same references: the same maps


def test_family_runner_planes_equal_single_explainers(setup):
    cfg, model, _, x, tgt = setup
    settings = techniques.get("srise").settings(n_masks=12, batch_size=5)
    planes = saliency.rise_runner(model, settings, cfg.seed, progress=False)(x, tgt).numpy()
    assert planes.shape == (6, 2, 112, 112)
    np.testing.assert_allclose(planes[:, 0], direct(SRISE, setup), rtol=1e-5)
    np.testing.assert_allclose(planes[:, 1], direct(CorrRISE, setup), rtol=1e-5, atol=1e-6)


def test_select_rows_takes_whole_individuals():
    images = pd.DataFrame({"identity": list("aaabbcccc"), "path": [f"p{i}" for i in range(9)]})
    assert saliency.select_rows(images).tolist() == list(range(9))
    assert saliency.select_rows(images, 0).tolist() == list(range(9))
    for seed in range(6):
        rows = saliency.select_rows(images, 5, seed=seed)
        people = set(images.identity[rows])
        assert len(rows) <= 5 and len(rows) == images.identity.isin(people).sum()  # whole people, within budget
        left = images.identity[~images.identity.isin(people)].value_counts()
        assert (left + len(rows) > 5).all()  # nobody else would still have fitted
        assert rows.tolist() == saliency.select_rows(images, 5, seed=seed).tolist()
    assert {tuple(saliency.select_rows(images, 5, seed=s)) for s in range(10)} == {(0, 1, 2, 3, 4), (5, 6, 7, 8)}
    assert len(saliency.select_rows(images, 1)) in (2, 3, 4)  # nobody fits in 1: the seeded first person
    assert saliency.select_rows(images, paths=["p5", "p1"]).tolist() == [1, 5]
    with pytest.raises(ValueError, match="not among the images"):
        saliency.select_rows(images, paths=["p1", "nope"])


def test_rise_rejects_layers_and_unknown_names(setup):
    cfg, model, images, _, _ = setup
    with pytest.raises(ValueError, match="explains the input"):
        saliency.image_maps(cfg, model, images, explainer="srise", layers=["conv_6"], **RISE)
    with pytest.raises(ValueError, match="unknown explainer 'rise'; valid: .*corrrise"):
        saliency.image_maps(cfg, model, images, explainer="rise")
