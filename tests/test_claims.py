"""Claims ledger: verdict rules on hand-made tables, missing tables, and every number traced to its file."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from facexai import claims
from facexai.claims import NOT_REPRODUCED, NOT_TESTABLE, PARTLY, REPRODUCED

SPEC = {c.key: c for c in claims.CLAIMS}


# ---------------------------------------------------------------- hand-made tables of the earlier notebooks

def bc_table(same: dict, diff: dict) -> pd.DataFrame:
    rows = [(m, "conv_1", "same", 0.99, 70) for m in same]  # a layer row the claim must ignore
    rows += [(m, "overall", "same", v, 70) for m, v in same.items()]
    rows += [(m, "overall", "different", v, 70) for m, v in diff.items()]
    return pd.DataFrame(rows, columns=["model", "layer", "group", "mean", "n"])


def shares_table(nose: dict, scale: float = 1.0) -> pd.DataFrame:
    rows = []
    for model, share in nose.items():
        rest = (1 - share) / 3
        for region, s in [("nose", share), ("skin", rest), ("left_eye", rest), ("other", rest)]:
            rows += [(model, "overall", region, scale * s), (model, "conv_1", region, scale * 0.25)]
    return pd.DataFrame(rows, columns=["model", "layer", "region", "share"])


def spread_table(n_regions: dict) -> pd.DataFrame:
    return pd.DataFrame({"model": list(n_regions), "threshold": 0.1, "n_regions": list(n_regions.values()),
                         "top_share": 0.5})


def layers_table(first_last: dict) -> pd.DataFrame:
    return pd.DataFrame({"model": list(first_last), "layers": 5, "first vs last": list(first_last.values())})


def cross_table(bc: float, models=("A", "B")) -> pd.DataFrame:
    rows = [(a, b, g, 1.0 if a == b else v) for a in models for b in models
            for g, v in (("same person", bc), ("different people", bc / 2))]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "group", "mean"])


def occlusion_table(drops: dict, extra: list | None = None) -> pd.DataFrame:
    """drops: model -> (map drop, random drop), black fill, q = 1, held out; plus rows that must be ignored."""
    rows = []
    for model, (crit, rand) in drops.items():
        rows += [(model, "leam", "black", 1.0, "critical", crit, False, 6),
                 (model, "leam", "black", 1.0, "random", rand, False, 6),
                 (model, "leam", "white", 1.0, "critical", 9.0, False, 6),
                 (model, "leam", "black", 1.0, "critical", 9.0, True, 6),  # in-sample variant
                 (model, "leam", "black", 2.0, "critical", 9.0, False, 6)]
    return pd.DataFrame(rows + (extra or []), columns=["model", "explainer", "fill", "q", "selection", "mean_drop",
                                                       "in_sample", "n_images"])


def subgroup_table(drops: dict, n: int = 8) -> pd.DataFrame:
    """drops: model -> (female drop, male drop)."""
    rows = []
    for model, (f, m) in drops.items():
        for group, d in (("female", f), ("male", m)):
            rows += [(group, model, "leam", "black", 1.0, "critical", d, False, n),
                     (group, model, "leam", "black", 1.0, "random", 0.01, False, n)]
    return pd.DataFrame(rows, columns=["group", "model", "explainer", "fill", "q", "selection", "mean_drop",
                                       "in_sample", "n_images"])


def transfer_table(cross: float, own: float = 0.1, floor: float = 0.03) -> pd.DataFrame:
    rows = [(g, e, "leam", "black", 1.0, own if g == e else cross) for g in "AB" for e in "AB"]
    rows += [("random", e, "leam", "black", 1.0, floor) for e in "AB"]
    rows += [("A", "B", "leam", "white", 1.0, 0.5)]
    return pd.DataFrame(rows, columns=["generation", "evaluation", "explainer", "fill", "q", "mean_drop"])


def main_table(rates: dict, datasets=("LFW", "CALFW")) -> pd.DataFrame:
    """rates: technique name (as notebook 08 might spell it) -> recognition rate, same on every dataset."""
    rows = [(t, d, "black", r, 0.7, 40, "ok") for t, r in rates.items() for d in datasets]
    rows += [("Grad-CAM++", "CPLFW", "black", np.nan, np.nan, 0, "not available")]
    rows += [(t, d, "white", 0.0, 0.5, 40, "ok") for t in rates for d in datasets]
    return pd.DataFrame(rows, columns=["technique", "dataset", "fill", "recognition_rate", "balanced_accuracy",
                                       "n_images", "status"])


GEN_RATES = {"Grad-CAM": 0.93, "Grad-CAM++": 0.6, "LayerCAM": 0.94, "S-RISE": 0.95, "CorrRISE": 0.96,
             "LEAM": 0.5, "random": 0.95}


def fill_table(rates: dict) -> pd.DataFrame:
    """rates: (technique, fill) -> recognition rate."""
    return pd.DataFrame([(t, "LFW", f, r) for (t, f), r in rates.items()],
                        columns=["technique", "dataset", "fill", "recognition_rate"])


def fills(tech_rate: dict, fill_shift: float) -> dict:
    return {(t, f): r + i * fill_shift for t, r in tech_rate.items() for i, f in enumerate(["black", "white", "blur"])}


def sweep_table(best: dict, hyperparameter: str, others: list) -> pd.DataFrame:
    """best: (technique, model) -> best value; every value in ``others`` gets a worse rate."""
    rows = []
    for (tech, model), value in best.items():
        rows.append((tech, model, hyperparameter, value, 0.5))
        rows += [(tech, model, hyperparameter, v, 0.8) for v in others if v != value]
    return pd.DataFrame(rows, columns=["technique", "model", "hyperparameter", "value", "recognition_rate"])


LAYERS = ["last", "second-to-last", "third-to-last"]
LOSSES = ["cosine", "arcface m=0.1", "arcface m=0.2", "arcface m=0.3", "arcface m=0.5"]
GC = [("Grad-CAM", "A"), ("Grad-CAM++", "A"), ("Grad-CAM", "B"), ("Grad-CAM++", "B")]

CASES = [  # (claim, table, expected verdict)
    ("bc_same_vs_different", bc_table({"A": 0.5, "B": 0.4}, {"A": 0.1, "B": 0.08}), REPRODUCED),
    ("bc_same_vs_different", bc_table({"A": 0.9, "B": 0.95}, {"A": 0.8, "B": 0.85}), PARTLY),
    ("bc_same_vs_different", bc_table({"A": 0.5, "B": 0.1}, {"A": 0.1, "B": 0.3}), PARTLY),
    ("bc_same_vs_different", bc_table({"A": 0.1, "B": 0.1}, {"A": 0.3, "B": 0.3}), NOT_REPRODUCED),
    ("bc_same_vs_different", bc_table({}, {}).assign(layer="conv_1"), NOT_TESTABLE),
    ("bc_same_vs_different_top1", bc_table({"A": 0.5, "B": 0.4}, {"A": 0.1, "B": 0.08}), REPRODUCED),
    ("bc_same_vs_different_top1", bc_table({"A": 0.9, "B": 0.95}, {"A": 0.8, "B": 0.85}), PARTLY),
    ("bc_same_vs_different_top1", bc_table({"A": 0.1}, {"A": 0.3}), NOT_REPRODUCED),
    ("bc_same_vs_different_top1", bc_table({"A": 0.1}, {}), NOT_TESTABLE),
    ("nose_share", shares_table({"A": 0.2, "B": 0.31}), REPRODUCED),
    ("nose_share", shares_table({"A": 20.0 / 100, "B": 28.0 / 100}, scale=100), REPRODUCED),  # percent table
    ("nose_share", shares_table({"A": 0.1, "B": 0.9}), PARTLY),
    ("nose_share", shares_table({"A": 0.6, "B": 0.7}), NOT_REPRODUCED),
    ("nose_share", shares_table({"A": 0.2}).replace({"region": {"nose": "mouth"}}), NOT_TESTABLE),
    ("attention_spread", spread_table({"A": 2.5, "B": 3.0}), REPRODUCED),
    ("attention_spread", spread_table({"A": 2.5, "B": 1.2}), PARTLY),
    ("attention_spread", spread_table({"A": 1.0, "B": 1.9}), NOT_REPRODUCED),
    ("attention_spread", spread_table({"A": 1.0}).drop(columns="n_regions"), NOT_TESTABLE),
    ("layers_differ", layers_table({"A": 0.3, "B": 0.45}), REPRODUCED),
    ("layers_differ", layers_table({"A": 0.3, "B": 0.9}), PARTLY),
    ("layers_differ", layers_table({"A": 0.8, "B": 0.9}), NOT_REPRODUCED),
    ("layers_differ", layers_table({"A": 0.3}).rename(columns={"first vs last": "bc"}), NOT_TESTABLE),
    ("models_agree", cross_table(0.7), REPRODUCED),
    ("models_agree", cross_table(0.7, models=("A", "B", "C")).pipe(
        lambda d: d.assign(mean=np.where((d.model_a + d.model_b).isin(["AC", "CA"]), 0.2, d["mean"]))), PARTLY),
    ("models_agree", cross_table(0.3), NOT_REPRODUCED),
    ("models_agree", cross_table(0.7, models=("A",)), NOT_TESTABLE),
    ("occlusion_drop", occlusion_table({"A": (0.12, 0.03), "B": (0.10, 0.02)}), REPRODUCED),
    ("occlusion_drop", occlusion_table({"A": (0.40, 0.03), "B": (0.30, 0.02)}), PARTLY),
    ("occlusion_drop", occlusion_table({"A": (0.12, 0.03), "B": (0.01, 0.02)}), PARTLY),
    ("occlusion_drop", occlusion_table({"A": (0.01, 0.03), "B": (0.01, 0.02)}), NOT_REPRODUCED),
    ("occlusion_drop", occlusion_table({"A": (0.12, 0.03)}, extra=[("A", "leam", "black", 1.0, "critical_v2", 0.1,
                                                                    False, 6)]), NOT_TESTABLE),
    ("transfer", transfer_table(0.08), REPRODUCED),
    ("transfer", transfer_table(0.08).assign(mean_drop=lambda d: np.where(
        (d.generation == "B") & (d.evaluation == "A"), 0.01, d.mean_drop)), PARTLY),
    ("transfer", transfer_table(0.01), NOT_REPRODUCED),
    ("transfer", transfer_table(0.08).query("generation != 'random'"), NOT_TESTABLE),
    ("female_more_affected", subgroup_table({"A": (0.2, 0.1), "B": (0.15, 0.1)}), REPRODUCED),
    ("female_more_affected", subgroup_table({"A": (0.2, 0.1), "B": (0.05, 0.1)}), PARTLY),
    ("female_more_affected", subgroup_table({"A": (0.05, 0.1)}), NOT_REPRODUCED),
    ("female_more_affected", subgroup_table({"A": (0.2, 0.1)}, n=2), NOT_TESTABLE),
    ("gradcampp_only_generalizes", main_table(GEN_RATES), REPRODUCED),
    ("gradcampp_only_generalizes", main_table(GEN_RATES | {"LayerCAM": 0.7}), PARTLY),
    ("gradcampp_only_generalizes", main_table(GEN_RATES | {"Grad-CAM++": 0.93}), NOT_REPRODUCED),
    ("gradcampp_only_generalizes", main_table({k: v for k, v in GEN_RATES.items() if k != "random"}), NOT_TESTABLE),
    ("negligible_impact", main_table(GEN_RATES), REPRODUCED),
    ("negligible_impact", main_table(GEN_RATES | {"LayerCAM": 0.5, "S-RISE": 0.5}), PARTLY),
    ("negligible_impact", main_table(GEN_RATES | {"LayerCAM": 0.5, "S-RISE": 0.5, "CorrRISE": 0.5}), NOT_REPRODUCED),
    ("negligible_impact", main_table({"Grad-CAM++": 0.5, "random": 0.9}), NOT_TESTABLE),
    ("fill_minor", fill_table(fills({"Grad-CAM++": 0.5, "LayerCAM": 0.9}, 0.02)), REPRODUCED),
    ("fill_minor", fill_table(fills({"Grad-CAM++": 0.5, "LayerCAM": 0.9}, 0.15)), PARTLY),
    ("fill_minor", fill_table(fills({"Grad-CAM++": 0.5, "LayerCAM": 0.55}, 0.15)), NOT_REPRODUCED),
    ("fill_minor", fill_table({("Grad-CAM++", "black"): 0.5, ("LayerCAM", "black"): 0.9}), NOT_TESTABLE),
    ("layer_second_to_last", sweep_table(dict.fromkeys(GC, "second-to-last"), "layer", LAYERS), REPRODUCED),
    ("layer_second_to_last", sweep_table(dict.fromkeys(GC, "second-to-last") | {GC[0]: "last"}, "layer", LAYERS),
     PARTLY),
    ("layer_second_to_last", sweep_table(dict.fromkeys(GC, "last"), "layer", LAYERS), NOT_REPRODUCED),
    ("layer_second_to_last", sweep_table(dict.fromkeys(GC, "conv_3"), "layer", ["conv_3", "conv_4"]), NOT_TESTABLE),
    ("loss_cosine_layercam", sweep_table({("LayerCAM", "A"): "cosine", ("LayerCAM", "B"): "cosine"}, "loss", LOSSES),
     REPRODUCED),
    ("loss_cosine_layercam", sweep_table({("LayerCAM", "A"): "cosine", ("LayerCAM", "B"): "arcface m=0.2"}, "loss",
                                         LOSSES), PARTLY),
    ("loss_cosine_layercam", sweep_table({("LayerCAM", "A"): "arcface m=0.5"}, "loss", LOSSES), NOT_REPRODUCED),
    ("loss_cosine_layercam", sweep_table(dict.fromkeys(GC, "cosine"), "loss", LOSSES), NOT_TESTABLE),
    # every loss setting ties: the sweep says nothing about which is best
    ("loss_cosine_layercam", sweep_table({("LayerCAM", "A"): "cosine"}, "loss", LOSSES).assign(recognition_rate=0.9),
     NOT_TESTABLE),
    # a tie between cosine and a margin is not "cosine best"
    ("loss_cosine_layercam", pd.concat([sweep_table({("LayerCAM", "A"): "cosine"}, "loss", LOSSES),
                                        pd.DataFrame([("LayerCAM", "A", "loss", "arcface m=0.1", 0.5)],
                                                     columns=["technique", "model", "hyperparameter", "value",
                                                              "recognition_rate"])]).drop_duplicates(
        ["technique", "model", "hyperparameter", "value"], keep="last"), NOT_REPRODUCED),
    ("loss_margin_gradcam", sweep_table(dict.fromkeys(GC, "arcface m=0.2") | {GC[1]: "arcface m=0.3"}, "loss", LOSSES),
     REPRODUCED),
    ("loss_margin_gradcam", sweep_table(dict.fromkeys(GC, "arcface m=0.2") | {GC[1]: "cosine"}, "loss", LOSSES),
     PARTLY),
    ("loss_margin_gradcam", sweep_table(dict.fromkeys(GC, "arcface m=0.5"), "loss", LOSSES), NOT_REPRODUCED),
    ("loss_margin_gradcam", sweep_table(dict.fromkeys(GC, "arcface"), "loss", ["arcface", "cosine"]), NOT_TESTABLE),
]


def run_claim(key: str, table: pd.DataFrame, folder) -> dict:
    """Write ``table`` where the claim reads it and evaluate that claim."""
    path = folder / SPEC[key].table
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return claims.evaluate(SPEC[key], folder, {"profile": "test"})


@pytest.mark.parametrize("key, table, expected", CASES, ids=[f"{k}-{v}" for k, _, v in CASES])
def test_verdict_rules(key, table, expected, tmp_path):
    row = run_claim(key, table, tmp_path)
    assert row["verdict"] == expected, row["reason"]
    assert row["reason"]
    if expected != NOT_TESTABLE:
        assert row["ours"] and row["measured_on"] and (tmp_path / row["link"]).is_file()


def test_every_claim_reaches_every_verdict():
    reached = {(k, v) for k, _, v in CASES}
    for key in SPEC:
        assert {v for k, v in reached if k == key} == set(claims.VERDICTS), key
    assert all(c.said in claims.PUBLISHED.values() for c in claims.CLAIMS)


def test_missing_table_is_not_testable(tmp_path):
    ledger = claims.build_ledger(tmp_path, None)
    assert len(ledger) == len(claims.CLAIMS) and (ledger.verdict == NOT_TESTABLE).all()
    for _, row in ledger.iterrows():
        assert row.reason == f"table {row.source} not produced in this run"
        assert row.link == "" and row.source_sha256 == "" and row["values"] == "{}"


def test_where_and_norm():
    df = pd.DataFrame({"technique": ["Grad-CAM++", "S_RISE", "layer cam"], "q": ["1.0", "1", "2"]})
    assert [claims.norm(t) for t in df.technique] == ["gradcam++", "srise", "layercam"]
    assert claims.where(df, q=1.0).technique.tolist() == ["Grad-CAM++", "S_RISE"]
    assert claims.where(df, technique="gradcam++").q.tolist() == ["1.0"]
    with pytest.raises(claims.NotTestable, match="no rows"):
        claims.where(df, technique="lime")
    with pytest.raises(claims.NotTestable, match="lacks column"):
        claims.where(df, fill="black")
    assert claims.loss_margin("ArcFace (m = 0.25)") == 0.25 and claims.loss_margin("Cosine") == 0.0


# ---------------------------------------------------------------- traceability on a fake run folder

FAKE_RUN = {  # one table per source file: the claims sharing a file read the same table
    "bc_same_vs_different": bc_table({"A": 0.5, "B": 0.37}, {"A": 0.1, "B": 0.06}),
    "bc_same_vs_different_top1": bc_table({"A": 0.2, "B": 0.15}, {"A": 0.05, "B": 0.07}),
    "nose_share": shares_table({"A": 0.2, "B": 0.24}),
    "attention_spread": spread_table({"A": 2.5, "B": 1.5}),
    "layers_differ": layers_table({"A": 0.3, "B": 0.62}),
    "models_agree": cross_table(0.66, models=("A", "B", "C")),
    "occlusion_drop": occlusion_table({"A": (0.13, 0.03), "B": (0.09, 0.025)}),
    "transfer": transfer_table(0.07),
    "female_more_affected": subgroup_table({"A": (0.2, 0.1), "B": (0.12, 0.1)}),
    "gradcampp_only_generalizes": main_table(GEN_RATES),
    "negligible_impact": main_table(GEN_RATES),
    "fill_minor": fill_table(fills({"Grad-CAM++": 0.5, "LayerCAM": 0.9, "random": 0.97}, 0.03)),
    "layer_second_to_last": pd.concat([sweep_table(dict.fromkeys(GC, "second-to-last"), "layer", LAYERS),
                                       sweep_table({("LayerCAM", "A"): "cosine"}, "loss", LOSSES),
                                       sweep_table(dict.fromkeys(GC, "arcface m=0.3"), "loss", LOSSES)]),
}


def recompute(key: str, df: pd.DataFrame) -> dict:
    """Our numbers straight from the raw table, written independently of facexai.claims."""
    if key.startswith("bc_same_vs_different"):
        o = df[df.layer == "overall"]
        same, diff = o[o.group == "same"].set_index("model")["mean"], o[o.group == "different"].set_index("model")["mean"]
        return {"same_min": same.min(), "same_max": same.max(), "diff_min": diff.min(), "diff_max": diff.max()}
    if key == "nose_share":
        nose = df[(df.layer == "overall") & (df.region == "nose")].share
        return {"min": nose.min(), "max": nose.max()}
    if key in ("attention_spread", "layers_differ"):
        col = "n_regions" if key == "attention_spread" else "first vs last"
        return {"min": df[col].min(), "max": df[col].max()}
    if key == "models_agree":
        same = df[(df.model_a != df.model_b) & (df.group == "same person")]["mean"]
        return {"min": same.min(), "max": same.max()}
    if key == "occlusion_drop":
        held = df[(df.fill == "black") & (df.q == 1) & ~df.in_sample]
        return {"map_mean": held[held.selection == "critical"].mean_drop.mean(),
                "random_mean": held[held.selection == "random"].mean_drop.mean()}
    if key == "transfer":
        black = df[df.fill == "black"]
        off = black[(black.generation != black.evaluation) & (black.generation != "random")]
        return {"offdiag_mean": off.mean_drop.mean(), "pairs": len(off),
                "random_mean": black[black.generation == "random"].mean_drop.mean()}
    if key == "female_more_affected":
        crit = df[df.selection == "critical"]
        return {"female_mean": crit[crit.group == "female"].mean_drop.mean(),
                "male_mean": crit[crit.group == "male"].mean_drop.mean()}
    if key in ("gradcampp_only_generalizes", "negligible_impact"):
        black = df[(df.fill == "black") & (df.status == "ok")]
        rate = black.groupby("technique").recognition_rate.mean()
        if key == "negligible_impact":
            return {"cases": 3 * black.dataset.nunique()}
        return {"gradcampp_rate": rate["Grad-CAM++"], "random_rate": rate["random"], "datasets": black.dataset.nunique()}
    if key == "fill_minor":
        techs = df[df.technique != "random"]
        return {"fill_range": techs.groupby("technique").recognition_rate.agg(lambda s: s.max() - s.min()).mean(),
                "fills": techs.fill.nunique()}
    if key == "layer_second_to_last":
        return {"cases": 4, "second_to_last": 4}
    if key == "loss_cosine_layercam":
        return {"cases": 1, "cosine_best": 1}
    if key == "loss_margin_gradcam":
        return {"cases": 4, "margin_in_range": 4}
    raise KeyError(key)


def test_every_ledger_number_traces_to_its_file(tmp_path):
    for key, table in FAKE_RUN.items():
        path = tmp_path / SPEC[key].table
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    (tmp_path / "03_leam_layers" / "layer_bhattacharyya.png").write_bytes(b"png")
    summary = {"profile": "quick", "data_root": "/x/lfw_sample", "selected_identities": 60, "selected_images": 301,
               "pairs_kept": 300, "pairs_source": "built from seed 0"}
    ledger = claims.build_ledger(tmp_path, summary)
    assert (ledger.verdict != NOT_TESTABLE).all(), ledger[["claim", "reason"]].to_string()
    assert ledger.data.str.contains("lfw_sample: 60 individuals, 301 images, 300 pairs").all()
    for _, row in ledger.iterrows():
        source = tmp_path / row.source
        assert row.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert pd.Timestamp(row.source_mtime).timestamp() == pytest.approx(source.stat().st_mtime, abs=1)
        values = json.loads(row["values"])
        expected = recompute(row.claim, pd.read_csv(source))
        assert expected and set(expected) <= set(values), row.claim
        for name, want in expected.items():
            assert values[name] == pytest.approx(want, rel=1e-12), (row.claim, name)
    assert ledger.set_index("claim").loc["layers_differ", "figure"] == "03_leam_layers/layer_bhattacharyya.png"


def test_pages_show_every_claim_with_links(tmp_path):
    run_claim("bc_same_vs_different", FAKE_RUN["bc_same_vs_different"], tmp_path)
    ledger = claims.build_ledger(tmp_path, None)
    ledger.loc[0, "ours"] = "a <b> & c"
    md_path, html_path = claims.write_ledger(ledger, tmp_path, title="T")
    md, page = md_path.read_text(), html_path.read_text()
    for text in claims.PUBLISHED.values():
        assert text.text in md
    assert "[table](05_bhattacharyya/bc_same_different.csv)" in md
    assert '<a href="05_bhattacharyya/bc_same_different.csv">table</a>' in page
    assert "a &lt;b&gt; &amp; c" in page and "a <b>" not in page
    assert page.count("<tr") == len(ledger) + 1
    assert set(claims.rules().claim) == set(SPEC) and claims.rules().rule.str.len().min() > 20


def test_per_model_rows_do_not_enter_the_mean():
    """With per-model rows beside the 'mean' rows, only the means count (models differ, fills do not)."""
    rows = []
    for fill, shift in (("black", 0.0), ("white", 0.01)):
        for tech, rate in (("Grad-CAM++", 0.6), ("LayerCAM", 0.9)):
            rows += [(tech, "LFW", fill, "mean", rate + shift, "ok"),
                     (tech, "LFW", fill, "A", rate + shift - 0.3, "ok"), (tech, "LFW", fill, "B", rate + shift + 0.3, "ok")]
    table = pd.DataFrame(rows, columns=["technique", "dataset", "fill", "model", "recognition_rate", "status"])
    m = claims.measure_fill(table)
    assert m.values["fill_range"] == pytest.approx(0.01)
    assert m.values["technique_range"] == pytest.approx(0.3)
