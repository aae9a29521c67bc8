"""Occlusion protocol, runner and summaries: which pixels and which images it occludes, cross-geometry warps, and its accuracy numbers.

A transparent fake model (8x8 average pooling of the input) stands in for a face model; a forward
hook records every image the runner feeds it, so the tests see exactly what was occluded. Images
are real LFW sample faces aligned by MTCNN (into a temporary cache).
"""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facexai import align, metrics, occlusion, passes, profiles, study
from facexai import occlusion_protocol as protocol_mod
from facexai import occlusion_runner as runner
from facexai import occlusion_summary as summary_mod
from facexai import person_maps as person_maps_mod
from facexai.person_maps import PersonMaps
from facexai.explain import critical_mask
from facexai.explain.topk import top_k
from facexai.published import PUBLISHED


class FakeModel(nn.Module):
    """Embedding = 8x8 average pooling of the centred input: any occlusion moves it a little."""

    def __init__(self, geometry: str, name: str):
        super().__init__()
        size = align.GEOMETRIES[geometry].size
        self.spec = SimpleNamespace(name=name, geometry=geometry, input_size=size, embedding_dim=192,
                                    weights=SimpleNamespace(sha256=f"fake-{name}", describe=lambda: name))
        self.fingerprint = f"fake-{name}"  # what cached results of a model are keyed by
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # counted, as FaceModel.forward is
        return passes.counted(self.spec.name, x, lambda: F.adaptive_avg_pool2d(x / 255 - 0.5, 8).flatten(1) + self.w)


def record(model: nn.Module) -> list[np.ndarray]:
    """Every input image the model receives, as uint8 (H, W, 3)."""
    seen: list[np.ndarray] = []
    model.register_forward_hook(lambda _m, inp, _o: seen.extend(
        inp[0].permute(0, 2, 3, 1).round().to(torch.uint8).numpy()))
    return seen


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_dir):
    cache = tmp_path_factory.mktemp("cache")
    cfg = profiles.resolve("smoke", cache_root=str(cache), run_name="validation-test")
    people = sorted(p.name for p in sample_dir.iterdir() if p.is_dir())[:3]
    rows = [(who, str(f)) for who in people for f in sorted((sample_dir / who).glob("*.jpg"))[:4]]
    images = pd.DataFrame(rows, columns=["identity", "path"])
    p = images.path.tolist()
    pairs = pd.DataFrame([(0, p[0], p[1], True), (0, p[0], p[4], False), (0, p[2], p[3], True),
                          (0, p[5], p[9], False), (1, p[4], p[5], True), (1, p[1], p[8], False),
                          (1, p[8], p[9], True), (1, p[6], p[10], False)],
                         columns=["fold", "path_a", "path_b", "same"])
    pairs[["name_a", "name_b"]] = [[images.identity[p.index(a)], images.identity[p.index(b)]]
                                   for a, b in zip(pairs.path_a, pairs.path_b)]
    st = study.Study(images, pairs, pd.DataFrame(columns=["path", "reason"]), {})
    return cfg, st


def _hashes(images) -> set[bytes]:
    return {np.ascontiguousarray(img).tobytes() for img in images}


def test_runner_occludes_exactly_the_top_k_pixels(setup):
    cfg, st = setup
    model = FakeModel("arcface112", "FAKE_TOPK")
    seen = record(model)
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    rng = np.random.default_rng(1)
    maps = {p: rng.random((112, 112)).astype(np.float32) for p in protocol.generation}
    run = runner.occlusion_experiment(cfg, model, PersonMaps.from_arrays(model.spec.name, "arcface112", "leam", maps),
                                      protocol, fills=["black"], qs=[1.0, 2.5], random_seeds=[0, 1])
    got = _hashes(seen)
    people = sorted(protocol.evaluation)
    paths = [protocol.evaluation[p][0] for p in people]
    crops, keys = study.crops(cfg, paths, "arcface112")
    person_maps = np.stack([maps[p] for p in people])
    for q in (1.0, 2.5):
        k = top_k(q, 112 * 112)
        mask = critical_mask(person_maps, q)
        flat = person_maps.reshape(len(people), -1)
        for i in range(len(people)):  # independent check: the k largest values of the map, nothing else
            assert set(np.flatnonzero(mask[i])) == set(np.argsort(-flat[i], kind="stable")[:k])
        assert _hashes(occlusion.fill(crops, mask, "black")) <= got
        for s in (0, 1):
            rand = runner.random_masks(keys, 112, k, runner.mask_seed(cfg, s))
            assert (rand.sum((1, 2)) == k).all()
            assert _hashes(occlusion.fill(crops, rand, "black")) <= got
        rows = run.images[run.images.q == q]
        assert (rows.n_pixels == k).all() and len(rows) == 3 * len(people)
    assert run.forward_passes == len(seen)  # 2 q x 3 selections x 3 images, plus the clean embeddings


def test_map_peaked_at_the_nose_in_one_geometry_occludes_the_nose_in_another(setup):
    cfg, st = setup
    model = FakeModel("dlib150", "FAKE_NOSE")
    seen = record(model)
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    people = sorted(protocol.evaluation)
    paths = [protocol.evaluation[p][0] for p in people]
    res = align.align_paths(paths, ["arcface112", "dlib150"], cfg.cache_root)
    yy, xx = np.mgrid[0:112, 0:112]
    maps = {}
    for i, who in enumerate(people):  # each person's map peaks where its held-out image's nose is, in geometry A
        x, y = align.transform_points(res.landmarks[i, 2], res.matrices["arcface112"][i])
        maps[who] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
    source = PersonMaps.from_arrays("FAKE_A", "arcface112", "leam", maps)
    run = runner.occlusion_experiment(cfg, model, source, protocol, fills=["white"], qs=[0.15], random_seeds=())
    assert (run.images.generation_model == "FAKE_A").all() and (run.images.model == "FAKE_NOSE").all()
    crops, _ = study.crops(cfg, paths, "dlib150")
    for i, crop in enumerate(crops):
        diffs = [(img != crop).any(-1) for img in seen if img.shape == crop.shape]
        changed = min((d for d in diffs if d.any()), key=lambda d: d.sum())  # this image, occluded
        assert changed.sum() == top_k(0.15, 150 * 150)
        centre = np.argwhere(changed)[:, ::-1].mean(0)  # (x, y)
        nose_b = align.transform_points(res.landmarks[i, 2], res.matrices["dlib150"][i])
        x_a, y_a = align.transform_points(res.landmarks[i, 2], res.matrices["arcface112"][i])
        resized = np.array([x_a, y_a]) * 150 / 112  # where a plain resize would put the peak
        assert np.linalg.norm(centre - nose_b) < 1.5, (paths[i], centre, nose_b)
        assert np.linalg.norm(resized - nose_b) > 10  # the test can tell a warp from a resize


def test_in_sample_flag_changes_the_occluded_images_and_default_never_touches_generation(setup):
    cfg, st = setup
    crops_all, _ = study.crops(cfg, st.images.path.tolist(), "arcface112")
    for in_sample in (False, True):
        model = FakeModel("arcface112", f"FAKE_SPLIT_{in_sample}")
        seen = record(model)
        protocol = protocol_mod.make_protocol(st, 1, seed=0, in_sample=in_sample)
        maps = {p: np.random.default_rng(2).random((112, 112)).astype(np.float32) for p in protocol.generation}
        run = runner.occlusion_experiment(cfg, model, PersonMaps.from_arrays(model.spec.name, "arcface112", "gradcam", maps),
                                          protocol, fills=["black"], random_seeds=[0])
        assert (run.images.explainer == "gradcam").all()
        gen = set(protocol.generation_paths)
        held = {p for v in protocol.evaluation.values() for p in v}
        assert not gen & held and gen | held == set(st.images.path)
        assert set(run.images.path) == (gen if in_sample else held)
        assert set(run.pairs.path) == set(run.images.path) and (run.images.in_sample == in_sample).all()
        # what the model actually received: every occluded input is closest to an allowed image
        clean = _hashes(crops_all)
        for img in seen:
            if img.tobytes() in clean:
                continue
            nearest = st.images.path[int(np.argmin([(img != c).any(-1).sum() for c in crops_all]))]
            assert nearest in (gen if in_sample else held)


def test_generation_maps_never_see_held_out_images(setup, monkeypatch):
    cfg, st = setup
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    calls = []

    def fake_image_maps(cfg, model, images, **kw):
        calls.append(set(images.path))
        maps = np.ones((len(images), 2, 112, 112), np.float16) / 112 ** 2
        from facexai.saliency import MapSet
        return MapSet("X", kw["explainer"], ["a", "b"], images.reset_index(drop=True), maps, "arcface112")

    from facexai import saliency
    monkeypatch.setattr(saliency, "image_maps", fake_image_maps)
    model = FakeModel("arcface112", "X")
    out = person_maps_mod.generation_maps(cfg, model, protocol, "layercam")
    assert calls[-1] == set(protocol.generation_paths) and set(out.identities) == set(protocol.generation)
    assert (out.model, out.geometry, out.technique, out.layers) == ("X", "arcface112", "layercam", ["a", "b"])
    assert all(set(paths) == set(protocol.generation[who]) for who, paths in out.images.items())
    everything = person_maps_mod.generation_maps(cfg, model, protocol, map_images="all")
    assert calls[-1] == set(st.images.path)
    assert all(set(paths) == set(protocol.generation[who]) for who, paths in everything.images.items())
    with pytest.raises(ValueError, match="map_images"):
        person_maps_mod.generation_maps(cfg, model, protocol, map_images="eval")


def test_person_maps_type():
    images = pd.DataFrame({"identity": ["a", "a", "b"], "path": ["a1", "a2", "b1"]})
    maps = np.stack([np.full((2, 4, 4), v, np.float16) for v in (1.0, 3.0, 2.0)])
    maps[:, 1, 0, 0] = 10.0  # layer 1 peaks in a corner
    pm = PersonMaps.from_image_maps("M", "arcface112", "leam", ["l0", "l1"], images, maps, ["a1", "b1"])
    assert pm.identities == ["a", "b"] and pm.images == {"a": ["a1"], "b": ["b1"]}
    np.testing.assert_allclose(pm.maps.sum((-2, -1)), 1.0, rtol=1e-6)
    assert pm.maps.shape == (2, 2, 4, 4) and pm.layer("l1").maps.shape == (2, 1, 4, 4)
    np.testing.assert_allclose(pm.overall(), pm.maps.mean(1))
    np.testing.assert_allclose(pm.of(["b", "a", "b"]), pm.overall()[[1, 0, 1]])
    assert "a" in pm and "c" not in pm and len(pm) == 2
    with pytest.raises(KeyError, match="not explained"):
        pm.layer("l9")
    with pytest.raises(KeyError, match="no person map"):
        pm.of(["c"])
    with pytest.raises(ValueError, match="person=2, layer=1"):
        PersonMaps("M", "g", "leam", ["x"], ["a", "b"], {}, np.ones((2, 2, 4, 4)))


def test_person_maps_of_the_wrong_size_are_rejected(setup):
    cfg, st = setup
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    maps = PersonMaps.from_arrays("FAKE_SIZE", "arcface112", "leam",
                                  {p: np.ones((100, 100), np.float32) for p in protocol.generation})
    with pytest.raises(ValueError, match="112x112"):
        runner.occlusion_experiment(cfg, FakeModel("arcface112", "FAKE_SIZE"), maps, protocol)
    with pytest.raises(ValueError, match="unknown fill"):
        runner.occlusion_experiment(cfg, FakeModel("arcface112", "FAKE_SIZE"), maps, protocol, fills=["pink"])


def test_occlusion_keys_and_noise_do_not_depend_on_batch_order():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    keys = [f"k{i}" for i in range(4)]
    masks = runner.random_masks(keys, 16, 10, seed=3)
    np.testing.assert_array_equal(runner.random_masks(keys[::-1], 16, 10, seed=3), masks[::-1])
    out, okeys = runner.occlude(crops, masks, "random", keys, seed=1)
    rev, rkeys = runner.occlude(crops[::-1], masks[::-1], "random", keys[::-1], seed=1)
    np.testing.assert_array_equal(rev, out[::-1])
    assert rkeys == okeys[::-1] and len(set(okeys)) == 4
    assert (out[~masks] == crops[~masks]).all()
    _, other = runner.occlude(crops, masks[[1, 0, 2, 3]], "random", keys, seed=1)
    assert other[0] != okeys[0] and other[2] == okeys[2]  # the key carries the mask


def _unit(angle):
    return np.array([np.cos(angle), np.sin(angle)])


def test_clean_threshold_recognition_rate_and_balanced_accuracy_by_hand():
    # fold 0: genuine 0.9, 0.7, impostor 0.2, 0.3; fold 1: genuine 0.8, 0.6, impostor 0.1, 0.5
    scores = {0: [(0.9, 1), (0.7, 1), (0.2, 0), (0.3, 0)], 1: [(0.8, 1), (0.6, 1), (0.1, 0), (0.5, 0)]}
    clean, rows = {}, []
    for fold, items in scores.items():
        for j, (s, same) in enumerate(items):
            a, b = f"a{fold}{j}", f"b{fold}{j}"
            clean[a], clean[b] = _unit(0.0), _unit(np.arccos(s))
            rows.append((fold, a, b, bool(same)))
    pairs = pd.DataFrame(rows, columns=["fold", "path_a", "path_b", "same"])
    # fold 0 is tested with the threshold fit on fold 1: (0.5 + 0.6) / 2 = 0.55; fold 1 with fold 0's: 0.5
    assert runner.model_threshold(clean, pairs) == pytest.approx(0.525)

    cond = dict(model="M", generation_model="M", explainer="leam", in_sample=False, fill="black", q=1.0)
    images = pd.DataFrame([{**cond, "selection": "critical", "seed": -1, "path": p, "drop": d,
                            "clean_cos": 0.8, "occluded_cos": 0.8 - d} for p, d in [("x", 0.1), ("y", 0.3)]]
                          + [{**cond, "selection": "random", "seed": s, "path": p, "drop": d,
                              "clean_cos": 0.8, "occluded_cos": 0.8 - d}
                             for s, p, d in [(0, "x", 0.0), (1, "x", 0.02), (0, "y", 0.04), (1, "y", 0.06)]])
    genuine = [0.6, 0.4, 0.7, 0.2]  # at t = 0.5: 2 of 4 accepted
    impostor = [0.1, 0.55]  # 1 of 2 rejected
    pairs = pd.DataFrame([{**cond, "selection": "critical", "seed": -1, "path": "x", "partner": f"p{i}", "same": True,
                           "clean_score": 0.9, "occluded_score": s, "threshold": 0.5} for i, s in enumerate(genuine)]
                         + [{**cond, "selection": "critical", "seed": -1, "path": "x", "partner": f"n{i}",
                             "same": False, "clean_score": c, "occluded_score": s, "threshold": 0.5}
                            for i, (s, c) in enumerate(zip(impostor, [0.45, 0.6]))])  # clean: 1 of 2 rejected
    out = summary_mod.summarize(runner.OcclusionRun(images, pairs), n_boot=200).set_index("selection")
    crit, rand = out.loc["critical"], out.loc["random"]
    assert crit.mean_drop == pytest.approx(0.2) and crit.n_images == 2
    assert rand.mean_drop == pytest.approx(0.03) and rand.n_images == 2 and rand.n_seeds == 2
    assert crit.recognition_rate == pytest.approx(0.5) and crit.balanced_accuracy == pytest.approx(0.5)
    assert crit.clean_recognition_rate == 1.0 and crit.clean_balanced_accuracy == pytest.approx(0.75)
    assert crit.n_genuine == 4 and crit.n_impostor == 2 and np.isnan(rand.recognition_rate)
    assert crit.ci_lo <= 0.2 <= crit.ci_hi and 0 <= crit.rr_ci_lo <= 0.5 <= crit.rr_ci_hi <= 1
    assert metrics.balanced_accuracy(genuine, impostor, 0.5) == pytest.approx(0.5)


def test_pairs_built_or_official(setup):
    _, st = setup
    protocol = protocol_mod.make_protocol(st, 1, seed=0, n_impostors=3)
    held = {p for v in protocol.evaluation.values() for p in v}
    owner = dict(zip(st.images.path, st.images.identity))
    assert set(protocol.pairs.path) == held
    gen = protocol.pairs[protocol.pairs.same]
    assert (gen.partner.map(owner) == gen.identity).all() and (gen.partner != gen.path).all()
    assert len(gen) == 3 * 3  # each held-out image with the 3 other images of its person
    imp = protocol.pairs[~protocol.pairs.same]
    assert (imp.partner.map(owner) != imp.identity).all() and len(imp) == 3 * 3
    people = sorted(protocol.evaluation)
    h0, h1 = (protocol.evaluation[p][0] for p in people[:2])
    g0, g2 = protocol.generation[people[0]][0], protocol.generation[people[2]][0]
    official_pairs = pd.DataFrame([(0, g0, h0, True), (0, h1, g2, False), (1, g0, g2, False)],
                                  columns=["fold", "path_a", "path_b", "same"])
    st2 = study.Study(st.images, official_pairs, st.failures, {})
    official = protocol_mod.make_protocol(st2, 1, seed=0, official=True, min_official_pairs=1)
    assert official.pair_source.startswith("official")
    expected = [(people[0], h0, g0, True), (people[1], h1, g2, False)]  # turned so the held-out image comes first
    assert list(official.pairs.itertuples(index=False, name=None)) == expected
    too_few = protocol_mod.make_protocol(st, 1, seed=0, official=True, min_official_pairs=1000)
    assert "official pairs too few" in too_few.pair_source
    pd.testing.assert_frame_equal(too_few.pairs, protocol_mod.make_protocol(st, 1, seed=0).pairs)


def test_read_attributes_lists_and_csv(tmp_path):
    images = pd.DataFrame({"identity": ["Ann", "Ann", "Bob", "Cy"],
                           "path": ["/d/Ann/Ann_0001.jpg", "/d/Ann/Ann_0002.jpg", "/d/Bob/Bob_0001.jpg",
                                    "/d/Cy/Cy_0001.jpg"]})
    (tmp_path / "female_names.txt").write_text("Ann_0001.jpg\nAnn_0002.jpg\nZed_0001.jpg\n")
    (tmp_path / "male_names.txt").write_text("Bob_0001.jpg\nAnn_0002.jpg\n")
    groups, report = summary_mod.read_attributes([tmp_path / "female_names.txt", tmp_path / "male_names.txt"], images)
    assert groups.to_dict() == {"/d/Ann/Ann_0001.jpg": "female", "/d/Bob/Bob_0001.jpg": "male"}
    assert report["conflicts"] == 1 and report["gaps"] == 1 and report["entries_in_two_groups"] == 1
    assert report["conflict_examples"] == ["Ann_0002.jpg"] and report["gap_examples"] == ["Cy_0001.jpg"]
    csv = tmp_path / "groups.csv"
    csv.write_text("path_or_name,group\nAnn,a\n/d/Bob/Bob_0001.jpg,b\nCy_0001.jpg,c\n")
    groups, report = summary_mod.read_attributes([csv], images)
    assert groups.to_dict() == {"/d/Ann/Ann_0001.jpg": "a", "/d/Ann/Ann_0002.jpg": "a",
                                "/d/Bob/Bob_0001.jpg": "b", "/d/Cy/Cy_0001.jpg": "c"}
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        summary_mod.read_attributes([tmp_path / "nope.csv"], images)
    (tmp_path / "bad.csv").write_text("name,label\nAnn,a\n")
    with pytest.raises(ValueError, match="path_or_name,group"):
        summary_mod.read_attributes([tmp_path / "bad.csv"], images)


def test_transfer_table_and_published_comparison():
    rows = []
    for ev in ("A", "B"):
        for gen in ("A", "B"):
            rows.append(dict(model=ev, generation_model=gen, explainer="leam", in_sample=False, fill="black", q=1.0,
                             selection="critical", mean_drop=0.1, ci_lo=0.05, ci_hi=0.15, recognition_rate=0.5,
                             balanced_accuracy=0.7, n_images=10, rr_ci_lo=0.4, rr_ci_hi=0.6,
                             clean_recognition_rate=0.95))
            rows.append({**rows[-1], "selection": "random", "mean_drop": 0.02, "recognition_rate": 0.9})
    summary = pd.DataFrame(rows)
    table = summary_mod.transfer_table(summary)
    assert len(table) == 4 + 2 and sorted(table.generation.unique()) == ["A", "B", "random"]
    assert (table[table.generation == "random"].recognition_rate == 0.9).all()
    comp = summary_mod.published_comparison(summary).set_index(["selection", "model"])
    assert len(comp) == 4  # same-model rows only: 2 models x (critical, random)
    pub = PUBLISHED["occlusion_drop"].values  # read from the one place the numbers are typed
    assert comp.loc[("critical", "A")].published == pub["map"] and comp.loc[("critical", "A")].ours == 0.1
    assert comp.loc[("random", "B")].published == pub["random"] and comp.loc[("random", "B")].ours == 0.02
    assert list(table.columns) == summary_mod.TRANSFER_COLUMNS and list(comp.reset_index().columns) != []
    grid = summary_mod.table2(table.assign(recognition_rate=[0.1, 0.2, 0.3, 0.4, 0.8, 0.9]), ["A", "B"])
    assert list(grid.index) == ["A", "B", summary_mod.RANDOM_ROW, summary_mod.CLEAN_ROW] and list(grid.columns) == ["A", "B"]
    assert grid.index.name == summary_mod.TABLE2_INDEX
    # rows generation, columns evaluation: the (generation B, evaluation A) cell is B's maps on model A
    cell = table.assign(recognition_rate=[0.1, 0.2, 0.3, 0.4, 0.8, 0.9]).set_index(["generation", "evaluation"])
    assert grid.loc["B", "A"] == cell.loc[("B", "A"), "recognition_rate"]
    assert grid.loc["random", "B"] == cell.loc[("random", "B"), "recognition_rate"]
    assert (grid.loc[summary_mod.CLEAN_ROW] == 0.95).all()
    drops = summary_mod.table2(table, ["A", "B"], "mean_drop")
    assert summary_mod.CLEAN_ROW not in drops.index and drops.loc["A", "B"] == 0.1


def test_summary_columns_are_the_schema(setup):
    cfg, st = setup
    model = FakeModel("arcface112", "FAKE_SCHEMA")
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    maps = PersonMaps.from_arrays("FAKE_SCHEMA", "arcface112", "leam",
                                  {p: np.random.default_rng(3).random((112, 112)) for p in protocol.generation})
    out = summary_mod.summarize(runner.occlusion_experiment(cfg, model, maps, protocol), n_boot=50)
    assert set(summary_mod.SUMMARY_COLUMNS) <= set(out.columns)
    assert set(summary_mod.SUMMARY_NUMERIC) <= set(summary_mod.SUMMARY_COLUMNS)
    assert all(pd.api.types.is_numeric_dtype(out[c]) for c in summary_mod.SUMMARY_NUMERIC)
    assert list(summary_mod.published_comparison(out).columns) == summary_mod.PUBLISHED_COLUMNS


def test_transfer_experiment_crosses_every_generation_and_evaluation_model(setup):
    cfg, st = setup
    zoo = {"FAKE_TA": FakeModel("arcface112", "FAKE_TA"), "FAKE_TB": FakeModel("dlib150", "FAKE_TB")}
    protocol = protocol_mod.make_protocol(st, 1, seed=0)
    rng = np.random.default_rng(4)
    maps = {name: PersonMaps.from_arrays(name, m.spec.geometry, "gradcam++",
                                         {p: rng.random((align.GEOMETRIES[m.spec.geometry].size,) * 2)
                                          for p in protocol.generation}) for name, m in zoo.items()}
    run = runner.transfer_experiment(cfg, zoo, maps, protocol, fill="black", q=1.0, random_seeds=[0])
    crit = run.images[run.images.selection == "critical"]
    assert set(zip(crit.generation_model, crit.model)) == {(g, e) for g in zoo for e in zoo}
    rand = run.images[run.images.selection == "random"]
    assert set(zip(rand.generation_model, rand.model)) == {(e, e) for e in zoo}  # the floor once per evaluation model
    assert (run.images.explainer == "gradcam++").all()
