"""generalizability: settings, table shaping ('mean' and 'not available' rows, the published column), best-setting
selection, CALFW-style loading and the explainer timer, on small hand-made frames and models."""
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facexai import claims, data, occlusion_runner, profiles
from facexai import generalizability as gen
from facexai.generalizability import MEAN, NOT_AVAILABLE, NOT_GIVEN, OK, RANDOM
from facexai.published import PUBLISHED, Published
from tiny_face import TinyFace


@pytest.fixture
def smoke_cfg(tmp_path):
    return profiles.resolve("smoke", cache_root=str(tmp_path / "cache"), run_name="generalizability-test")


# ---------------------------------------------------------------- settings

def test_parse_list():
    assert profiles.parse_list("a, b,,c ") == ["a", "b", "c"]
    assert profiles.parse_list([0.1, "0.2"], float) == [0.1, 0.2]
    assert profiles.parse_list(None) == [] and profiles.parse_list("") == []


def test_models_follow_the_run(smoke_cfg):
    cfg = replace(smoke_cfg, models=("FN_C", "SFACE", "DLIB"), xai_models=["DLIB", "SFACE", "FN_M"],
                  xai_sweep_models=["DLIB"])
    assert gen.xai_models(cfg) == ["SFACE", "DLIB"]  # the run's order; FN_M is not in the run
    assert gen.sweep_models(cfg, ["SFACE", "DLIB"]) == ["DLIB"]
    assert gen.xai_models(replace(cfg, xai_models=[])) == ["FN_C", "SFACE", "DLIB"]
    assert gen.xai_models(replace(cfg, xai_models="FN_M")) == ["FN_C", "SFACE", "DLIB"]  # none in the run
    assert gen.sweep_models(replace(cfg, xai_sweep_models=()), ["SFACE"]) == ["SFACE"]


def test_sweep_layers_positions():
    names = ["a", "b", "c", "d", "e", "f"]
    assert gen.sweep_layers(names, 4) == [("f", 0), ("e", 1), ("c", 3), ("a", 5)]
    assert gen.sweep_layers(names, 2) == [("f", 0), ("e", 1)]
    assert gen.sweep_layers(names, 1) == [("f", 0)]
    assert gen.sweep_layers(names, 0) == [(n, 5 - i) for i, n in reversed(list(enumerate(names)))]
    assert gen.sweep_layers(names, 9) == gen.sweep_layers(names, 0)
    sixteen = [f"l{i}" for i in range(16)]
    for n in range(1, 16):  # n distinct layers, the last two always in, deepest first
        picked = gen.sweep_layers(sixteen, n)
        assert len({p for _, p in picked}) == n and [p for _, p in picked] == sorted(p for _, p in picked)
        assert picked[0] == ("l15", 0) and (n < 2 or picked[1] == ("l14", 1))
    with pytest.raises(ValueError, match="no named layers"):
        gen.sweep_layers([], 2)
    with pytest.raises(ValueError, match=">= 0"):
        gen.sweep_layers(names, -1)


def test_loss_and_rise_settings(smoke_cfg):
    settings = gen.loss_settings([0.2, 0.5])
    assert settings == [("cosine", {"target": "cosine"}), ("arcface m=0.2", {"target": "arcface", "margin": 0.2}),
                        ("arcface m=0.5", {"target": "arcface", "margin": 0.5})]
    # the ledger (notebook 11) reads the margin back from the value
    assert [claims.loss_margin(v) for v, _ in settings] == [0.0, 0.2, 0.5]
    cfg = replace(smoke_cfg, rise_masks=60, xai_rise_mask_counts=[30, 60], xai_rise_cell_sizes=[32, 8])
    assert gen.rise_sweep(cfg) == {"n_masks": [30, 60], "cell_size": [8, gen.RISE_CELL, 32]}


# ---------------------------------------------------------------- tables

def summary_rows(dataset="LFW", models=("A", "B"), fills=("black", "white")):
    """occlusion_summary.summarize-like rows: two techniques' critical selections and one random floor per model/fill."""
    rows = []
    for m_i, model in enumerate(models):
        for f_i, fill in enumerate(fills):
            for t_i, (explainer, selection) in enumerate([("leam", "critical"), ("leam", "random"),
                                                          ("gradcam", "critical")]):
                rate = 0.5 + 0.1 * t_i + 0.2 * m_i + 0.05 * f_i
                rows.append({"model": model, "explainer": explainer, "selection": selection, "fill": fill,
                             "dataset": dataset, "subset": gen.ALL, "recognition_rate": rate,
                             "balanced_accuracy": rate / 2 + 0.5, "mean_drop": 0.1 * (3 - t_i),
                             "ci_lo": 0.1 * (3 - t_i) - 0.02, "ci_hi": 0.1 * (3 - t_i) + 0.02,
                             "rr_ci_lo": rate - 0.1, "rr_ci_hi": rate + 0.1,
                             "n_images": 10 + m_i, "clean_recognition_rate": 0.95})
    return pd.DataFrame(rows)


def test_technique_rows_name_the_floor_and_refuse_duplicates():
    rows = gen.technique_rows(summary_rows())
    assert set(rows.technique) == {"leam", RANDOM, "gradcam"} and (rows.status == OK).all()
    floor = rows[(rows.technique == RANDOM) & (rows.model == "A") & (rows.fill == "black")]
    assert floor.recognition_rate.item() == pytest.approx(0.6)
    doubled = pd.concat([summary_rows(), summary_rows().query("selection == 'random'").assign(explainer="gradcam")])
    with pytest.raises(ValueError, match="random seeds to one run"):
        gen.technique_rows(doubled)
    with pytest.raises(ValueError, match="dataset and subset"):
        gen.technique_rows(summary_rows().drop(columns="subset"))


def test_result_table_means_missing_datasets_and_published():
    rows = gen.technique_rows(summary_rows())
    table = gen.result_table(rows, {"CALFW": "folder not given"}, ["leam", "gradcam"], ["black", "white"],
                                    ["A", "B"])
    assert list(table.columns) == gen.TABLE_COLUMNS
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
    published = {gen.TABLE1: Published("XAI-gen", "Table 1", "test", {"gradcam|LFW": 0.31})}
    table = gen.result_table(rows, {}, ["leam", "gradcam"], ["black", "white"], ["A", "B"], published=published)
    cell = table[(table.technique == "gradcam") & (table.model == MEAN)].set_index("fill").published_recognition_rate
    assert cell["black"] == 0.31 and cell["white"] == NOT_GIVEN  # a key without fill is the black fill's


def test_published_rate_reads_the_one_published_module():
    entry = Published("XAI-gen", "Table 1", "test", {"layercam|CPLFW|blur": 0.5, "srise|CALFW": 0.7})
    assert gen.published_rate("layercam", "cplfw", "blur", published={gen.TABLE1: entry}) == 0.5
    assert gen.published_rate("srise", "CALFW", published={gen.TABLE1: entry}) == 0.7
    assert gen.published_rate("srise", "CALFW", "white", published={gen.TABLE1: entry}) == NOT_GIVEN
    assert gen.published_rate("srise", "CALFW", published={"other": entry}) == NOT_GIVEN
    assert gen.published_rate("gradcam++", "LFW") == (  # whatever facexai.published records, read from there
        PUBLISHED[gen.TABLE1].values.get("gradcam++|LFW", NOT_GIVEN) if gen.TABLE1 in PUBLISHED
        else NOT_GIVEN)


def test_with_means_skips_rows_without_result():
    rows = gen.technique_rows(summary_rows(models=("A",), fills=("black",)))
    missing = rows.iloc[[0]].assign(model="B", status=NOT_AVAILABLE, recognition_rate=np.nan)
    out = gen.with_means(pd.concat([rows, missing], ignore_index=True))
    leam = out[(out.technique == "leam") & (out.model == MEAN)].iloc[0]
    assert leam.recognition_rate == pytest.approx(0.5) and leam.note == "mean of 1 model(s)"


def test_wide_view_marks_missing_cells():
    rows = gen.technique_rows(summary_rows())
    table = gen.result_table(rows, {"CPLFW": "no pair list"}, ["leam", "gradcam"], ["black", "white"],
                                    ["A", "B"])
    view = gen.wide(table, "recognition_rate", "dataset", model=MEAN, fill="black")
    assert list(view.index) == ["LEAM", "Grad-CAM", "random pixels"] and list(view.columns) == ["LFW", "CPLFW"]
    assert (view["CPLFW"] == NOT_AVAILABLE).all() and view.loc["Grad-CAM", "LFW"] == pytest.approx(0.8)
    per_model = gen.wide(table, "recognition_rate", "model", dataset="LFW", fill="white")
    assert list(per_model.columns) == [MEAN, "A", "B"]
    with pytest.raises(ValueError, match="several rows"):
        gen.wide(table, "recognition_rate", "model", dataset="LFW")  # two fills per cell


def test_table1_per_model_and_fill_ranges():
    rows = gen.technique_rows(summary_rows())
    table = gen.result_table(rows, {"CPLFW": "no pair list"}, ["leam", "gradcam"], ["black", "white"],
                                    ["A", "B"])
    black = table[table.fill == "black"]
    t1 = gen.table1(black)
    assert list(t1.columns) == [(d, m) for d in ["LFW", "CPLFW"]
                                for m in ["recognition rate", "balanced accuracy", "published"]]
    assert t1.loc["Grad-CAM", ("LFW", "recognition rate")] == pytest.approx(0.8)
    assert t1.loc["Grad-CAM", ("CPLFW", "recognition rate")] == NOT_AVAILABLE
    pm = gen.per_model(black, "LFW")
    assert list(pm.columns) == [MEAN, "A", "B", "subset"] and (pm.subset == gen.ALL).all()
    ranges = gen.fill_ranges(table).set_index(["dataset", "technique"])["range across fills"]
    assert set(ranges.index.get_level_values(0)) == {"LFW"}  # the missing data set has no range
    assert ranges[("LFW", "gradcam")] == pytest.approx(0.05)  # white is 0.05 above black in summary_rows


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
    best = gen.best_settings(sweeps).set_index(["technique", "model", "hyperparameter"])
    assert list(gen.best_settings(sweeps).columns) == gen.BEST_COLUMNS
    layer = best.loc[("gradcam", "A", "layer")]
    assert layer.best_value == "l2" and layer.position == 1 and layer.recognition_rate == 0.6
    loss = best.loc[("gradcam", "A", "loss")]  # tie on the rate: the larger cosine drop wins
    assert loss.best_value == "arcface m=0.2" and loss.tied_values == "cosine, arcface m=0.2" and loss.n_values == 3
    assert best.loc[("srise", "A", "n_masks")].best_value == 100  # full tie: the first value swept
    nan_row = best.loc[("layercam", "B", "loss")]  # a setting without a rate is not a candidate
    assert nan_row.best_value == "arcface m=0.1" and nan_row.n_values == 1


def test_sweep_panels_order_and_label_the_settings():
    sweeps = pd.concat([sweep("gradcam", "A", "layer", ["l3", "l0", "l2"], [0.8, 0.6, 0.7], [0.1, 0.2, 0.3], [0, 3, 1]),
                        sweep("gradcam", "A", "loss", ["cosine", "arcface m=0.2"], [0.5, 0.4], [0.1, 0.2]),
                        sweep("srise", "A", "n_masks", [30, 60], [0.7, 0.6], [0.05, 0.06])], ignore_index=True)
    panels = {stem: (rows, panel) for stem, rows, panel, _ in gen.sweep_panels(sweeps, "black", 1.0)}
    assert list(panels) == ["sweep_layer", "sweep_loss", "sweep_rise"]
    assert list(panels["sweep_layer"][0].x) == ["l0 (3)", "l2 (1)", "l3 (0)"]  # deepest last
    assert list(panels["sweep_rise"][0].x) == ["30", "60"] and panels["sweep_rise"][1] == "hyperparameter"


def test_sweep_rows_keep_critical_rows_only():
    s = summary_rows(models=("A",), fills=("black",))
    out = gen.sweep_rows(s, "layer", "conv_12", 1)
    assert list(out.columns) == gen.SWEEP_COLUMNS
    assert list(out.technique) == ["leam", "gradcam"] and (out.value == "conv_12").all() and (out.position == 1).all()
    assert (out.rr_ci_lo < out.recognition_rate).all() and (out.ci_hi > out.mean_drop).all()  # intervals kept


# ---------------------------------------------------------------- runs, data sets, cost

def test_label_and_restrict():
    run = occlusion_runner.OcclusionRun(pd.DataFrame({"path": ["a", "b"], "drop": [0.1, 0.2]}),
                                        pd.DataFrame({"path": ["a", "a", "b"], "same": [True, False, True]}), 7, 1.5)
    labelled = occlusion_runner.label(run, dataset="LFW", subset="all")
    assert (labelled.images.dataset == "LFW").all() and (labelled.pairs.subset == "all").all()
    assert labelled.forward_passes == 7 and "dataset" not in run.images
    only_a = occlusion_runner.restrict(labelled, {"a"})
    assert list(only_a.images.path) == ["a"] and len(only_a.pairs) == 2


def _run(dataset, subset, paths):
    return occlusion_runner.OcclusionRun(pd.DataFrame({"path": paths, "dataset": dataset, "subset": subset}),
                                         pd.DataFrame({"path": paths, "dataset": dataset, "subset": subset}))


def test_subset_runs_restrict_everyone_to_the_subset_people():
    result = gen.TechniqueRuns([_run("LFW", gen.ALL, ["a", "b", "c"]),
                                       _run("LFW", gen.RISE_SUBSET, ["b"]),
                                       _run("CALFW", gen.ALL, ["x", "y"])],
                                      pd.DataFrame(), {"LFW": {"b"}, "CALFW": set()})
    out = gen.subset_runs(result)
    assert [list(r.images.path) for r in out] == [["b"], ["b"]]
    assert all((r.images.subset == gen.RISE_SUBSET).all() for r in out)
    assert gen.subset_runs(gen.TechniqueRuns(result.runs[::2], pd.DataFrame(), {"LFW": set()})) == []


def test_covers_subset_counts_people_who_can_have_a_map():
    from facexai.person_maps import PersonMaps
    protocol = SimpleNamespace(generation={"a": ["a1", "a2"], "b": ["b1", "b2"], "c": ["c1"]})  # c: one image, no map
    both = PersonMaps.from_arrays("M", "arcface112", "srise", {"a": np.ones((2, 2)), "b": np.ones((2, 2))})
    one = PersonMaps.from_arrays("M", "arcface112", "srise", {"a": np.ones((2, 2))})
    assert not gen.covers_subset(both, protocol) and gen.covers_subset(one, protocol)


def test_layer_plan_and_cam_layers():
    zoo = {"A": SimpleNamespace(layers={"l0": "", "l1": "", "l2": "", "l3": ""}),
           "B": SimpleNamespace(layers={"m0": "", "m1": ""})}
    main, swept = gen.layer_plan(zoo, ["A"], -2, 3)
    assert main == {"A": "l2", "B": "m0"} and list(swept) == ["A"]
    assert swept["A"] == gen.sweep_layers(["l0", "l1", "l2", "l3"], 3)
    assert gen.cam_layers("l2", swept["A"]) == ["l2", "l3", "l0"]  # the main layer first, no repeats
    assert gen.cam_layers("m0") == ["m0"]


def test_load_datasets_marks_missing_and_rejects_unknown(smoke_cfg, monkeypatch):
    monkeypatch.delenv("FACEXAI_CALFW", raising=False)
    lfw = object()
    studies, unavailable = gen.load_datasets(smoke_cfg, ["LFW", "CALFW"], ["DLIB"], lfw)
    assert studies == {"LFW": lfw} and "FACEXAI_CALFW" in unavailable["CALFW"]
    with pytest.raises(ValueError, match="unknown data sets"):
        gen.load_datasets(smoke_cfg, ["LFW", "MegaFace"], ["DLIB"], lfw)


def test_subsample_pairs_per_fold_and_label():
    pairs = pd.DataFrame({"fold": [0] * 6 + [1] * 6 + [2] * 2, "same": [True, True, True, False, False, False] * 2
                          + [True, False], "path_a": [f"a{i}" for i in range(14)]})
    out = gen.subsample_pairs(pairs, n_folds=2, per_fold=4)
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
    st = gen.pair_list_study(cfg, root, "calfw", ["DLIB"])
    assert set(st.images.identity) == {a, b} and len(st.images) == 6  # Nobody has no face: left out
    assert list(st.failures.path.map(lambda p: p.split("/")[-1])) == ["Nobody_0001.jpg"]
    assert len(st.pairs) == 3 and st.pairs.same.tolist() == [True, True, False]  # the faceless pair dropped
    assert st.summary["alignment_failures"] == 1 and st.summary["selected_identities"] == 2
    with pytest.raises(data.DatasetMissing, match="FACEXAI_CPLFW"):
        gen.pair_list_study(cfg, "", "cplfw", ["DLIB"])
    with pytest.raises(data.DatasetMissing, match="not available"):
        gen.pair_list_study(cfg, tmp_path / "nothing", "cplfw", ["DLIB"])


def test_dataset_root_parameter_then_environment(monkeypatch):
    monkeypatch.setenv("FACEXAI_CALFW", "/data/calfw")
    assert gen.dataset_root("CALFW", "") == "/data/calfw"
    assert gen.dataset_root("CALFW", " /mine ") == "/mine"
    monkeypatch.delenv("FACEXAI_CPLFW", raising=False)
    assert gen.dataset_root("CPLFW") == ""


@pytest.mark.parametrize("technique, repeats, forwarded", [("gradcam++", 1, 2 + 1 + 2), ("leam", 3, 2 + 1 + 3 * 2),
                                                           ("srise", 1, 2 + 2 * 8), ("corrrise", 2, 2 + 2 * 2 * 8)])
def test_time_explainer_does_the_stated_work(technique, repeats, forwarded):
    model = TinyFace()
    seen = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(len(out)))
    crops = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    seconds = gen.time_explainer(model, crops, technique, layers=["c2"] if technique == "gradcam++" else None,
                                        n_masks=8, batch_size=4, repeats=repeats)
    # target embeddings (2), then CAMs: a warm-up image and the batch per run; RISE: 8 masked copies per image and run
    assert seconds > 0 and sum(seen) == forwarded
    row = gen.cost_row(technique, "TINY", seconds, 2, 8, repeats)
    assert f"fastest of {repeats} run(s)" in row["measured"]
    assert row["forward_passes_per_image"] == (8 if technique in gen.RISE else 1)
    assert row["backward_passes_per_image"] == (0 if technique in gen.RISE else 1)
    with pytest.raises(ValueError, match="unknown explainer"):
        gen.time_explainer(model, crops, "gradcam+")
