"""Map definitions of the BC arm: aggregations, sharpening, half-person maps and their BC, against plain formulas."""
import numpy as np
import pytest

from facexai import map_definitions as md
from facexai import metrics


@pytest.fixture
def maps():
    rng = np.random.default_rng(0)
    m = rng.random((6, 3, 12, 12)).astype(np.float32)
    return m / m.sum(axis=(-2, -1), keepdims=True)


def test_aggregations(maps):
    np.testing.assert_allclose(md.aggregate(maps, "sum1_mean"), maps.mean(1), rtol=1e-6)
    mm = (maps - maps.min((-2, -1), keepdims=True)) / np.ptp(maps, axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(md.aggregate(maps, "minmax_mean"), mm.mean(1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(md.aggregate(maps, "max"), mm.max(1), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(md.aggregate(maps, "layer-1"), maps[:, 2])
    np.testing.assert_array_equal(md.aggregate(maps, "layer0"), maps[:, 0])
    with pytest.raises(ValueError, match="3 layers"):
        md.aggregate(maps, "layer3")
    with pytest.raises(ValueError, match="unknown aggregation"):
        md.aggregate(maps, "median")


def test_aggregation_in_chunks_equals_at_once(maps):
    many = np.concatenate([maps] * 30).astype(np.float16)  # 180 images > CHUNK
    np.testing.assert_allclose(md.aggregate(many, "minmax_mean"), np.tile(md.aggregate(many[:6], "minmax_mean"),
                                                                          (30, 1, 1)), rtol=1e-6)


def test_sharpened_equals_sharpen_each(maps):
    flat = maps.mean(1)
    wanted = ["top10", "none", "power2", "top1", "power8"]
    got = list(md.sharpened(flat, wanted))
    assert [how for how, _ in got] == wanted
    for how, sharp in got:
        np.testing.assert_array_equal(sharp, md.sharpen(flat, how))
    with pytest.raises(ValueError, match="unknown sharpening"):
        list(md.sharpened(flat, ["none", "blur3"]))


def test_unit_roots_reject_nan_inf_and_zero_maps(maps):
    flat = maps.mean(1)
    for bad, message in ((np.nan, "non-negative"), (np.inf, "non-negative"), (-1e-9, "non-negative")):
        broken = flat.copy()
        broken[2, 3, 4] = bad
        with pytest.raises(ValueError, match=message):
            md.unit_roots(broken)
    with pytest.raises(ValueError, match="sums to zero"):
        md.unit_roots(np.zeros((2, 3, 3)))


def test_sharpening(maps):
    flat = maps.mean(1)
    np.testing.assert_array_equal(md.sharpen(flat, "none"), flat)
    top = md.sharpen(flat, "top10")
    assert set(np.unique(top)) == {0.0, 1.0} and (top.sum((1, 2)) == 14).all()  # round(0.1 * 144)
    p2 = md.sharpen(flat, "power2")
    np.testing.assert_allclose(p2 / p2.sum((1, 2), keepdims=True), flat ** 2 / (flat ** 2).sum((1, 2), keepdims=True),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="unknown sharpening"):
        md.sharpen(flat, "blur3")


def test_sharpening_moves_bc_down_for_different_maps(maps):
    flat = maps.mean(1)
    pair = np.array([[0, 1]])
    soft = md.pair_bc(md.unit_roots(flat), pair)[0]
    hard = md.pair_bc(md.unit_roots(md.sharpen(flat, "top5")), pair)[0]
    assert hard < soft  # a stated property: top-k masks of unrelated maps overlap less than the maps


def test_pair_bc_equals_metrics(maps, monkeypatch):
    flat = maps.mean(1)
    pairs = np.array([[0, 1], [2, 5], [3, 3], [4, 0]])
    want = metrics.pair_bhattacharyya(flat[:, None], pairs)[:, 0]
    np.testing.assert_allclose(md.pair_bc(md.unit_roots(flat), pairs), want, rtol=1e-5)  # 16 entries <= 8 x 4: Gram
    monkeypatch.setattr(md, "DENSE", 1)  # the pair-by-pair path of sparse pairs gives the same
    np.testing.assert_allclose(md.pair_bc(md.unit_roots(flat), pairs, chunk=3), want, rtol=1e-5)
    assert md.pair_bc(md.unit_roots(flat), pairs)[2] <= 1.0  # a map with itself: 1, rounding capped
    assert md.pair_bc(md.unit_roots(flat), pairs[:0]).shape == (0,)
    with pytest.raises(ValueError, match="non-negative"):
        md.unit_roots(-flat)


def test_mask_bc_equals_the_float_bc_of_the_masks():
    rng = np.random.default_rng(4)
    masks = rng.random((7, 9, 13)) < rng.uniform(0.05, 0.6, (7, 1, 1))  # 117 pixels (not whole words), sizes differ
    masks[0] = masks[1]
    pairs = np.array([[0, 1], [1, 2], [3, 6], [5, 5], [6, 4]])
    want = metrics.pair_bhattacharyya(masks[:, None].astype(np.float64), pairs)[:, 0]
    np.testing.assert_allclose(md.mask_bc(masks, pairs), want, rtol=1e-12)
    assert md.mask_bc(masks, pairs)[0] == 1.0 and md.mask_bc(masks, pairs)[3] == 1.0  # equal masks: exactly 1
    np.testing.assert_allclose(md.map_bc(masks, pairs), want, rtol=1e-12)  # bool maps take the bit-count path
    np.testing.assert_allclose(md.map_bc(masks.astype(np.float32), pairs), want, rtol=1e-5)  # the float path agrees
    masks[2] = False
    with pytest.raises(ValueError, match="sums to zero"):
        md.mask_bc(masks, pairs)


def test_top_sharpened_bc_is_the_overlap_share(maps):
    flat = maps.mean(1)
    top = md.sharpen(flat, "top10")
    assert top.dtype == bool
    shared = (top[0] & top[3]).sum() / top[0].sum()  # equal sizes k: BC = |A & B| / k
    assert md.map_bc(top, np.array([[0, 3]]))[0] == pytest.approx(shared, abs=1e-15)


def test_half_split_and_person_maps():
    ids = np.array(["a"] * 5 + ["b"] * 2 + ["c"])
    half = md.half_split(ids, seed=3)
    assert sorted(half[:5].tolist()) == [0, 0, 0, 1, 1] and sorted(half[5:7].tolist()) == [0, 1] and half[7] == 0
    maps = np.random.default_rng(2).random((8, 4, 4))
    people, halves = md.half_person_maps(maps, ids, seed=3)
    assert people == ["a", "b"] and halves.shape == (2, 2, 4, 4)
    unit = maps / maps.sum((1, 2), keepdims=True)
    want = unit[(ids == "a") & (half == 1)].mean(0)
    np.testing.assert_allclose(halves[0, 1], want / want.sum(), rtol=1e-6)
    same, diff = md.person_pairs(3)
    np.testing.assert_array_equal(same, [[0, 1], [2, 3], [4, 5]])
    assert len(diff) == 6 and all(a // 2 != b // 2 and a % 2 == 0 and b % 2 == 1 for a, b in diff)


def test_person_pairs_are_all_then_a_seeded_sample(monkeypatch):
    _, every = md.person_pairs(4)
    p, q = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    want = np.stack([2 * p[p != q], 2 * q[p != q] + 1], axis=1)  # every ordered pair, in order
    np.testing.assert_array_equal(every, want)
    monkeypatch.setattr(md, "PERSON_PAIRS_MAX", 5)
    same, drawn = md.person_pairs(4, seed=1)
    assert len(same) == 4 and len(drawn) == 5 and len({tuple(d) for d in drawn}) == 5
    assert {tuple(d) for d in drawn} <= {tuple(w) for w in want}  # distinct pairs of different people
    np.testing.assert_array_equal(drawn, md.person_pairs(4, seed=1)[1])  # seeded
    assert not np.array_equal(drawn, md.person_pairs(4, seed=2)[1])


def test_bc_cells_cover_the_grid(maps):
    ids = np.repeat(["a", "b", "c"], 2)
    cells = md.bc_cells(maps, ids, "M", ["image", "person"], ["sum1_mean", "layers"], ["none", "top10"],
                        {"target": "cosine"}, seed=0)
    defs = {c.definition for c in cells}
    assert len(defs) == 2 * (1 + 3) * 2 and {c.claim for c in cells} == {"bc_same", "bc_different"}
    assert "level=person; aggregation=layer-3; sharpening=top10; target=cosine" in defs
    img = [c for c in cells if c.definition == "level=image; aggregation=sum1_mean; sharpening=none; target=cosine"]
    same = next(c for c in img if c.claim == "bc_same").strata[0][1]
    assert len(same) == 3 and same[0] == pytest.approx(metrics.bhattacharyya(maps[0].mean(0), maps[1].mean(0)),
                                                       rel=1e-5)


def test_bc_cells_resume_from_their_cache(maps, tmp_path, monkeypatch):
    ids = np.repeat(["a", "b", "c"], 2)
    args = (maps, ids, "M", ["image", "person"], ["sum1_mean", "layers"], ["none", "top10", "power2"],
            {"target": "cosine"})
    fresh = md.bc_cells(*args, seed=0, cache_folder=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1 + 3  # one file per aggregation
    damaged = sorted(tmp_path.glob("*.npz"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])  # a truncated file is recomputed, not read
    repaired = md.bc_cells(*args, seed=0, cache_folder=tmp_path)
    for a, b in zip(fresh, repaired):
        np.testing.assert_array_equal(a.strata[0][1], b.strata[0][1])
    def recompute(*a, **k):
        raise RuntimeError("recomputed a cached aggregation")

    monkeypatch.setattr(md, "aggregation_bcs", recompute)
    again = md.bc_cells(*args, seed=0, cache_folder=tmp_path)
    assert [(c.claim, c.definition) for c in again] == [(c.claim, c.definition) for c in fresh]
    for a, b in zip(fresh, again):
        np.testing.assert_array_equal(a.strata[0][1], b.strata[0][1])
    with pytest.raises(RuntimeError, match="recomputed"):  # another seed is another cache entry
        md.bc_cells(*args, seed=1, cache_folder=tmp_path)


def _channel_cells(layer_patterns, ids, **kw):
    args = dict(levels=["image"], aggregations=["sum1_mean", "layers"], sharpening=["none"],
                variant={"representation": "channel_activation"}, seed=0) | kw
    cells = md.channel_bc_cells(layer_patterns, ids, "M", **args)
    return {(c.claim, c.definition): c.strata[0][1] for c in cells}


def test_channel_bc_of_identical_patterns_is_one_and_of_disjoint_ones_zero():
    ids = np.array(["a", "a", "b", "b"])
    # a's two images share one pattern; b's pattern lives on the other channels (disjoint from a's)
    layer = np.array([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75], [0, 0, 0.25, 0.75]], np.float32)
    got = _channel_cells([layer, layer], ids)
    d = "level=image; aggregation=sum1_mean; sharpening=none; representation=channel_activation"
    np.testing.assert_allclose(got[("bc_same", d)], 1.0, rtol=1e-6)
    np.testing.assert_allclose(got[("bc_different", d)], 0.0, atol=1e-7)
    person = _channel_cells([layer, layer], ids, levels=["person"])
    np.testing.assert_allclose(person[("bc_same", d.replace("image", "person"))], 1.0, rtol=1e-6)
    np.testing.assert_allclose(person[("bc_different", d.replace("image", "person"))], 0.0, atol=1e-7)


def test_channel_sum1_mean_is_the_mean_of_layer_bcs_and_bc_of_the_weighted_concatenation():
    rng = np.random.default_rng(4)
    ids = np.repeat(["a", "b", "c"], 2)
    layers = [rng.random((6, c)).astype(np.float32) for c in (3, 8)]
    layers = [p / p.sum(1, keepdims=True) for p in layers]
    got = _channel_cells(layers, ids)
    d = "level=image; aggregation={}; sharpening=none; representation=channel_activation"
    same = got[("bc_same", d.format("sum1_mean"))]
    by_layer = [got[("bc_same", d.format(f"layer{i}"))] for i in (-2, -1)]
    np.testing.assert_allclose(same, np.mean(by_layer, axis=0), rtol=1e-6)
    joint = np.concatenate(layers, axis=1) / 2  # each layer weighted 1/L: one distribution over all channels
    pairs = md.sample_pairs(ids, 0)[0]
    want = [metrics.bhattacharyya(joint[i][None], joint[j][None]) for i, j in pairs]
    np.testing.assert_allclose(same, want, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown channel aggregations"):
        md.channel_bc_cells(layers, ids, "M", ["image"], ["max"], ["none"], {}, 0)


def test_channel_top_mask_keeps_the_top_channels():
    ids = np.array(["a", "a", "b"])
    layer = np.array([[0.1, 0.2, 0.7, 0.0], [0.7, 0.2, 0.1, 0.0], [0.25] * 4], np.float32)  # top-25%: channel 2 vs 0
    got = _channel_cells([layer], ids, aggregations=["layers"], sharpening=["top25", "none"])
    top = got[("bc_same", "level=image; aggregation=layer-1; sharpening=top25; representation=channel_activation")]
    assert top[0] == 0.0  # one channel each, different ones
    plain = got[("bc_same", "level=image; aggregation=layer-1; sharpening=none; representation=channel_activation")]
    assert plain[0] == pytest.approx(np.sum(np.sqrt(layer[0] * layer[1])), rel=1e-5)
