"""Measures of the accuracy arm on constructed probes whose answers are known by hand."""
import numpy as np
import pytest

from facexai import occlusion_sweep, protocol, thresholds
from facexai.explain.topk import critical_mask


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture
def probes():
    e = np.eye(3)
    pr = occlusion_sweep.Probes(
        model="M", geometry="arcface112", identities=["a", "b"], paths=["a1", "b1"], crops=np.zeros((2, 4, 4, 3)),
        keys=["ka", "kb"], clean=e[:2], reference=e[:2], gallery=e, label=np.array([0, 1]),
        genuine=[(0, "a2"), (1, "b2")], impostor=[(0, "c1"), (1, "c1")],
        partners={"a2": e[0], "b2": e[1], "c1": e[2]}, gap=0.5)
    pr.points = {"low": thresholds.OperatingPoint("low", 0.1, 0, 0, 2, 2),
                 "high": thresholds.OperatingPoint("high", 0.9, 0, 0, 2, 2)}
    return pr


def grid(measures=("genuine_acceptance", "balanced_accuracy", "rank1")):
    return protocol.grid("smoke").__class__(**{**vars(protocol.grid("smoke")), "measures": tuple(measures)})


def test_measures_of_a_known_occlusion(probes):
    # probe a still looks like a (cos 0.8 to a2, 0.6 to c1); probe b was turned into c (cos 0 to b2, 1 to c1)
    emb = unit([[0.8, 0, 0.6], [0, 0, 1.0]])
    cells = occlusion_sweep.measure_cells("t", probes, emb, {"q": 1.0}, grid())
    stats = {c.definition: protocol.cell_statistics([c], n_boot=10)[(c.claim, c.definition, c.model)][0] for c in cells}
    assert stats["q=1; side=probe; measure=genuine_acceptance; operating_point=low"] == 0.5  # 0.8 >= 0.1, 0 < 0.1
    assert stats["q=1; side=probe; measure=genuine_acceptance; operating_point=high"] == 0.0
    # balanced at 0.1: genuine 1/2 accepted, impostors 0.6 and 1.0 both accepted -> (0.5 + 0) / 2
    assert stats["q=1; side=probe; measure=balanced_accuracy; operating_point=low"] == 0.25
    assert stats["q=1; side=probe; measure=balanced_accuracy; operating_point=high"] == pytest.approx(0.25)
    assert stats["q=1; side=probe; measure=rank1; operating_point=none"] == 0.5  # a -> a, b -> c
    assert len(cells) == 2 * 2 + 1


def test_both_sides_uses_the_occluded_partners(probes):
    emb = unit([[0.8, 0, 0.6], [0, 0, 1.0]])
    partners = {"a2": unit([0, 0, 1.0]), "b2": unit([0, 0, 1.0])}  # both partners occluded into c as well
    cells = occlusion_sweep.measure_cells("t", probes, emb, {"q": 1.0}, grid(), partners)
    assert {protocol.parse_definition(c.definition)["measure"] for c in cells} == {"genuine_acceptance"}
    high = next(c for c in cells if c.definition.endswith("operating_point=high"))
    np.testing.assert_array_equal(high.strata[0][1], [0.0, 1.0])  # a: 0.6 < 0.9; b: 1.0 >= 0.9
    assert protocol.parse_definition(high.definition)["side"] == "both"


def test_unknown_measure_is_rejected(probes):
    with pytest.raises(ValueError, match="unknown measure"):
        occlusion_sweep.measure_cells("t", probes, probes.clean, {}, grid(["eer_rate"]))


def test_control_masks_match_the_critical_pixel_count():
    rng = np.random.default_rng(0)
    critical = critical_mask(np.kron(rng.random((3, 4, 4)), np.ones((28, 28))) + 1e-3 * rng.random((3, 112, 112)), 1.0)
    face = np.zeros((3, 112, 112), bool)
    face[:, 20:90, 25:85] = True
    for control in ("uniform", "face", "shifted", "components"):
        masks = occlusion_sweep.control_masks(control, critical, ["k1", "k2", "k3"], 7, face)
        np.testing.assert_array_equal(masks.sum((1, 2)), critical.sum((1, 2)))
    assert not (occlusion_sweep.control_masks("face", critical, ["k1", "k2", "k3"], 7, face) & ~face).any()
    with pytest.raises(ValueError, match="unknown control"):
        occlusion_sweep.control_masks("checkerboard", critical, ["k1", "k2", "k3"], 7, face)


def test_both_sides_partners_per_probe(probes):
    probes.genuine = [(0, "a3"), (0, "a2"), (1, "b2")]
    assert occlusion_sweep.both_sides_partners(probes) == ["a2", "a3", "b2"]
    assert occlusion_sweep.both_sides_partners(probes, 1) == ["a2", "b2"]
    emb = unit([[1.0, 0, 0], [0, 1.0, 0]])
    occluded = {"a2": unit([1.0, 0, 0]), "b2": unit([0, 1, 0])}
    cells = occlusion_sweep.measure_cells("t", probes, emb, {}, grid(), occluded)
    assert len(cells[0].strata[0][1]) == 2  # only the pairs whose partner was occluded


def _protocol(in_sample):
    from facexai.occlusion_protocol import Protocol
    import pandas as pd

    gen = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2"]}
    held = {"a": ["a4"], "b": ["b3"]}
    images = pd.DataFrame({"identity": ["a"] * 4 + ["b"] * 3, "path": ["a1", "a2", "a3", "a4", "b1", "b2", "b3"]})
    empty = pd.DataFrame(columns=["identity", "path", "partner", "same"])
    return Protocol(images, gen, held, in_sample, empty, "test", pd.DataFrame())


def test_in_sample_probes_are_generation_images_and_held_out_ones_are_not():
    held, inside = _protocol(False), _protocol(True)
    assert occlusion_sweep.chosen_probes(held) == {"a": ["a4"], "b": ["b3"]}
    assert occlusion_sweep.chosen_probes(inside) == inside.generation  # 0: every generation image
    one = occlusion_sweep.chosen_probes(inside, 1, seed=3)
    assert all(len(p) == 1 and p[0] in inside.generation[who] for who, p in one.items())
    assert one == occlusion_sweep.chosen_probes(inside, 1, seed=3)  # seeded: the same draw again
    draws = {tuple(occlusion_sweep.chosen_probes(inside, 1, seed=s)["a"]) for s in range(20)}
    assert len(draws) > 1  # the draw depends on the seed (not always the first image)
    assert occlusion_sweep.chosen_probes(inside, 2, seed=0)["b"] == ["b1", "b2"]
    with pytest.raises(ValueError, match=">= 0"):
        occlusion_sweep.chosen_probes(inside, -1)


def test_people_without_a_person_map_have_no_probes(caplog):
    """A person with one generation image gets no person map (no leave-one-out reference), so none of their
    images is a probe, held out or in sample; the count is logged (as notebook 06 leaves them out)."""
    from facexai.person_maps import mapped_people

    for in_sample in (False, True):
        protocol = _protocol(in_sample)
        protocol.generation["c"], protocol.evaluation["c"] = ["c1"], ["c2"]
        assert mapped_people(protocol) == ["a", "b"]
        with caplog.at_level("WARNING"):
            chosen = occlusion_sweep.chosen_probes(protocol)
        assert sorted(chosen) == ["a", "b"]
        assert "1 of 3 people have fewer than 2 generation images" in caplog.text


def test_accuracy_arm_refuses_probes_of_the_wrong_sample(probes):
    probes.paths = ["a4", "b3"]  # held-out images
    with pytest.raises(ValueError, match="in-sample probes must be generation images"):
        occlusion_sweep.accuracy_cells(None, None, _protocol(True), probes, grid(), "t")
    probes.paths = ["a1", "b1"]  # generation images
    with pytest.raises(ValueError, match="held-out probes must not be generation images"):
        occlusion_sweep.accuracy_cells(None, None, _protocol(False), probes, grid(), "t")
