"""Region statistics and Bhattacharyya helpers: stated properties and hand-checked cases on synthetic maps."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from facexai import metrics, parsing, parsing_bisenet, regions
from facexai.explain import critical_mask
from facexai.models.registry import WeightsError
from facexai.saliency import MapSet

R = len(regions.REGIONS)
NOSE = parsing.CLASS_IDS["nose"]


def _mapset(maps: np.ndarray, identities: list[str]) -> MapSet:
    images = pd.DataFrame({"identity": identities, "path": [f"/x/{who}_{i}.jpg" for i, who in enumerate(identities)]})
    return MapSet("TOY", "leam", [f"l{k}" for k in range(maps.shape[1])], images, maps.astype(np.float16))


@pytest.fixture
def toy() -> tuple[MapSet, np.ndarray]:
    """Two people x 3 images, 2 layers of random 12x16 maps, random label maps."""
    rng = np.random.default_rng(1)
    maps = rng.random((6, 2, 12, 16)) ** 4
    maps /= maps.sum((-2, -1), keepdims=True)
    return _mapset(maps, ["a"] * 3 + ["b"] * 3), rng.integers(0, R, (6, 12, 16)).astype(np.uint8)


def _count_shares(crit: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Independent reference: bincount of the labels under one mask."""
    counts = np.bincount(labels[crit], minlength=R)
    return counts / counts.sum()


def test_region_shares_match_counts_and_sum_to_one(toy) -> None:
    ms, labels = toy
    crit = critical_mask(ms.maps.astype(np.float32), 5.0)  # (6, 2, H, W)
    shares = regions.region_shares(crit, regions.one_hot(labels)[:, None])
    assert shares.shape == (6, 2, R)
    np.testing.assert_allclose(shares.sum(-1), 1.0, atol=1e-6)
    for i in range(6):
        for layer in range(2):
            np.testing.assert_allclose(shares[i, layer], _count_shares(crit[i, layer], labels[i]), atol=1e-6)


@pytest.mark.parametrize("source", list(regions.LABEL_SOURCES))
def test_person_shares_sum_to_one_for_every_source(toy, source: str) -> None:
    ms, labels = toy
    rs = regions.person_region_shares(ms, labels, np.ones(6, bool), 5.0, source, progress=False)
    assert rs.identities == ["a", "b"] and rs.maps == ["l0", "l1", "overall"]
    assert rs.shares.shape == (2, 3, R) and rs.area.shape == (2, R)
    np.testing.assert_allclose(rs.shares.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(rs.area.sum(-1), 1.0, atol=1e-6)


def test_person_and_image_sources_match_hand_computation(toy) -> None:
    ms, labels = toy
    q = 5.0
    maps = ms.maps.astype(np.float32)
    rs_img = regions.person_region_shares(ms, labels, np.ones(6, bool), q, "image", progress=False)
    rs_per = regions.person_region_shares(ms, labels, np.ones(6, bool), q, "person", progress=False)
    for p, rows in enumerate([range(0, 3), range(3, 6)]):
        # image source: each image's own top q% against its own labels, then the mean over images
        for layer in range(2):
            want = np.mean([_count_shares(critical_mask(maps[i, layer], q), labels[i]) for i in rows], 0)
            np.testing.assert_allclose(rs_img.shares[p, layer], want, atol=1e-6)
        own_overall = [critical_mask(maps[i].mean(0), q) for i in rows]
        want = np.mean([_count_shares(c, labels[i]) for c, i in zip(own_overall, rows)], 0)
        np.testing.assert_allclose(rs_img.shares[p, 2], want, atol=1e-6)
        # person source: the person map's top q% against each image's labels, then the mean over images
        person = maps[list(rows)].mean(0)
        person /= person.sum((-2, -1), keepdims=True)
        for layer, m in enumerate([person[0], person[1], person.mean(0)]):
            crit = critical_mask(m, q)
            want = np.mean([_count_shares(crit, labels[i]) for i in rows], 0)
            np.testing.assert_allclose(rs_per.shares[p, layer], want, atol=1e-5)


def test_mode_source_uses_the_majority_label(toy) -> None:
    ms, _ = toy
    labels = np.zeros((6, 12, 16), np.uint8)
    labels[:, :, 8:] = NOSE  # right half nose in every image ...
    labels[0, :, :] = 1  # ... except one skin image per person: the majority stays nose / other
    labels[3, :, :] = 1
    rs = regions.person_region_shares(ms, labels, np.ones(6, bool), 5.0, "person_mode", progress=False)
    np.testing.assert_allclose(rs.area[:, NOSE], 0.5)
    np.testing.assert_allclose(rs.area[:, parsing.CLASS_IDS["skin"]], 0.0)


@pytest.mark.parametrize("source", list(regions.LABEL_SOURCES))
def test_uniform_map_has_enrichment_one(toy, source: str) -> None:
    """With q = 100 every pixel is critical, so each region's share is its area share."""
    ms, labels = toy
    flat = _mapset(np.full((6, 2, 12, 16), 1 / 192), list(ms.images.identity))
    rs = regions.person_region_shares(flat, labels, np.ones(6, bool), 100.0, source, progress=False)
    table = regions.summarize_shares(rs, n_boot=50)
    present = table.area_share > 0
    np.testing.assert_allclose(table.enrichment[present], 1.0, rtol=1e-5)
    assert table.enrichment[~present].isna().all()
    assert set(table.columns) == {"model", "layer", "region", "share", "ci_lo", "ci_hi", "area_share", "enrichment",
                                  "n_individuals"}


@pytest.mark.parametrize("source", list(regions.LABEL_SOURCES))
def test_map_on_the_nose_gives_nose_share_one(source: str) -> None:
    labels = np.zeros((4, 20, 20), np.uint8)
    labels[:, 4:16, 4:16] = parsing.CLASS_IDS["skin"]
    labels[:, 8:13, 9:12] = NOSE  # 15 nose pixels
    maps = np.zeros((4, 3, 20, 20))
    maps[:, :, 8:13, 9:12] = np.random.default_rng(0).random((4, 3, 5, 3)) + 0.1
    rs = regions.person_region_shares(_mapset(maps, ["a", "a", "b", "b"]), labels, np.ones(4, bool), 3.0, source,
                                      progress=False)  # top 12 of 400 pixels
    np.testing.assert_allclose(rs.shares[:, :, NOSE], 1.0, atol=1e-6)
    table = regions.summarize_shares(rs, n_boot=50)
    nose = table[table.region == "nose"]
    np.testing.assert_allclose(nose.enrichment, 400 / 15, rtol=1e-5)
    assert (nose.ci_lo <= nose.share + 1e-9).all() and (nose.share <= nose.ci_hi + 1e-9).all()


def test_unparsed_images_are_left_out(toy) -> None:
    ms, labels = toy
    ok = np.array([True, False, True, False, False, False])
    garbage = labels.copy()
    garbage[1] = NOSE  # would change the result if it were used
    rs = regions.person_region_shares(ms, garbage, ok, 5.0, "person", progress=False)
    assert rs.identities == ["a"] and rs.n_images.tolist() == [2]
    sub = _mapset(ms.maps[[0, 2]].astype(np.float32), ["a", "a"])
    ref = regions.person_region_shares(sub, labels[[0, 2]], np.ones(2, bool), 5.0, "person", progress=False)
    np.testing.assert_allclose(rs.shares, ref.shares, atol=1e-6)
    with pytest.raises(ValueError, match="no individual has a parsed image"):
        regions.person_region_shares(ms, labels, np.zeros(6, bool), 5.0, "person", progress=False)
    with pytest.raises(ValueError, match="unknown label source 'mean'.*'person'"):
        regions.person_region_shares(ms, labels, ok, 5.0, "mean", progress=False)


def test_spread_measures() -> None:
    one = np.zeros(R)
    one[NOSE] = 0.8
    one[regions.OTHER] = 0.2
    even = np.r_[0.1, np.full(R - 1, 0.9 / (R - 1))]
    off_face = np.eye(R)[regions.OTHER]
    table = regions.spread(np.stack([one, even, off_face]), threshold=0.1)
    assert table.n_regions.tolist() == [1, R - 1, 0]
    np.testing.assert_allclose(table.entropy[:2], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(table.on_face, [0.8, 0.9, 0.0])
    assert table.top_region.tolist()[0] == "nose" and table.top_region[2] == "none"
    np.testing.assert_allclose(table.top_share[:2], [1.0, 1 / (R - 1)])
    assert np.isnan(table.entropy[2]) and np.isnan(table.top_share[2])


def test_published_numbers_live_in_one_place() -> None:
    assert regions.PUBLISHED["nose_share"] == (0.189, 0.297)
    assert regions.PUBLISHED["bc_same"] == (0.32, 0.57) and regions.PUBLISHED["bc_different"] == (0.04, 0.13)
    summary = pd.DataFrame({"model": ["M1", "M2", "M1"], "layer": ["overall", "overall", "l0"],
                            "region": ["nose", "nose", "nose"], "share": [0.2, 0.5, 0.25], "ci_lo": [0.1, 0.4, 0.2],
                            "ci_hi": [0.3, 0.6, 0.3]})
    table = regions.published_nose_comparison(summary)
    assert table.model.tolist() == ["M1", "M2"] and table.within_published_range.tolist() == [True, False]


# ---------------------------------------------------------------- Bhattacharyya

def test_sample_pairs_counts_match_and_are_reproducible() -> None:
    ids = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"]
    same, diff = regions.sample_pairs(ids, seed=3)
    assert len(same) == 6 + 3 + 1 == len(diff)
    ids = np.array(ids)
    assert (ids[same[:, 0]] == ids[same[:, 1]]).all() and (same[:, 0] < same[:, 1]).all()
    assert (ids[diff[:, 0]] != ids[diff[:, 1]]).all() and (diff[:, 0] < diff[:, 1]).all()
    assert len({tuple(p) for p in diff}) == len(diff)
    again = regions.sample_pairs(list(ids), seed=3)
    np.testing.assert_array_equal(again[0], same)
    np.testing.assert_array_equal(again[1], diff)
    other = regions.sample_pairs(list(ids), seed=4)[1]
    assert {tuple(p) for p in other} != {tuple(p) for p in diff}
    capped, capped_diff = regions.sample_pairs(list(ids), seed=3, max_same_per_person=2)
    assert len(capped) == 2 + 2 + 1 == len(capped_diff)
    with pytest.raises(ValueError, match="different-person pairs"):
        regions.sample_pairs(["a", "a", "a", "a", "b"], seed=0)  # 6 same, 4 different exist


def test_pair_bhattacharyya_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((5, 3, 6, 7))
    pairs = np.array([[0, 1], [2, 4], [3, 3], [4, 0]])
    got = metrics.pair_bhattacharyya(maps, pairs, chunk=3)
    p = maps / maps.sum((-2, -1), keepdims=True)
    want = np.array([[np.sqrt(p[i, c] * p[j, c]).sum() for c in range(3)] for i, j in pairs])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got[2], 1.0)
    disjoint = np.zeros((2, 4, 4))
    disjoint[0, :2], disjoint[1, 2:] = 1, 1
    assert metrics.pair_bhattacharyya(disjoint, np.array([[0, 1]]))[0] == 0.0
    with pytest.raises(ValueError, match=r"pair indices must lie in \[0, 5\)"):
        metrics.pair_bhattacharyya(maps, np.array([[0, 5]]))


def test_compare_samples_hand_case() -> None:
    """same = [3, 4] vs different = [1, 2]: U = 4 of 4, exact one-sided p = 1 / C(4, 2), d = 2 / sqrt(0.5)."""
    out = metrics.compare_samples(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert out["U"] == 4.0 and out["rank_biserial"] == 1.0
    assert out["p_value"] == pytest.approx(1 / 6)
    assert out["cohens_d"] == pytest.approx(2 / np.sqrt(0.5))
    tied = metrics.compare_samples(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert tied["rank_biserial"] == 0.0 and tied["cohens_d"] == 0.0 and tied["U"] == 4.5
    assert np.isnan(metrics.compare_samples(np.array([1.0]), np.array([0.0, 0.5]))["cohens_d"])


def test_summarize_bc_tables() -> None:
    same = np.array([[0.5, 0.6], [0.7, 0.8]])
    diff = np.array([[0.1, 0.2], [0.3, 0.4]])
    means, tests = regions.summarize_bc("M", ["l0", "overall"], same, diff, n_boot=100)
    assert list(means.columns) == ["model", "layer", "group", "mean", "ci_lo", "ci_hi", "n"]
    assert list(tests.columns) == ["model", "layer", "U", "p_value", "rank_biserial", "cohens_d"]
    row = means.set_index(["layer", "group"]).loc[("overall", "same")]
    assert row["mean"] == pytest.approx(0.7) and row.n == 2 and row.ci_lo <= 0.7 <= row.ci_hi
    assert (tests.rank_biserial == 1.0).all()
    published = regions.published_bc_comparison(means)
    assert published.set_index("group").loc["same", "ours"] == pytest.approx(0.7)
    assert published.set_index("group").loc["different", "published_hi"] == regions.PUBLISHED["bc_different"][1]


def test_cross_model_bc_of_identical_models() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8))
    table = regions.cross_model_bc({"A": maps, "B": maps.copy()}, n_boot=50)
    same = table[table.group == "same person"]
    np.testing.assert_allclose(same["mean"], 1.0)
    diff = table[table.group == "different people"]
    assert (diff.n == 6).all() and (diff["mean"] < 1).all()
    assert diff["mean"].nunique() == 1  # A-B equals A-A when the maps are equal
    with pytest.raises(ValueError, match="warp them to one geometry"):
        regions.cross_model_bc({"A": maps, "C": rng.random((3, 9, 9))})


def test_common_person_maps_follow_each_images_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity matrices leave the overall person map as is; a 2-pixel shift moves it by 2 pixels."""
    rng = np.random.default_rng(0)
    maps = np.zeros((4, 2, 112, 112))
    maps[..., 40:60, 30:50] = rng.random((4, 2, 20, 20)) + 0.1
    ms = _mapset(maps / maps.sum((-2, -1), keepdims=True), ["a", "a", "b", "b"])
    eye = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (4, 1, 1))
    shift = eye.copy()
    shift[:, 0, 2] = 2.0
    fake = SimpleNamespace(matrices={"arcface112": eye, "dlib150": shift},
                           index=lambda paths: np.arange(len(list(paths))))
    monkeypatch.setattr(regions.align, "align_paths", lambda *a, **k: fake)
    cfg = SimpleNamespace(cache_root=None, device="cpu")
    ids, same = regions.common_person_maps(cfg, ms, "arcface112", "arcface112")
    _, person = ms.person_maps()
    want = ms.overall(person)
    assert ids == ["a", "b"]
    np.testing.assert_allclose(same, want / want.sum((-2, -1), keepdims=True), atol=1e-5)
    _, moved = regions.common_person_maps(cfg, ms, "arcface112", "dlib150")
    assert moved.shape == (2, 150, 150)
    np.testing.assert_allclose(moved[:, :112, 2:114][:, :, :110], same[:, :, :110], atol=1e-5)


# ---------------------------------------------------------------- parsing glue

def test_polygon_table_lists_every_region() -> None:
    table = regions.polygon_table()
    assert len(table) == sum(len(t) for t in parsing.REGIONS.values())
    row = table[(table.parser == "mediapipe") & (table.region == "nose")].iloc[0]
    assert row.filled_as == "convex hull"
    assert row.landmark_indices == " ".join(map(str, parsing.MEDIAPIPE_REGIONS["nose"].indices))


def test_bisenet_parser_is_cached_and_needs_its_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Nose(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(x.shape[0], 19, *x.shape[2:])
            logits[:, parsing_bisenet.BISENET_CLASSES.index("nose")] = 1.0
            return logits

    crops = np.random.default_rng(0).integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    monkeypatch.setenv("FACEXAI_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(WeightsError, match="79999_iter.pth"):
        regions.parse_crops(crops, ["k1", "k2"], "bisenet", tmp_path / "cache")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "79999_iter.pth").write_bytes(b"stand-in")
    monkeypatch.setattr(parsing_bisenet, "load_bisenet", lambda path=None: Nose())
    result = regions.parse_crops(crops, ["k1", "k2"], "bisenet", tmp_path / "cache", progress=False)
    assert result.ok.all() and (result.labels == NOSE).all() and result.labels.shape == (2, 24, 24)

    def fail(*args, **kwargs):
        raise AssertionError("BiSeNet ran again instead of reading the cache")

    monkeypatch.setattr(parsing_bisenet, "parse_bisenet", fail)
    again = regions.parse_crops(crops, ["k1", "k2"], "bisenet", tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again.labels, result.labels)
    with pytest.raises(ValueError, match="unknown parser 'magic'.*mediapipe"):
        regions.parse_crops(crops, ["k1", "k2"], "magic")
