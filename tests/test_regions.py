"""Region label maps and region statistics: stated properties and hand-checked cases on synthetic maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facexai import parsing, parsing_bisenet, regions
from facexai.explain import critical_mask
from facexai.models.registry import WeightsError
from facexai.published import PUBLISHED
from facexai.saliency import MapSet
from toy_maps import mapset

R = len(regions.REGIONS)
NOSE = parsing.CLASS_IDS["nose"]


@pytest.fixture
def toy() -> tuple[MapSet, np.ndarray]:
    """Two people x 3 images, 2 layers of random 12x16 maps, random label maps."""
    rng = np.random.default_rng(1)
    maps = rng.random((6, 2, 12, 16)) ** 4
    maps /= maps.sum((-2, -1), keepdims=True)
    return mapset(maps, ["a"] * 3 + ["b"] * 3), rng.integers(0, R, (6, 12, 16)).astype(np.uint8)


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
    flat = mapset(np.full((6, 2, 12, 16), 1 / 192), list(ms.images.identity))
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
    rs = regions.person_region_shares(mapset(maps, ["a", "a", "b", "b"]), labels, np.ones(4, bool), 3.0, source,
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
    sub = mapset(ms.maps[[0, 2]].astype(np.float32), ["a", "a"])
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
    assert not hasattr(regions, "PUBLISHED")  # no second table: read from facexai.published
    assert regions.published_nose_range() == (PUBLISHED["nose_share"].values["lo"], PUBLISHED["nose_share"].values["hi"])
    assert regions.published_nose_range() == (0.189, 0.297)  # the LEAM abstract's 18.9-29.7%
    summary = pd.DataFrame({"model": ["M1", "M2", "M1"], "layer": ["overall", "overall", "l0"],
                            "region": ["nose", "nose", "nose"], "share": [0.2, 0.5, 0.25], "ci_lo": [0.1, 0.4, 0.2],
                            "ci_hi": [0.3, 0.6, 0.3]})
    table = regions.published_nose_comparison(summary)
    assert table.model.tolist() == ["M1", "M2"] and table.within_published_range.tolist() == [True, False]
    assert tuple(table.columns) == regions.NOSE_COMPARISON_COLUMNS


def test_spread_table_has_its_schema_and_hand_values() -> None:
    """Two individuals with all on-face pixels on the nose (1 region) and on nose + an eye (2 regions)."""
    one, two = np.zeros(R), np.zeros(R)
    one[NOSE] = 1.0
    two[NOSE], two[parsing.CLASS_IDS["left_eye"]] = 0.6, 0.4
    shares = np.stack([one, two])[:, None, :]  # (P, maps = [overall], R)
    rs = regions.RegionShares("M", ["a", "b"], [regions.OVERALL], shares, np.full((2, R), 1 / R), np.array([3, 3]),
                              "person", 1.0)
    table = regions.summarize_spread([rs, rs], threshold=0.1, n_boot=50)
    assert tuple(table.columns) == regions.SPREAD_COLUMNS and len(table) == 2
    row = table.iloc[0]
    assert row.n_regions == 1.5 and row.share_with_2plus_regions == 0.5 and row.most_common_top_region == "nose"
    assert row.top_share == pytest.approx(0.8) and row.n_individuals == 2
    assert set(regions.SPREAD_NUMERIC) <= set(table.columns) and "most_common_top_region" not in regions.SPREAD_NUMERIC


def test_summarize_shares_columns_are_its_schema(toy) -> None:
    ms, labels = toy
    rs = regions.person_region_shares(ms, labels, np.ones(6, bool), 5.0, "person", progress=False)
    table = regions.summarize_shares(rs, n_boot=20)
    assert tuple(table.columns) == regions.REGION_SHARES_COLUMNS
    assert len(table) == len(rs.maps) * R and set(table.layer) == {"l0", "l1", regions.OVERALL}


def test_critical_example_uses_only_the_persons_parsed_rows(toy, monkeypatch: pytest.MonkeyPatch) -> None:
    ms, labels = toy
    ok = np.array([False, True, True, True, True, True])  # a's first image not parsed
    seen = {}

    def crops(cfg, paths, geometry):
        seen["paths"] = list(paths)
        return np.zeros((len(paths), 12, 16, 3), np.uint8), list(paths)

    monkeypatch.setattr(regions.study, "crops", crops)
    crop, lab, crit = regions.critical_example(None, ms, labels, ok, "a", "arcface112", 5.0)
    assert seen["paths"] == [ms.images.path[1]] and crop.shape == (12, 16, 3)
    np.testing.assert_array_equal(lab, labels[1])
    person = ms.maps[[1, 2]].astype(np.float32).mean(0)  # a's parsed images only
    person /= person.sum((-2, -1), keepdims=True)
    np.testing.assert_array_equal(crit, critical_mask(person.mean(0), 5.0))
    assert regions.critical_example(None, ms, labels, np.zeros(6, bool), "a", "arcface112") is None
    with pytest.raises(ValueError, match="do not match the maps"):
        regions.critical_example(None, ms, labels[:5], ok[:5], "a", "arcface112")


def _parsed(ok: list[bool], labels: np.ndarray) -> parsing.ParseResult:
    ok = np.array(ok)
    return parsing.ParseResult(labels, np.zeros((len(ok), 0, 2), np.float32), ok, "mediapipe",
                               reasons={int(i): "no face" for i in np.flatnonzero(~ok)})


def test_parse_report_and_area_table() -> None:
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[:, :2] = NOSE  # half of every parsed image is nose
    images = pd.DataFrame({"identity": ["a", "a", "b"], "path": ["/d/a/a_1.jpg", "/d/a/a_2.jpg", "/d/b/b_1.jpg"]})
    parsed = {"g1": _parsed([True, False, True], labels), "g2": _parsed([True, True, True], labels)}
    counts, failures = regions.parse_report(parsed, images)
    assert tuple(counts.columns) == regions.PARSE_COUNTS_COLUMNS
    assert counts.parsed.tolist() == [2, 3] and counts["not found (excluded)"].tolist() == [1, 0]
    assert tuple(failures.columns) == regions.PARSE_FAILURES_COLUMNS
    assert failures.values.tolist() == [["g1", "a", "a_2.jpg", "no face"]]
    area = regions.area_table(parsed)
    assert tuple(area.columns) == regions.AREA_SHARES_COLUMNS
    nose = area[area.region == "nose"].set_index("geometry")
    np.testing.assert_allclose(nose.area_share, 0.5)
    assert nose.n_images.tolist() == [2, 3]
    with pytest.raises(ValueError, match="2 label maps for 3 images"):
        regions.parse_report({"g": _parsed([True, True], labels[:2])}, images)


# ---------------------------------------------------------------- parsing glue

def test_polygon_table_lists_every_region() -> None:
    table = regions.polygon_table()
    assert tuple(table.columns) == regions.POLYGON_COLUMNS
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


def test_bisenet_label_cache_recomputes_a_corrupt_file(tmp_path, monkeypatch) -> None:
    """A damaged BiSeNet label-map cache file is logged, deleted and recomputed, never a crash."""
    torch.manual_seed(0)
    torch.save(parsing_bisenet.BiSeNet().state_dict(), tmp_path / parsing_bisenet.BISENET_WEIGHTS.filename)
    monkeypatch.setenv("FACEXAI_WEIGHTS", str(tmp_path))
    crops = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    first = regions.parse_crops(crops, ["a", "b"], "bisenet", cache_root=tmp_path / "cache", progress=False)
    (cached,) = (tmp_path / "cache" / "parsing").rglob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])  # truncated: not a valid zip any more
    again = regions.parse_crops(crops, ["a", "b"], "bisenet", cache_root=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert np.load(cached)["labels"].shape == first.labels.shape  # rewritten whole
