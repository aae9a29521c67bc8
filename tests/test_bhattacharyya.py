"""Bhattacharyya sampling and summaries (notebook 05): hand-checked cases and stated properties on synthetic maps."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from facexai import bhattacharyya as bcm
from facexai.explain import critical_mask
from facexai.person_maps import OVERALL, PersonMaps
from facexai.published import PUBLISHED
from toy_maps import mapset


def _bc(p: np.ndarray, q: np.ndarray) -> float:
    """Independent reference: the definition, sum sqrt(P Q) of the maps normalised to sum 1."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return float(np.sqrt(p / p.sum() * q / q.sum()).sum())


def test_sample_pairs_counts_match_and_are_reproducible() -> None:
    ids = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"]
    same, diff = bcm.sample_pairs(ids, seed=3)
    assert len(same) == 6 + 3 + 1 == len(diff)
    ids = np.array(ids)
    assert (ids[same[:, 0]] == ids[same[:, 1]]).all() and (same[:, 0] < same[:, 1]).all()
    assert (ids[diff[:, 0]] != ids[diff[:, 1]]).all() and (diff[:, 0] < diff[:, 1]).all()
    assert len({tuple(p) for p in diff}) == len(diff)
    again = bcm.sample_pairs(list(ids), seed=3)
    np.testing.assert_array_equal(again[0], same)
    np.testing.assert_array_equal(again[1], diff)
    other = bcm.sample_pairs(list(ids), seed=4)[1]
    assert {tuple(p) for p in other} != {tuple(p) for p in diff}
    capped, capped_diff = bcm.sample_pairs(list(ids), seed=3, max_same_per_person=2)
    assert len(capped) == 2 + 2 + 1 == len(capped_diff)
    with pytest.raises(ValueError, match="different-person pairs"):
        bcm.sample_pairs(["a", "a", "a", "a", "b"], seed=0)  # 6 same, 4 different exist


def test_summarize_bc_tables() -> None:
    same = np.array([[0.5, 0.6], [0.7, 0.8]])
    diff = np.array([[0.1, 0.2], [0.3, 0.4]])
    means, tests = bcm.summarize_bc("M", ["l0", bcm.OVERALL], same, diff, n_boot=100)
    assert tuple(means.columns) == bcm.BC_SAME_DIFFERENT_COLUMNS
    assert tuple(tests.columns) == bcm.BC_TESTS_COLUMNS
    assert set(bcm.BC_SAME_DIFFERENT_NUMERIC) <= set(means.select_dtypes("number").columns)
    assert set(bcm.BC_TESTS_NUMERIC) <= set(tests.select_dtypes("number").columns)
    assert set(means.group) == {bcm.SAME, bcm.DIFFERENT}
    row = means.set_index(["layer", "group"]).loc[(bcm.OVERALL, bcm.SAME)]
    assert row["mean"] == pytest.approx(0.7) and row.n == 2 and row.ci_lo <= 0.7 <= row.ci_hi
    assert (tests.rank_biserial == 1.0).all()
    with pytest.raises(ValueError, match="2 maps but BC arrays"):
        bcm.summarize_bc("M", ["l0", bcm.OVERALL], same[:, :1], diff)


def test_published_comparison_reads_facexai_published() -> None:
    values = PUBLISHED["bc_same_vs_different"].values
    assert bcm.published_ranges() == {bcm.SAME: (values["same_lo"], values["same_hi"]),
                                      bcm.DIFFERENT: (values["diff_lo"], values["diff_hi"])}
    assert bcm.published_ranges()[bcm.SAME] == (0.32, 0.57)  # the LEAM abstract
    means, _ = bcm.summarize_bc("M", [bcm.OVERALL], np.array([0.4, 0.5]), np.array([0.2, 0.3]), n_boot=20)
    table = bcm.published_bc_comparison(means)
    assert tuple(table.columns) == bcm.BC_PUBLISHED_COLUMNS
    table = table.set_index("group")
    assert table.loc[bcm.SAME, "ours"] == pytest.approx(0.45) and table.loc[bcm.SAME, "within_published_range"]
    assert table.loc[bcm.DIFFERENT, "published_hi"] == values["diff_hi"]
    assert not table.loc[bcm.DIFFERENT, "within_published_range"]  # 0.25 is above 0.13


def test_overall_summary_is_the_overall_rows_side_by_side() -> None:
    means, tests = bcm.summarize_bc("M", ["l0", bcm.OVERALL], np.array([[0.1, 0.9], [0.2, 0.8]]),
                                    np.array([[0.3, 0.5], [0.4, 0.4]]), n_boot=20)
    table = bcm.overall_summary(means, tests)
    assert tuple(table.columns) == bcm.BC_OVERALL_COLUMNS and len(table) == 1
    row = table.iloc[0]
    assert row[bcm.SAME] == pytest.approx(0.85) and row[bcm.DIFFERENT] == pytest.approx(0.45)
    assert row.difference == pytest.approx(0.4) and row.rank_biserial == 1.0


@pytest.fixture
def toy():
    """Three people x 3 images, 2 layers of random 10x12 maps."""
    rng = np.random.default_rng(2)
    maps = rng.random((9, 2, 10, 12)) ** 3
    return mapset(maps / maps.sum((-2, -1), keepdims=True), ["a"] * 3 + ["b"] * 3 + ["c"] * 3)


def test_same_vs_different_matches_the_definition(toy) -> None:
    q = 10.0
    res = bcm.same_vs_different(toy, q, seed=5, n_boot=30)
    same, diff = bcm.sample_pairs(toy.images.identity, 5)
    assert (res.n_same, res.n_different) == (len(same), len(diff)) == (9, 9)
    assert res.maps == ["l0", "l1", bcm.OVERALL]
    maps = toy.maps.astype(np.float64)
    for group, pairs in ((bcm.SAME, same), (bcm.DIFFERENT, diff)):
        rows = res.means[res.means.group == group].set_index("layer")
        for layer, k in (("l0", 0), ("l1", 1)):
            assert rows.loc[layer, "mean"] == pytest.approx(np.mean([_bc(maps[i, k], maps[j, k]) for i, j in pairs]),
                                                            rel=1e-3)  # maps stored float16
        overall = np.mean([_bc(maps[i].mean(0), maps[j].mean(0)) for i, j in pairs])
        assert rows.loc[bcm.OVERALL, "mean"] == pytest.approx(overall, rel=1e-3)
        crit = res.critical_means[res.critical_means.group == group].set_index("layer")
        top = critical_mask(toy.overall(toy.maps), q)
        shared = np.mean([(top[i] & top[j]).sum() / top[i].sum() for i, j in pairs])  # masks of equal size
        assert crit.loc[bcm.OVERALL, "mean"] == pytest.approx(shared)
    values = res.values.groupby("group").bc.mean()
    assert values[bcm.SAME] == res.means.set_index(["layer", "group"]).loc[(bcm.OVERALL, bcm.SAME), "mean"]
    assert tuple(res.tests.columns) == bcm.BC_TESTS_COLUMNS and len(res.tests) == 3


def test_overall_pair_bc_is_same_vs_differents_values(toy) -> None:
    pd.testing.assert_frame_equal(bcm.overall_pair_bc(toy, seed=5), bcm.same_vs_different(toy, seed=5, n_boot=10).values)
    pd.testing.assert_frame_equal(bcm.overall_pair_bc(toy, seed=5, max_same_per_person=1),
                                  bcm.same_vs_different(toy, seed=5, max_same_per_person=1, n_boot=10).values)


def test_same_vs_different_tells_personal_maps_apart() -> None:
    """Maps that are a per-person blob plus noise: same-person BC must exceed different-people BC."""
    rng = np.random.default_rng(0)
    maps = np.full((8, 1, 16, 16), 0.01)
    for i, (y, x) in enumerate([(2, 2)] * 4 + [(10, 10)] * 4):
        maps[i, 0, y:y + 4, x:x + 4] += 1 + rng.random((4, 4))
    res = bcm.same_vs_different(mapset(maps, ["a"] * 4 + ["b"] * 4), q=5.0, n_boot=30)
    summary = bcm.overall_summary(res.means, res.tests).iloc[0]
    assert summary.difference > 0.5 and summary.rank_biserial == 1.0 and summary.p_value < 0.01


def test_combine_stacks_models(toy) -> None:
    one = bcm.same_vs_different(toy, n_boot=10)
    other = bcm.same_vs_different(mapset(toy.maps, list(toy.images.identity), model="OTHER"), n_boot=10)
    tables = bcm.combine([one, other])
    assert set(tables) == {"means", "tests", "critical_means", "critical_tests", "values"}
    assert tables["means"].model.tolist() == ["TOY"] * len(one.means) + ["OTHER"] * len(other.means)
    profile = bcm.layer_profile(tables["means"], "OTHER", other.maps)
    assert list(profile) == [bcm.SAME, bcm.DIFFERENT] and list(profile[bcm.SAME].index) == other.maps


def _person_maps(model: str, maps: np.ndarray, geometry: str = "arcface112", ids=("a", "b", "c")) -> PersonMaps:
    return PersonMaps.from_arrays(model, geometry, "leam", dict(zip(ids, maps)))


def test_cross_model_bc_of_identical_models() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8))
    table = bcm.cross_model_bc([_person_maps("A", maps), _person_maps("B", maps.copy())], n_boot=50)
    assert tuple(table.columns) == bcm.BC_CROSS_MODEL_COLUMNS
    same = table[table.group == bcm.SAME_PERSON]
    np.testing.assert_allclose(same["mean"], 1.0)
    diff = table[table.group == bcm.DIFFERENT_PEOPLE]
    assert (diff.n == 6).all() and (diff["mean"] < 1).all()
    assert diff["mean"].nunique() == 1  # A-B equals A-A when the maps are equal
    want = np.mean([_bc(maps[i], maps[j]) for i in range(3) for j in range(3) if i != j])
    assert diff["mean"].iloc[0] == pytest.approx(want)
    grid = bcm.cross_model_grid(table, bcm.SAME_PERSON, ["B", "A"])
    assert list(grid.index) == ["B", "A"] == list(grid.columns)
    with pytest.raises(ValueError, match="different individuals or geometries"):
        bcm.cross_model_bc([_person_maps("A", maps), _person_maps("C", rng.random((3, 9, 9)), "dlib150")])
    with pytest.raises(ValueError, match="different individuals or geometries"):
        bcm.cross_model_bc([_person_maps("A", maps), _person_maps("C", maps, ids=("a", "b", "d"))])


def test_common_person_maps_follow_each_images_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity matrices leave the overall person map as is; a 2-pixel shift moves it by 2 pixels."""
    rng = np.random.default_rng(0)
    maps = np.zeros((4, 2, 112, 112))
    maps[..., 40:60, 30:50] = rng.random((4, 2, 20, 20)) + 0.1
    ms = mapset(maps / maps.sum((-2, -1), keepdims=True), ["a", "a", "b", "b"])
    eye = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (4, 1, 1))
    shift = eye.copy()
    shift[:, 0, 2] = 2.0
    fake = SimpleNamespace(matrices={"arcface112": eye, "dlib150": shift},
                           index=lambda paths: np.arange(len(list(paths))))
    monkeypatch.setattr(bcm.align, "align_paths", lambda *a, **k: fake)
    cfg = SimpleNamespace(cache_root=None, device="cpu")
    same = bcm.common_person_maps(cfg, ms, "arcface112", "arcface112")
    want = ms.persons().overall()
    assert same.identities == ["a", "b"] and same.model == "TOY" and same.geometry == "arcface112"
    assert same.layers == [OVERALL] and same.images == {"a": list(ms.images.path[:2]), "b": list(ms.images.path[2:])}
    np.testing.assert_allclose(same.overall(), want / want.sum((-2, -1), keepdims=True), atol=1e-5)
    moved = bcm.common_person_maps(cfg, ms, "arcface112", "dlib150")
    assert moved.maps.shape == (2, 1, 150, 150)
    np.testing.assert_allclose(moved.overall()[:, :112, 2:114][:, :, :110], same.overall()[:, :, :110], atol=1e-5)
