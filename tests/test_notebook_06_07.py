"""Notebooks 06 (occlusion validation) and 07 (transferability) in the smoke run: tables, figures, consistency."""
import json

import numpy as np
import pandas as pd
import pytest

from facexai import occlusion, occlusion_summary
from facexai.published import PUBLISHED

MODELS = {"SFACE", "DLIB"}  # the smoke profile's models
N_PEOPLE = 6  # smoke: 6 individuals, one held-out image each


@pytest.fixture(scope="module")
def out06(smoke_run):
    return smoke_run[1] / "06_occlusion_validation"


@pytest.fixture(scope="module")
def out07(smoke_run):
    return smoke_run[1] / "07_transferability"


def _markdown(executed, stem):
    nb = json.loads((executed / f"{stem}.ipynb").read_text())
    return "\n".join("".join(o["data"]["text/markdown"]) for c in nb["cells"] if c["cell_type"] == "code"
                     for o in c.get("outputs", []) if "text/markdown" in o.get("data", {}))


def test_occlusion_summary(out06):
    s = pd.read_csv(out06 / "occlusion_summary.csv")
    head = ["model", "explainer", "fill", "q", "selection", "mean_drop", "ci_lo", "ci_hi", "recognition_rate",
            "balanced_accuracy", "n_images"]
    assert list(s.columns[:len(head)]) == head
    assert set(s.model) == MODELS and set(s.fill) == set(occlusion.FILLS) and set(s.selection) == {"critical", "random"}
    assert len(s) == len(MODELS) * len(occlusion.FILLS) * 2 and (s.q == 1.0).all() and (s.explainer == "leam").all()
    assert (s.n_images == N_PEOPLE).all() and not s.in_sample.any()
    assert (s.ci_lo <= s.mean_drop + 1e-12).all() and (s.mean_drop <= s.ci_hi + 1e-12).all()
    assert s.mean_drop.between(-1, 2).all() and s.mean_drop.abs().max() > 0
    for col in ["recognition_rate", "balanced_accuracy", "clean_recognition_rate", "clean_balanced_accuracy"]:
        assert s[col].between(0, 1).all(), col
    assert (s.n_genuine > 0).all() and (s.n_impostor > 0).all()
    assert (s[s.selection == "random"].n_seeds == 1).all()  # smoke profile: occlusion_seeds = 1
    # one clean threshold per model, shared by every condition
    assert (s.groupby("model").threshold.nunique() == 1).all()


def test_curves_grow_with_q(out06):
    c = pd.read_csv(out06 / "occlusion_curves.csv")
    assert set(c.q) == {0.25, 0.5, 1.0, 2.0, 5.0} and set(c.fill) == {"black"} and set(c.model) == MODELS
    rand = c[c.selection == "random"].groupby("q").mean_drop.mean()
    assert rand[5.0] > rand[0.25]  # hiding 20x more pixels hurts more (stated property, not a tuned number)
    s = pd.read_csv(out06 / "occlusion_summary.csv")
    at1 = c[c.q == 1.0].set_index(["model", "selection"]).mean_drop
    same = s[s.fill == "black"].set_index(["model", "selection"]).mean_drop
    np.testing.assert_allclose(at1.sort_index(), same.sort_index(), atol=1e-9)  # one experiment, two runs


def test_published_comparison(out06):
    p = pd.read_csv(out06 / "published_comparison.csv")
    pub = PUBLISHED["occlusion_drop"].values
    assert set(p.model) == MODELS and len(p) == 2 * len(MODELS)
    assert (p[p.selection == "critical"].published == pub["map"]).all()
    assert (p[p.selection == "random"].published == pub["random"]).all()
    s = pd.read_csv(out06 / "occlusion_summary.csv")
    s = s[s.fill == "black"].set_index(["model", "selection"]).mean_drop
    np.testing.assert_allclose(p.set_index(["model", "selection"]).ours.sort_index(), s.sort_index())


def test_figures(out06):
    for stem in ["fills", "q_curves", "examples"]:
        for ext in ("png", "pdf"):
            assert (out06 / f"{stem}.{ext}").stat().st_size > 1000, stem


def test_subgroups_need_an_attribute_file(out06, smoke_run):
    """The default run reads no file outside the repository: no subgroup table, and the notebook says why."""
    assert not list(out06.glob("occlusion_subgroups.*"))
    assert "No subgroup analysis" in (smoke_run[2] / "06_occlusion_validation.ipynb").read_text()


def test_transfer_table(out07, out06, smoke_run):
    t = pd.read_csv(out07 / "transfer_table.csv")
    head = ["generation", "evaluation", "explainer", "fill", "q", "recognition_rate", "balanced_accuracy",
            "mean_drop", "n_images"]
    assert list(t.columns[:len(head)]) == head
    assert len(t) == len(MODELS) ** 2 + len(MODELS) and set(t.generation) == MODELS | {"random"}
    assert set(t.evaluation) == MODELS and (t.fill == "black").all() and (t.n_images == N_PEOPLE).all()
    assert t.recognition_rate.between(0, 1).all() and t.balanced_accuracy.between(0, 1).all()
    # the white-box diagonal and the random floor are 06's black-fill numbers (same protocol and cache)
    s = pd.read_csv(out06 / "occlusion_summary.csv")
    s = s[s.fill == "black"]
    for r in t.itertuples():
        if r.generation in (r.evaluation, "random"):
            sel = "random" if r.generation == "random" else "critical"
            ref = s[(s.model == r.evaluation) & (s.selection == sel)].iloc[0]
            assert r.mean_drop == pytest.approx(ref.mean_drop, abs=1e-9)
            assert r.recognition_rate == pytest.approx(ref.recognition_rate)
    for stem in ["transfer_heatmaps", "warped_masks", "transfer_heatmaps_gradcampp"]:
        assert (out07 / f"{stem}.png").stat().st_size > 1000
    reading = _markdown(smoke_run[2], "07_transferability")
    assert "LEAM: black-box stronger than white-box, by recognition rate" in reading
    assert "Grad-CAM++: black-box stronger than white-box, by recognition rate" in reading


def test_gradcampp_transfer_table_and_table2(out07):
    """The poster's explainer gets its own Table 2 analogue, in the layout the ledger reads."""
    t = pd.read_csv(out07 / "transfer_table_gradcampp.csv")
    assert list(t.columns) == occlusion_summary.TRANSFER_COLUMNS and (t.explainer == "gradcam++").all()
    assert len(t) == len(MODELS) ** 2 + len(MODELS) and set(t.generation) == MODELS | {"random"}
    leam = pd.read_csv(out07 / "transfer_table.csv")
    floor = lambda d: d[d.generation == "random"].set_index("evaluation").recognition_rate.sort_index()  # noqa: E731
    pd.testing.assert_series_equal(floor(t), floor(leam))  # same random pixels, same images: the same floor
    for stem, table in [("transfer_table2_recognition", leam), ("transfer_table2_recognition_gradcampp", t)]:
        grid = pd.read_csv(out07 / f"{stem}.csv").set_index(occlusion_summary.TABLE2_INDEX)
        assert list(grid.index) == [*sorted(MODELS, key=list(grid.columns).index), "random", occlusion_summary.CLEAN_ROW]
        cells = table.set_index(["generation", "evaluation"]).recognition_rate
        for gen_model in [*grid.columns, "random"]:
            for ev in grid.columns:
                assert grid.loc[gen_model, ev] == pytest.approx(cells[(gen_model, ev)])  # rows generation, cols evaluation
        clean = table.drop_duplicates("evaluation").set_index("evaluation").clean_recognition_rate
        assert (grid.loc[occlusion_summary.CLEAN_ROW] == clean.reindex(grid.columns)).all()
