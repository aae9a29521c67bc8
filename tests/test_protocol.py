"""The protocol sweep's grid, cell statistics and 'closest definition' summary on constructed cells."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from facexai import protocol
from facexai.published import PUBLISHED

PRIMARY = {"level": "image", "sharpening": "none"}


def test_declared_grid_reads_for_every_profile():
    for name in ("smoke", "quick", "paper"):
        g = protocol.grid(name)
        assert "kfold_balanced" in g.operating_points and g.accuracy_explainer == "gradcam++"
        assert ("cosine", False) in g.bc_variants and set(g.control_qs) <= set(g.accuracy_qs)

def test_a_run_narrows_the_variant_scale():
    paper = protocol.grid("paper")
    assert protocol.grid("paper", variant_models=None, variant_max_images=None) == paper  # None: the profile's
    narrow = protocol.grid("paper", variant_models=" DLIB, FN_C", variant_max_images="120")
    assert narrow.variant_models == ("DLIB", "FN_C") and narrow.variant_max_images == 120
    assert narrow.bc_sharpening == paper.bc_sharpening  # only the scale moves
    assert protocol.grid("paper", variant_models=["SFACE"]).variant_models == ("SFACE",)
    with pytest.raises(ValueError, match="unknown scale settings \\['n_boot'\\]"):
        protocol.grid("paper", n_boot=10)
    with pytest.raises(ValueError, match=">= 0"):
        protocol.grid("paper", variant_max_images=-1)


def test_primary_follows_the_method_table():
    method = SimpleNamespace(target="cosine", antialias=False, cam_layer=-2, q=1.0)
    p = protocol.primary(method)
    assert p["layer"] == "-2" and p["q"] == "1" and p["antialias"] == "no" and p["operating_point"] == "kfold_balanced"
    assert protocol.is_primary(protocol.definition(layer=-2, q=1.0, antialias="no"), p)
    assert not protocol.is_primary(protocol.definition(layer=-1, q=1.0), p)


def test_grid_rejects_unknown_and_missing_keys(tmp_path):
    good = (protocol.PROFILES_FILE.read_text())
    bad = tmp_path / "p.toml"
    bad.write_text(good.replace("fill = \"black\"\nn_boot", "fill = \"black\"\ncolour = 1\nn_boot"))
    with pytest.raises(ValueError, match="unknown \\['colour'\\]"):
        protocol.grid("smoke", bad)
    bad.write_text(good.replace("control_qs = [1.0]", "control_qs = [3.0]"))
    with pytest.raises(ValueError, match="among accuracy_qs"):
        protocol.grid("smoke", bad)


def test_claims_read_the_published_numbers():
    c = protocol.claims()
    bc = PUBLISHED["bc_same_vs_different"].values
    assert (c["bc_same"].published_lo, c["bc_same"].published_hi) == (bc["same_lo"], bc["same_hi"])
    assert c["bc_gap"].published_lo == pytest.approx(bc["same_lo"] - bc["diff_hi"])
    assert c["drop_ratio"].published_lo == pytest.approx(0.1148 / 0.0286)
    assert c["table1_gradcampp_lfw"].published_lo == 0.622 and c["table2_fnc_fnc"].published_hi == 0.337


def test_definitions_round_trip_and_primary():
    d = protocol.definition(level="image", q=1.0, layer=-2, sharpening="top5")
    assert d == "level=image; q=1; layer=-2; sharpening=top5"
    assert protocol.parse_definition(d) == {"level": "image", "q": "1", "layer": "-2", "sharpening": "top5"}
    assert protocol.is_primary("level=image; sharpening=none; extra=x", PRIMARY)
    assert not protocol.is_primary("level=person; sharpening=none", PRIMARY)


def test_cell_statistics_weights_strata():
    gen, imp = np.array([1, 1, 0, 1.0]), np.array([0, 0, 0, 1.0, 1.0])  # accepted; rejected
    stats = protocol.cell_statistics([protocol.cell("acc", "d", "M", (0.5, gen), (0.5, imp))], n_boot=200)
    value, boots, n = stats[("acc", "d", "M")]
    assert value == pytest.approx(0.5 * 0.75 + 0.5 * 0.4) and n == 9 and boots.shape == (200,)
    assert boots.min() >= 0 and boots.max() <= 1
    with pytest.raises(ValueError, match="empty or not finite"):
        protocol.cell("acc", "d", "M", (1.0, np.array([np.nan])))
    with pytest.raises(ValueError, match="twice"):
        protocol.cell_statistics([protocol.cell("a", "d", "M", (1.0, gen))] * 2)


def test_combine_difference_and_ratio():
    cells = [protocol.cell("s", "d", "M", (1.0, np.array([0.5, 0.7]))),
             protocol.cell("t", "d", "M", (1.0, np.array([0.2, 0.2])))]
    stats = protocol.cell_statistics(cells, n_boot=50)
    diff = protocol.combine(stats, "s", "t", "gap", "difference")[("gap", "d", "M")]
    ratio = protocol.combine(stats, "s", "t", "r", "ratio")[("r", "d", "M")]
    assert diff[0] == pytest.approx(0.4) and ratio[0] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="op must be"):
        protocol.combine(stats, "s", "t", "x", "sum")


def _summary():
    # bc_same (published 0.32-0.57): three definitions, values 0.98 (primary), 0.60 and 0.45, two models
    cells = []
    for model, shift in (("A", -0.01), ("B", 0.01)):
        for level, sh, v in (("image", "none", 0.98), ("image", "top5", 0.60), ("person", "top5", 0.45)):
            cells.append(protocol.cell("bc_same", protocol.definition(level=level, sharpening=sh), model,
                                       (1.0, np.full(20, v + shift) + np.linspace(-0.01, 0.01, 20))))
    stats = protocol.with_model_means(protocol.cell_statistics(cells, n_boot=200))
    return protocol.summarize(stats, PRIMARY)


def test_summary_schema_range_and_distance():
    s = _summary()
    assert list(s.columns[:9]) == ["claim", "definition", "value", "ci_low", "ci_high", "published_lo",
                                   "published_hi", "in_range", "distance"]
    mean = s[s.model == protocol.ALL].set_index("definition")
    assert mean.n_models.eq(2).all()
    assert mean.loc["level=image; sharpening=none", "value"] == pytest.approx(0.98)
    assert mean.loc["level=image; sharpening=none", "distance"] == pytest.approx(0.98 - 0.57)
    assert mean.loc["level=person; sharpening=top5", "in_range"] and mean.loc["level=person; sharpening=top5",
                                                                                  "distance"] == 0
    assert not mean.loc["level=image; sharpening=top5", "in_range"]
    assert mean.primary.sum() == 1 and mean.loc["level=image; sharpening=none", "primary"]
    assert (s.ci_low <= s.value + 1e-12).all() and (s.value <= s.ci_high + 1e-12).all()


def test_closest_names_the_definitions_in_range_and_the_spread():
    c = protocol.closest(_summary()).set_index("claim").loc["bc_same"]
    assert c.n_definitions == 3 and c.n_in_range == 1
    assert c.closest_definition == "level=person; sharpening=top5" and c.closest_distance == 0
    assert c.primary_value == pytest.approx(0.98)
    assert c.min_value == pytest.approx(0.45) and c.max_value == pytest.approx(0.98)
    assert c.max_definition == "level=image; sharpening=none"


def test_closest_when_nothing_is_in_range():
    s = _summary()
    s = s[s.definition != "level=person; sharpening=top5"]
    s = s.assign(in_range=False)
    c = protocol.closest(s).set_index("claim").loc["bc_same"]
    assert c.n_in_range == 0 and c.closest_definition == "level=image; sharpening=top5"
    assert c.closest_distance == pytest.approx(0.60 - 0.57)
    text = protocol.reading(protocol.closest(s), pd.DataFrame())
    assert "**none** of the 2" in text


def test_factor_effects():
    e = protocol.factor_effects(_summary(), "bc_same").set_index(["factor", "level"])
    assert e.loc[("level", "person"), "n_cells"] == 1 and e.loc[("level", "image"), "n_cells"] == 2
    assert e.loc[("sharpening", "top5"), "min"] == pytest.approx(0.45)
    assert e.loc[("sharpening", "top5"), "n_in_range"] == 1


@pytest.mark.parametrize("critical, control, lower, beaten", [
    (0.2, 0.8, True, True),    # accuracy far below the control's: beaten
    (0.8, 0.8, True, False),   # same accuracy: not beaten
    (0.3, 0.1, False, True),   # drop far above the control's: beaten
    (0.1, 0.3, False, False),  # drop below the control's: not beaten
])
def test_control_table_can_return_both_verdicts(critical, control, lower, beaten):
    noise = np.linspace(-0.02, 0.02, 30)
    crit = protocol.cell_statistics([protocol.cell("c", "d", "M", (1.0, critical + noise))], n_boot=200)
    ctrl = protocol.cell_statistics([protocol.cell("c|uniform", "d", "M", (1.0, control + noise))], n_boot=200,
                                    seed=1)
    t = protocol.control_table(crit, ctrl, {"c": lower})
    assert len(t) == 1 and t.control.iloc[0] == "uniform" and bool(t.beaten.iloc[0]) is beaten
    assert "uniform 1 of 1" in protocol.reading(pd.DataFrame(columns=["claim"]), t.assign(model=protocol.ALL)) \
        or not beaten


def test_joint_requires_every_claim_in_range():
    cells = []
    for d, same, diff in (("x=1", 0.45, 0.08), ("x=2", 0.45, 0.5), ("x=3", 0.9, 0.9)):
        cells.append(protocol.cell("bc_same", d, "A", (1.0, same + np.linspace(-0.01, 0.01, 10))))
        cells.append(protocol.cell("bc_different", d, "A", (1.0, diff + np.linspace(-0.01, 0.01, 10))))
    s = protocol.summarize(protocol.with_model_means(protocol.cell_statistics(cells, n_boot=100)), {})
    j = protocol.joint(s)
    assert j.definition.tolist() == ["x=1", "x=2", "x=3"]
    assert j.all_in_range.tolist() == [True, False, False]
    assert j.max_distance.iloc[1] == pytest.approx(0.5 - 0.13)
    assert "1 of 3 definitions put both" in protocol.reading(protocol.closest(s), pd.DataFrame(), j)


def test_grid_checks_the_new_arms(tmp_path):
    good = protocol.PROFILES_FILE.read_text()
    g = protocol.grid("smoke")
    assert g.samples == ("held_out", "in_sample") and "spatial" in g.bc_representations
    bad = tmp_path / "p.toml"
    bad.write_text(good.replace('samples = ["held_out", "in_sample"]', 'samples = ["held_out", "leaked"]'))
    with pytest.raises(ValueError, match="samples: unknown \\['leaked'\\]"):
        protocol.grid("smoke", bad)
    bad.write_text(good.replace('"channel_activation",', '"channel_variance",'))
    with pytest.raises(ValueError, match="unknown 'channel_variance'"):
        protocol.grid("smoke", bad)
    p = protocol.primary(SimpleNamespace(target="cosine", antialias=False, cam_layer=-2, q=1.0))
    assert p["sample"] == "held_out" and p["representation"] == "spatial"
    assert not protocol.is_primary("q=1; sample=in_sample", p) and protocol.is_primary("q=1; sample=held_out", p)


def test_level_difference_pairs_the_definitions():
    cells = [protocol.cell("acc", protocol.definition(q=q, sample=s), "M", (1.0, np.full(10, v)))
             for q, s, v in ((1.0, "held_out", 0.9), (1.0, "in_sample", 0.6), (2.0, "held_out", 0.8),
                             (2.0, "in_sample", 0.8), (5.0, "held_out", 0.5))]  # q=5 has no in-sample cell
    stats = protocol.cell_statistics(cells, n_boot=50)
    diff = protocol.level_difference(stats, "acc", "sample", "held_out", "in_sample", "gain")
    assert set(diff) == {("gain", "q=1", "M"), ("gain", "q=2", "M")}
    assert diff[("gain", "q=1", "M")][0] == pytest.approx(-0.3) and diff[("gain", "q=2", "M")][0] == pytest.approx(0)
    assert diff[("gain", "q=1", "M")][2] == 20


def test_select_and_arms_reading():
    rows = []
    for rep, same, diff in (("spatial", 0.98, 0.97), ("channel_activation", 0.6, 0.1)):
        d = protocol.definition(level="image", sharpening="none", representation=rep)
        rows += [protocol.cell("bc_same", d, "A", (1.0, same + np.linspace(-0.01, 0.01, 20))),
                 protocol.cell("bc_different", d, "A", (1.0, diff + np.linspace(-0.01, 0.01, 20)))]
    stats = protocol.cell_statistics(rows, n_boot=100)
    stats |= protocol.combine(stats, "bc_same", "bc_different", "bc_gap", "difference")
    s = protocol.summarize(protocol.with_model_means(stats), {})
    got = protocol.select(s, ["bc_same", "bc_different", "bc_gap"], {"sharpening": "none"}, model=None)
    assert set(got.model) == {"A", protocol.ALL} and set(got.representation) == {"spatial", "channel_activation"}
    assert protocol.select(s, ["bc_same"], {"colour": "red"}).empty
    text = protocol.arms_reading(pd.DataFrame(columns=["definition"]), got[got.model == "A"], s)
    assert "channel_activation: same 0.600, different 0.100, gap +0.500" in text
    assert "(reaches the published" in text and "(does not reach the published" in text  # both verdicts
    assert "definitions per representation: channel_activation 1 of 1, spatial 0 of 1" in text


def test_arms_reading_of_the_sample_differences():
    d = [protocol.definition(layer=-2, q=q, side="probe", measure="genuine_acceptance",
                             operating_point="kfold_balanced") for q in (1.0, 10.0)]
    cells = [protocol.cell("diff", d[0], "A", (1.0, np.full(5, -0.25))),
             protocol.cell("diff", d[1], "A", (1.0, np.zeros(5)))]
    s = protocol.summarize(protocol.with_model_means(protocol.cell_statistics(cells, n_boot=20)), {})
    no_bc = pd.DataFrame(columns=["model", "level"])
    text = protocol.arms_reading(protocol.select(s, ["diff"], {"side": "probe"}), no_bc)
    assert "layer -2, genuine_acceptance at kfold_balanced): q=1 -0.250 [-0.250, -0.250], q=10 +0.000" in text


def test_factor_effects_carry_the_intervals():
    e = protocol.factor_effects(_summary(), "bc_same")
    assert (e.ci_low_min <= e["min"]).all() and (e.ci_high_max >= e["max"]).all()
