"""Notebook 09 (sanity checks) in the smoke run: its tables exist, hold sane values, and the verdict file
has the columns the claims ledger reads."""
import numpy as np
import pandas as pd
import pytest

from facexai import profiles, sanity

SMOKE = profiles.resolve("smoke")
CHECK_MODELS = list(SMOKE.sanity_models) or list(SMOKE.models)


@pytest.fixture(scope="module")
def out(smoke_run):
    return smoke_run[1] / "09_sanity_checks"


def test_verdicts_cover_every_explainer_model_and_check(out):
    v = pd.read_csv(out / "sanity_verdicts.csv")
    assert list(v.columns[:4]) == ["explainer", "model", "check", "verdict"]
    assert set(v.verdict) <= {"passes", "fails"}
    checks = {"model randomisation", "target randomisation (impostor)", "target randomisation (random vector)",
              "faithfulness (deletion)", "faithfulness (insertion)"}
    assert set(v.check) == checks
    assert len(v) == len(sanity.EXPLAINERS) * len(CHECK_MODELS) * len(checks)
    assert set(v.explainer) == set(sanity.EXPLAINERS) and set(v.model) == set(CHECK_MODELS)
    rand = v[v.check.str.contains("randomisation")]
    assert rand.spearman.between(0, 1).all() and rand.ssim.between(-1, 1).all()
    expected = np.where((rand.spearman < rand.threshold) & (rand.ssim < rand.threshold), "passes", "fails")
    assert (rand.verdict == expected).all()  # the file's verdicts follow the stated rule from its own numbers
    assert (out / "sanity_verdicts.md").read_text().strip()


def test_cascade_starts_at_the_trained_model_and_reaches_all_parameters(out):
    c = pd.read_csv(out / "cascade_similarity.csv")
    first = c[c.stage == 0]
    assert np.allclose(first.spearman, 1) and np.allclose(first.ssim, 1)
    for model, g in c.groupby("model"):
        assert g.parameter_share.max() == pytest.approx(1.0), model
        assert g.stage.nunique() == SMOKE.sanity_stages + 1  # stage 0 and the chosen stages
    assert c.spearman.between(-1, 1 + 1e-9).all()


def test_faithfulness_curves_and_aucs(out):
    curves = pd.read_csv(out / "deletion_insertion_curves.csv")
    assert sorted(curves.fraction.unique()) == pytest.approx(np.linspace(0, 1, SMOKE.sanity_steps + 1))
    assert set(curves["mode"]) == {"deletion", "insertion"}
    orders = set(curves.order)
    assert {"random", *sanity.EXPLAINERS, *[f"{e} shifted" for e in sanity.EXPLAINERS]} == orders
    clean = curves[(curves["mode"] == "deletion") & (curves.fraction == 0)]
    assert np.allclose(clean.groupby(["model", "image"]).cosine.nunique(), 1)  # nothing removed: one clean score
    assert curves.acceptance.between(0, 1).all() and curves.cosine.between(-1, 1).all()
    auc = pd.read_csv(out / "deletion_insertion_auc.csv")
    assert auc.auc.between(-1, 1).all()


def test_lattice_tables(out):
    overall = pd.read_csv(out / "lattice_overall.csv")
    assert set(overall.model) == set(SMOKE.models) and set(overall.antialias) == {True, False}
    assert overall.overall_share.between(0, 1).all() and overall.critical_share.between(0, 1).all()
    wide = overall.pivot(index="model", columns="antialias", values="overall_share")
    assert (wide[True] < wide[False]).all()  # the treatment lowers the lattice share of every model
    layers = pd.read_csv(out / "lattice_layers.csv")
    for (model, aa), g in layers.groupby(["model", "antialias"]):
        assert g.contribution.sum() == pytest.approx(1.0, abs=1e-6), (model, aa)
    effect = pd.read_csv(out / "lattice_effect_differences.csv")
    assert set(effect.measure) >= {"nose share", "cosine drop (critical)"}
    assert (effect.ci_lo <= effect.difference + 1e-12).all() and (effect.difference <= effect.ci_hi + 1e-12).all()
    for name in ["lattice_layers", "lattice_examples", "lattice_effect", "cascade_curves", "target_randomisation",
                 "deletion_insertion"]:
        assert (out / f"{name}.png").is_file() and (out / f"{name}.pdf").is_file(), name
