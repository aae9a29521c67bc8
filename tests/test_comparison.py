"""comparison: settings, table shaping ('mean' and 'not available' rows, the published column), best-setting
selection, CALFW-style loading and the explainer timer, on small hand-made frames and models."""
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from facexai import claims, comparison, data, occlusion, profiles, validation
from facexai.comparison import MEAN, NOT_AVAILABLE, NOT_GIVEN, OK, RANDOM
from facexai.published import PUBLISHED, Published


@pytest.fixture
def smoke_cfg(tmp_path):
    return profiles.resolve("smoke", cache_root=str(tmp_path / "cache"), run_name="comparison-test")


# ---------------------------------------------------------------- settings

def test_parse_list():
    assert comparison.parse_list("a, b,,c ") == ["a", "b", "c"]
    assert comparison.parse_list([0.1, "0.2"], float) == [0.1, 0.2]
    assert comparison.parse_list(None) == [] and comparison.parse_list("") == []


def test_models_follow_the_run(smoke_cfg):
    cfg = replace(smoke_cfg, models=("FN_C", "SFACE", "DLIB"), xai_models=["DLIB", "SFACE", "FN_M"],
                  xai_sweep_models=["DLIB"])
    assert comparison.xai_models(cfg) == ["SFACE", "DLIB"]  # the run's order; FN_M is not in the run
    assert comparison.sweep_models(cfg, ["SFACE", "DLIB"]) == ["DLIB"]
    assert comparison.xai_models(replace(cfg, xai_models=[])) == ["FN_C", "SFACE", "DLIB"]
    assert comparison.xai_models(replace(cfg, xai_models="FN_M")) == ["FN_C", "SFACE", "DLIB"]  # none in the run
    assert comparison.sweep_models(replace(cfg, xai_sweep_models=()), ["SFACE"]) == ["SFACE"]


def test_sweep_layers_positions():
    names = ["a", "b", "c", "d", "e", "f"]
    assert comparison.sweep_layers(names, 4) == [("f", 0), ("e", 1), ("c", 3), ("a", 5)]
    assert comparison.sweep_layers(names, 2) == [("f", 0), ("e", 1)]
    assert comparison.sweep_layers(names, 1) == [("f", 0)]
    assert comparison.sweep_layers(names, 0) == [(n, 5 - i) for i, n in reversed(list(enumerate(names)))]
    assert comparison.sweep_layers(names, 9) == comparison.sweep_layers(names, 0)
    sixteen = [f"l{i}" for i in range(16)]
    for n in range(1, 16):  # n distinct layers, the last two always in, deepest first
        picked = comparison.sweep_layers(sixteen, n)
        assert len({p for _, p in picked}) == n and [p for _, p in picked] == sorted(p for _, p in picked)
        assert picked[0] == ("l15", 0) and (n < 2 or picked[1] == ("l14", 1))
    with pytest.raises(ValueError, match="no named layers"):
        comparison.sweep_layers([], 2)
    with pytest.raises(ValueError, match=">= 0"):
        comparison.sweep_layers(names, -1)


def test_loss_and_rise_settings(smoke_cfg):
    settings = comparison.loss_settings([0.2, 0.5])
    assert settings == [("cosine", {"target": "cosine"}), ("arcface m=0.2", {"target": "arcface", "margin": 0.2}),
                        ("arcface m=0.5", {"target": "arcface", "margin": 0.5})]
    # the ledger (notebook 09) reads the margin back from the value
    assert [claims.loss_margin(v) for v, _ in settings] == [0.0, 0.2, 0.5]
    cfg = replace(smoke_cfg, rise_masks=60, xai_rise_mask_counts=[30, 60], xai_rise_cell_sizes=[32, 8])
    assert comparison.rise_sweep(cfg) == {"n_masks": [30, 60], "cell_size": [8, comparison.RISE_CELL, 32]}


# ---------------------------------------------------------------- tables

def summary_rows(dataset="LFW", models=("A", "B"), fills=("black", "white")):
    """validation.summarize-like rows: two techniques' critical selections and one random floor per model/fill."""
    rows = []
    for m_i, model in enumerate(models):
        for f_i, fill in enumerate(fills):
            for t_i, (explainer, selection) in enumerate([("leam", "critical"), ("leam", "random"),
                                                          ("gradcam", "critical")]):
                rate = 0.5 + 0.1 * t_i + 0.2 * m_i + 0.05 * f_i
                rows.append({"model": model, "explainer": explainer, "selection": selection, "fill": fill,
                             "dataset": dataset, "subset": comparison.ALL, "recognition_rate": rate,
                             "balanced_accuracy": rate / 2 + 0.5, "mean_drop": 0.1 * (3 - t_i),
                             "n_images": 10 + m_i, "clean_recognition_rate": 0.95})
    return pd.DataFrame(rows)


def test_technique_rows_name_the_floor_and_refuse_duplicates():
    rows = comparison.technique_rows(summary_rows())
    assert set(rows.technique) == {"leam", RANDOM, "gradcam"} and (rows.status == OK).all()
    floor = rows[(rows.technique == RANDOM) & (rows.model == "A") & (rows.fill == "black")]
    assert floor.recognition_rate.item() == pytest.approx(0.6)
    doubled = pd.concat([summary_rows(), summary_rows().query("selection == 'random'").assign(explainer="gradcam")])
    with pytest.raises(ValueError, match="random seeds to one run"):
        comparison.technique_rows(doubled)
    with pytest.raises(ValueError, match="dataset and subset"):
        comparison.technique_rows(summary_rows().drop(columns="subset"))


def test_result_table_means_missing_datasets_and_published():
    rows = comparison.technique_rows(summary_rows())
    table = comparison.result_table(rows, {"CALFW": "folder not given"}, ["leam", "gradcam"], ["black", "white"],
                                    ["A", "B"])
    assert list(table.columns) == comparison.TABLE_COLUMNS
    lfw = table[table.dataset == "LFW"]
    assert len(lfw) == 3 * 2 * 3  # (2 techniques + floor) x 2 fills x (2 models + mean)
    mean = lfw[(lfw.model == MEAN) & (lfw.technique == "gradcam") & (lfw.fill == "white")].iloc[0]
    # gradcam on A: 0.5 + 0.2 + 0.05, on B: + 0.2 -> mean 0.85; n_images summed 10 + 11
    assert mean.recognition_rate == pytest.approx(0.85) and mean.n_images == 21
    assert mean.balanced_accuracy == pytest.approx(0.85 / 2 + 0.5) and mean.mean_drop == pytest.approx(0.1)
    assert mean.published_recognition_rate == NOT_GIVEN
    assert (lfw[lfw.model != MEAN].published_recognition_rate == "").all()
    calfw = table[table.dataset == "CALFW"]
    assert len(calfw) == 3 * 2 * 3 and (calfw.status == NOT_AVAILABLE).all()
    assert calfw.recognition_rate.isna().all() and (calfw.note == "folder not given").all()
    assert (calfw.n_images == 0).all()
    # rows ordered: data set, fill, techniques as given then the floor, mean first
    first = lfw[lfw.fill == "black"]
    assert list(dict.fromkeys(first.technique)) == ["leam", "gradcam", RANDOM]
    assert list(first.model[:3]) == [MEAN, "A", "B"]
    # a recorded value of the second work appears beside the mean row, nowhere else
    published = {comparison.TABLE1: Published("XAI-gen", "Table 1", "test", {"gradcam|LFW": 0.31})}
    table = comparison.result_table(rows, {}, ["leam", "gradcam"], ["black", "white"], ["A", "B"], published=published)
    cell = table[(table.technique == "gradcam") & (table.model == MEAN)].set_index("fill").published_recognition_rate
    assert cell["black"] == 0.31 and cell["white"] == NOT_GIVEN  # a key without fill is the black fill's


def test_published_rate_reads_the_one_published_module():
    entry = Published("XAI-gen", "Table 1", "test", {"layercam|CPLFW|blur": 0.5, "srise|CALFW": 0.7})
    assert comparison.published_rate("layercam", "cplfw", "blur", published={comparison.TABLE1: entry}) == 0.5
    assert comparison.published_rate("srise", "CALFW", published={comparison.TABLE1: entry}) == 0.7
    assert comparison.published_rate("srise", "CALFW", "white", published={comparison.TABLE1: entry}) == NOT_GIVEN
    assert comparison.published_rate("srise", "CALFW", published={"other": entry}) == NOT_GIVEN
    assert comparison.published_rate("gradcam++", "LFW") == (  # whatever facexai.published records, read from there
        PUBLISHED[comparison.TABLE1].values.get("gradcam++|LFW", NOT_GIVEN) if comparison.TABLE1 in PUBLISHED
        else NOT_GIVEN)


def test_with_means_skips_rows_without_result():
    rows = comparison.technique_rows(summary_rows(models=("A",), fills=("black",)))
    missing = rows.iloc[[0]].assign(model="B", status=NOT_AVAILABLE, recognition_rate=np.nan)
    out = comparison.with_means(pd.concat([rows, missing], ignore_index=True))
    leam = out[(out.technique == "leam") & (out.model == MEAN)].iloc[0]
    assert leam.recognition_rate == pytest.approx(0.5) and leam.note == "mean of 1 model(s)"


def test_wide_view_marks_missing_cells():
    rows = comparison.technique_rows(summary_rows())
    table = comparison.result_table(rows, {"CPLFW": "no pair list"}, ["leam", "gradcam"], ["black", "white"],
                                    ["A", "B"])
    view = comparison.wide(table, "recognition_rate", "dataset", model=MEAN, fill="black")
    assert list(view.index) == ["LEAM", "Grad-CAM", "random pixels"] and list(view.columns) == ["LFW", "CPLFW"]
    assert (view["CPLFW"] == NOT_AVAILABLE).all() and view.loc["Grad-CAM", "LFW"] == pytest.approx(0.8)
    per_model = comparison.wide(table, "recognition_rate", "model", dataset="LFW", fill="white")
    assert list(per_model.columns) == [MEAN, "A", "B"]
    with pytest.raises(ValueError, match="several rows"):
        comparison.wide(table, "recognition_rate", "model", dataset="LFW")  # two fills per cell


# ---------------------------------------------------------------- sweeps

def sweep(technique, model, hyper, values, rates, drops, positions=None):
    return pd.DataFrame({"technique": technique, "model": model, "hyperparameter": hyper, "value": values,
                         "recognition_rate": rates, "balanced_accuracy": 0.5, "mean_drop": drops,
                         "position": positions if positions is not None else np.nan, "n_images": 5})


def test_best_settings_lowest_rate_then_largest_drop():
    sweeps = pd.concat([
        sweep("gradcam", "A", "layer", ["l3", "l2", "l0"], [0.8, 0.6, 0.7], [0.1, 0.2, 0.3], [0, 1, 3]),
        sweep("gradcam", "A", "loss", ["cosine", "arcface m=0.2", "arcface m=0.3"], [0.5, 0.5, 0.9],
              [0.01, 0.02, 0.5]),
        sweep("srise", "A", "n_masks", [100, 300], [0.7, 0.7], [0.05, 0.05]),
        sweep("layercam", "B", "loss", ["cosine", "arcface m=0.1"], [np.nan, 0.9], [0.0, 0.1]),
    ], ignore_index=True)
    best = comparison.best_settings(sweeps).set_index(["technique", "model", "hyperparameter"])
    assert list(comparison.best_settings(sweeps).columns) == comparison.BEST_COLUMNS
    layer = best.loc[("gradcam", "A", "layer")]
    assert layer.best_value == "l2" and layer.position == 1 and layer.recognition_rate == 0.6
    loss = best.loc[("gradcam", "A", "loss")]  # tie on the rate: the larger cosine drop wins
    assert loss.best_value == "arcface m=0.2" and loss.tied_values == "cosine, arcface m=0.2" and loss.n_values == 3
    assert best.loc[("srise", "A", "n_masks")].best_value == 100  # full tie: the first value swept
    nan_row = best.loc[("layercam", "B", "loss")]  # a setting without a rate is not a candidate
    assert nan_row.best_value == "arcface m=0.1" and nan_row.n_values == 1


def test_sweep_rows_keep_critical_rows_only():
    s = summary_rows(models=("A",), fills=("black",))
    out = comparison.sweep_rows(s, "layer", "conv_12", 1)
    assert list(out.columns) == comparison.SWEEP_COLUMNS
    assert list(out.technique) == ["leam", "gradcam"] and (out.value == "conv_12").all() and (out.position == 1).all()


def test_claims_can_read_the_tables():
    """Every ledger claim built on notebook 08 measures hand-made tables of this module's shape without NotTestable."""
    rows = comparison.technique_rows(pd.concat([
        summary_rows(fills=occlusion.FILLS).assign(explainer=lambda d: d.explainer.replace(
            {"leam": "gradcam++"})),
        summary_rows(fills=occlusion.FILLS).query("selection == 'critical'").assign(
            explainer=lambda d: d.explainer.replace({"leam": "layercam", "gradcam": "srise"}))]))
    fills = list(occlusion.FILLS)
    table = comparison.result_table(rows, {"CALFW": "not given"}, ["gradcam++", "gradcam", "layercam", "srise"],
                                    fills, ["A", "B"])
    sweeps = pd.concat([
        sweep(t, "A", "layer", ["l3", "l2", "l0"], [0.8, 0.6, 0.7], [0.1, 0.2, 0.3], [0, 1, 3])
        for t in comparison.GRAD_CAMS] + [
        sweep(t, "A", "loss", [v for v, _ in comparison.loss_settings([0.2, 0.3])], [0.5, 0.4, 0.6], [0.1, 0.2, 0.3])
        for t in comparison.GRAD_CAMS], ignore_index=True)
    black = table[table.fill == "black"]
    frames = {"main_table.csv": black, "rise_subset_table.csv": black, "fill_table.csv": table, "sweeps.csv": sweeps}
    tested = 0
    for claim in claims.CLAIMS:
        if claim.table.startswith("08_xai_generalizability/"):
            m = claim.measure(frames[claim.table.split("/")[1]])
            assert m.values, claim.key
            tested += 1
    assert tested >= 6


# ---------------------------------------------------------------- runs, data sets, cost

def test_label_and_restrict():
    run = validation.OcclusionRun(pd.DataFrame({"path": ["a", "b"], "drop": [0.1, 0.2]}),
                                  pd.DataFrame({"path": ["a", "a", "b"], "same": [True, False, True]}), 7, 1.5)
    labelled = comparison.label(run, dataset="LFW", subset="all")
    assert (labelled.images.dataset == "LFW").all() and (labelled.pairs.subset == "all").all()
    assert labelled.forward_passes == 7 and "dataset" not in run.images
    only_a = comparison.restrict(labelled, {"a"})
    assert list(only_a.images.path) == ["a"] and len(only_a.pairs) == 2


def test_subsample_pairs_per_fold_and_label():
    pairs = pd.DataFrame({"fold": [0] * 6 + [1] * 6 + [2] * 2, "same": [True, True, True, False, False, False] * 2
                          + [True, False], "path_a": [f"a{i}" for i in range(14)]})
    out = comparison.subsample_pairs(pairs, n_folds=2, per_fold=4)
    assert list(out.path_a) == ["a0", "a1", "a3", "a4", "a6", "a7", "a9", "a10"]


def test_pair_list_study_loads_aligns_and_drops_faceless(smoke_cfg, sample_dir, tmp_path):
    root = tmp_path / "calfw"
    images = root / "aligned images"
    images.mkdir(parents=True)
    people = sorted(p for p in sample_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 3)[:2]
    for person in people:
        for f in sorted(person.glob("*.jpg"))[:3]:
            shutil.copy(f, images / f.name)
    Image.new("RGB", (250, 250), (128, 128, 128)).save(images / "Nobody_0001.jpg")  # no face to detect
    a, b = people[0].name, people[1].name
    lines = [f"{a}_0001.jpg 1", f"{a}_0002.jpg 1", f"{b}_0001.jpg 1", f"{b}_0003.jpg 1",  # fold 0: genuine
             f"{a}_0001.jpg 0", f"{b}_0002.jpg 0", f"{a}_0003.jpg 0", "Nobody_0001.jpg 0"]  # fold 1: impostors
    (root / "pairs_CALFW.txt").write_text("\n".join(lines) + "\n")
    cfg = replace(smoke_cfg, n_identities=5, min_images=1, n_folds=2, pairs_per_fold=10)
    st = comparison.pair_list_study(cfg, root, "calfw", ["DLIB"])
    assert set(st.images.identity) == {a, b} and len(st.images) == 6  # Nobody has no face: left out
    assert list(st.failures.path.map(lambda p: p.split("/")[-1])) == ["Nobody_0001.jpg"]
    assert len(st.pairs) == 3 and st.pairs.same.tolist() == [True, True, False]  # the faceless pair dropped
    assert st.summary["alignment_failures"] == 1 and st.summary["selected_identities"] == 2
    with pytest.raises(data.DatasetMissing, match="FACEXAI_CPLFW"):
        comparison.pair_list_study(cfg, "", "cplfw", ["DLIB"])
    with pytest.raises(data.DatasetMissing, match="not available"):
        comparison.pair_list_study(cfg, tmp_path / "nothing", "cplfw", ["DLIB"])


def test_dataset_root_parameter_then_environment(monkeypatch):
    monkeypatch.setenv("FACEXAI_CALFW", "/data/calfw")
    assert comparison.dataset_root("CALFW", "") == "/data/calfw"
    assert comparison.dataset_root("CALFW", " /mine ") == "/mine"
    monkeypatch.delenv("FACEXAI_CPLFW", raising=False)
    assert comparison.dataset_root("CPLFW") == ""


class TinyFace(nn.Module):
    """Two conv layers and a linear embedding: a FaceModel stand-in with named layers."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 16)
        self.spec = SimpleNamespace(name="TINY", input_size=16)
        self.layers = {"c1": "conv1", "c2": "conv2"}

    def layer_path(self, name):
        return self.layers[name]

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x / 255 - 0.5)))).flatten(1))


@pytest.mark.parametrize("technique, repeats, forwarded", [("gradcam++", 1, 2 + 1 + 2), ("leam", 3, 2 + 1 + 3 * 2),
                                                           ("srise", 1, 2 + 2 * 8), ("corrrise", 2, 2 + 2 * 2 * 8)])
def test_time_explainer_does_the_stated_work(technique, repeats, forwarded):
    model = TinyFace()
    seen = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(len(out)))
    crops = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    seconds = comparison.time_explainer(model, crops, technique, layers=["c2"] if technique == "gradcam++" else None,
                                        n_masks=8, batch_size=4, repeats=repeats)
    # target embeddings (2), then CAMs: a warm-up image and the batch per run; RISE: 8 masked copies per image and run
    assert seconds > 0 and sum(seen) == forwarded
    row = comparison.cost_row(technique, "TINY", seconds, 2, 8, repeats)
    assert f"fastest of {repeats} run(s)" in row["measured"]
    assert row["forward_passes_per_image"] == (8 if technique in comparison.RISE else 1)
    assert row["backward_passes_per_image"] == (0 if technique in comparison.RISE else 1)
    with pytest.raises(ValueError, match="unknown technique"):
        comparison.time_explainer(model, crops, "gradcam+")
