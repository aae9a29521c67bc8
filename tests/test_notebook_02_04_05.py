"""Outputs of notebooks 02 (parsing), 04 (region statistics) and 05 (Bhattacharyya) in the smoke run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facexai import bhattacharyya, parsing, regions

MODELS = {"SFACE", "DLIB"}  # the smoke profile's models
GEOMETRIES = {"arcface112", "dlib150"}


def _figures(root: Path, notebook: str, *stems: str) -> None:
    for stem in stems:
        for ext in ("png", "pdf"):
            path = root / notebook / f"{stem}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path


def check_parsing(figures: Path) -> None:
    out = figures / "02_parsing"
    counts = pd.read_csv(out / "parse_counts.csv")
    assert tuple(counts.columns) == regions.PARSE_COUNTS_COLUMNS
    assert set(counts.geometry) == GEOMETRIES
    assert (counts.parsed + counts["not found (excluded)"] == counts.images).all() and (counts.parsed > 0).all()
    failures = pd.read_csv(out / "parse_failures.csv")
    assert len(failures) == counts["not found (excluded)"].sum()
    assert tuple(failures.columns) == regions.PARSE_FAILURES_COLUMNS
    area = pd.read_csv(out / "area_shares.csv")
    assert tuple(area.columns) == regions.AREA_SHARES_COLUMNS
    assert set(area.region) == set(parsing.CLASS_NAMES)
    np.testing.assert_allclose(area.groupby("geometry").area_share.sum(), 1.0, atol=1e-6)
    assert (area.set_index(["geometry", "region"]).area_share.unstack().loc[:, "nose"] > 0.005).all()
    agree = pd.read_csv(out / "parser_agreement.csv")
    assert tuple(agree.columns) == regions.parser_agreement_columns("mediapipe", "dlib")
    assert set(agree.geometry) == GEOMETRIES and agree.iou.between(0, 1).all()
    assert (agree[agree["class"] == "skin"].iou > 0.6).all()  # two landmark parsers on the same faces
    polygons = pd.read_csv(out / "polygon_definitions.csv")
    assert tuple(polygons.columns) == regions.POLYGON_COLUMNS
    assert set(polygons.parser) == set(parsing.METHODS)
    _figures(figures, "02_parsing", "polygons", *(f"montage_{g}" for g in GEOMETRIES))


def check_region_statistics(figures: Path) -> None:
    out = figures / "04_region_statistics"
    shares = pd.read_csv(out / "region_shares.csv")
    assert tuple(shares.columns) == regions.REGION_SHARES_COLUMNS
    assert set(shares.model) == MODELS and regions.OVERALL in set(shares.layer)
    cells = shares.groupby(["model", "layer"])
    assert (cells.size() == len(regions.REGIONS)).all()
    np.testing.assert_allclose(cells.share.sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(cells.area_share.sum(), 1.0, atol=1e-5)
    assert ((shares.ci_lo <= shares.share + 1e-9) & (shares.share <= shares.ci_hi + 1e-9)).all()
    present = shares.area_share > 0
    np.testing.assert_allclose(shares.enrichment[present], (shares.share / shares.area_share)[present], rtol=1e-6)
    assert shares.n_individuals.between(1, 6).all()
    spread = pd.read_csv(out / "spread.csv")
    assert tuple(spread.columns) == regions.SPREAD_COLUMNS
    assert set(spread.model) == MODELS
    assert spread.n_regions.between(0, len(regions.REGIONS) - 1).all() and spread.entropy.between(0, 1).all()
    published = pd.read_csv(out / "published_comparison.csv")
    assert tuple(published.columns) == regions.NOSE_COMPARISON_COLUMNS
    nose = shares[(shares.layer == regions.OVERALL) & (shares.region == "nose")].set_index("model").share
    np.testing.assert_allclose(published.set_index("model").ours.loc[list(nose.index)], nose)
    assert (published.published_lo == regions.published_nose_range()[0]).all()
    _figures(figures, "04_region_statistics", "overall_shares", "model_region_heatmap", "layer_region_shares",
             "critical_example")


def check_bhattacharyya(figures: Path) -> None:
    out = figures / "05_bhattacharyya"
    means = pd.read_csv(out / "bc_same_different.csv")
    assert tuple(means.columns) == bhattacharyya.BC_SAME_DIFFERENT_COLUMNS
    assert set(means.model) == MODELS and set(means.group) == {bhattacharyya.SAME, bhattacharyya.DIFFERENT}
    assert means["mean"].between(0, 1).all()
    assert ((means.ci_lo <= means["mean"] + 1e-9) & (means["mean"] <= means.ci_hi + 1e-9)).all()
    n = means.pivot_table(index=["model", "layer"], columns="group", values="n")
    assert (n.same == n.different).all() and (n.same > 0).all()
    tests = pd.read_csv(out / "bc_tests.csv")
    assert tuple(tests.columns) == bhattacharyya.BC_TESTS_COLUMNS
    assert len(tests) == len(means) // 2
    assert tests.p_value.between(0, 1).all() and tests.rank_biserial.between(-1, 1).all()
    pub = pd.read_csv(out / "bc_published_comparison.csv")
    assert tuple(pub.columns) == bhattacharyya.BC_PUBLISHED_COLUMNS and len(pub) == 2 * len(MODELS)
    cross = pd.read_csv(out / "bc_cross_model.csv")
    assert tuple(cross.columns) == bhattacharyya.BC_CROSS_MODEL_COLUMNS
    assert set(cross.model_a) == MODELS and len(cross) == 2 * len(MODELS) ** 2
    diag = cross[(cross.model_a == cross.model_b) & (cross.group == bhattacharyya.SAME_PERSON)]
    np.testing.assert_allclose(diag["mean"], 1.0, atol=1e-6)
    assert cross["mean"].between(0, 1 + 1e-9).all()
    crit = pd.read_csv(out / "bc_critical_same_different.csv")
    assert tuple(crit.columns) == bhattacharyya.BC_SAME_DIFFERENT_COLUMNS
    assert set(crit.layer) == {bhattacharyya.OVERALL} and crit["mean"].between(0, 1).all()
    _figures(figures, "05_bhattacharyya", "bc_same_different", "bc_per_layer", "bc_cross_model", "cross_model_example")


def test_parsing_outputs(smoke_run) -> None:
    check_parsing(smoke_run[1])


def test_region_statistics_outputs(smoke_run) -> None:
    check_region_statistics(smoke_run[1])


def test_bhattacharyya_outputs(smoke_run) -> None:
    check_bhattacharyya(smoke_run[1])
