"""Notebook 10 (protocol sensitivity) in the smoke run: every declared cell is reported, in the tidy schema."""
import numpy as np
import pandas as pd
import pytest

from facexai import protocol

MODELS = {"SFACE": 6, "DLIB": 16}  # the smoke profile's models and their named layers


@pytest.fixture(scope="module")
def out10(smoke_run):
    return smoke_run[1] / "10_protocol_sensitivity"


@pytest.fixture(scope="module")
def summary(out10):
    return pd.read_csv(out10 / "sweep_summary.csv")


def test_summary_schema(summary):
    assert list(summary.columns[:9]) == ["claim", "definition", "value", "ci_low", "ci_high", "published_lo",
                                         "published_hi", "in_range", "distance"]
    assert list(summary.columns) == protocol.SUMMARY_COLUMNS
    assert summary.in_range.dtype == bool and (summary.distance.dropna() >= 0).all()
    finite = summary.dropna(subset=["ci_low"])
    assert (finite.ci_low <= finite.value + 1e-9).all() and (finite.value <= finite.ci_high + 1e-9).all()
    assert {"bc_same", "bc_different", "bc_gap", "table1_gradcampp_lfw", "drop_map", "drop_random",
            "drop_ratio"} <= set(summary.claim)
    assert "table2_fnc_fnc" not in set(summary.claim)  # FN_C is not a smoke model
    assert set(summary.model) == {*MODELS, protocol.ALL}


def test_every_declared_cell_is_reported(summary):
    grid = protocol.grid("smoke")
    bc = summary[summary.claim == "bc_same"]
    representation = bc.definition.map(lambda d: protocol.parse_definition(d)["representation"])
    channel_reps = [r for r in grid.bc_representations if r != "spatial"]
    for model, n_layers in MODELS.items():
        variants = len(grid.bc_variants) if model in grid.variant_models else 1
        per_variant = len(grid.bc_levels) * (len(grid.bc_aggregations) - 1 + n_layers) * len(grid.bc_sharpening)
        spatial = (bc.model == model) & (representation == "spatial")
        assert spatial.sum() == variants * per_variant, model
        per_rep = len(grid.bc_levels) * (len(grid.channel_aggregations) - 1 + n_layers) * len(grid.bc_sharpening)
        channel = len(channel_reps) * per_rep if model in grid.variant_models else 0
        assert ((bc.model == model) & (representation != "spatial")).sum() == channel, model
    assert set(representation[bc.model == "DLIB"]) == set(grid.bc_representations)
    acc = summary[(summary.claim == "table1_gradcampp_lfw") & (summary.model == "DLIB")]
    n_points = len(grid.operating_points)
    probe = len(grid.accuracy_layers) * len(grid.accuracy_qs) * (2 * n_points + 1)
    both = len(grid.accuracy_layers) * len(grid.both_sides_qs) * n_points
    assert len(acc) == (probe + both) * len(grid.samples)
    factors = acc.definition.map(protocol.parse_definition).apply(pd.Series)
    assert set(factors["measure"]) == set(grid.measures) and set(factors["sample"]) == set(grid.samples)
    assert (factors.groupby("sample").size() == probe + both).all()
    probes = acc[factors["measure"] == "rank1"].groupby(factors["sample"]).n.unique()  # rank-1: one unit per probe
    assert list(probes["in_sample"]) == [probes["held_out"][0] * grid.in_sample_probes]  # one held out per person
    diff = summary[(summary.claim == "table1_in_sample_minus_held_out") & (summary.model == "DLIB")]
    assert len(diff) == probe + both  # one paired difference per definition


def test_values_are_in_their_domains(summary):
    bc = summary[summary.claim.isin(["bc_same", "bc_different"])]
    assert bc.value.between(0, 1).all()
    acc = summary[summary.claim == "table1_gradcampp_lfw"]
    assert acc.value.between(0, 1).all()
    rand = summary[summary.claim == "drop_random"].copy()
    rand["setting"] = rand.definition.map(lambda d: protocol.parse_definition(d)["setting"])
    by = rand.pivot_table(index="model", columns="setting", values="value")
    np.testing.assert_allclose(by.white_box, by.cross_model)  # random pixels do not depend on the generator


def test_primary_protocol_is_marked_once_per_claim(summary):
    means = summary[summary.model == protocol.ALL]
    counts = means[means.primary].groupby("claim").size()
    assert (counts == 1).all() and {"bc_same", "table1_gradcampp_lfw", "drop_map"} <= set(counts.index)


def test_closest_and_controls_tables(out10, summary):
    closest = pd.read_csv(out10 / "sweep_closest.csv").set_index("claim")
    means = summary[summary.model == protocol.ALL]
    for claim, row in closest.iterrows():
        g = means[means.claim == claim]
        assert row.n_definitions == len(g) and row.closest_distance == pytest.approx(g.distance.min())
        assert row.min_value == pytest.approx(g.value.min()) and row.max_value == pytest.approx(g.value.max())
    controls = pd.read_csv(out10 / "controls.csv")
    assert set(controls.control) == set(protocol.grid("smoke").controls) and controls.beaten.dtype == bool
    joint = pd.read_csv(out10 / "bc_joint.csv")
    assert joint.max_distance.is_monotonic_increasing


def test_figures_and_reading(out10, smoke_run):
    for name in ("spread", "factor_effects", "samples", "representations"):
        assert (out10 / f"{name}.png").stat().st_size > 10_000 and (out10 / f"{name}.pdf").exists()
    for name in ("grid", "operating_points", "cost", "factor_effects", "sweep_closest", "bc_joint", "samples",
                 "representations"):
        assert (out10 / f"{name}.csv").exists() and (out10 / f"{name}.md").exists()
    executed = (smoke_run[2] / "10_protocol_sensitivity.ipynb").read_text()
    assert "in range under" in executed and "the critical pixels beat the control" in executed
    assert "in-sample minus held-out" in executed and "channel_grad_x_activation: same" in executed


def test_the_paired_arms_tables(out10):
    samples = pd.read_csv(out10 / "samples.csv")
    grid = protocol.grid("smoke")
    assert len(samples) == len(grid.accuracy_layers) * len(grid.accuracy_qs) and samples.value.between(-1, 1).all()
    reps = pd.read_csv(out10 / "representations.csv")
    assert set(reps.representation) == set(grid.bc_representations) and set(reps.model) == set(grid.variant_models)
    assert set(reps.level) == set(grid.bc_levels) and set(reps.claim) == {"bc_same", "bc_different", "bc_gap"}
    wide = reps.pivot_table(index=["model", "level", "representation"], columns="claim", values="value")
    np.testing.assert_allclose(wide.bc_gap, wide.bc_same - wide.bc_different, atol=1e-9)
