"""The lattice treatment's paired differences on constructed arms: values, intervals and unit checks."""
import pandas as pd
import pytest

from facexai import lattice_effect
from facexai.lattice_effect import Measures

SAME, DIFFERENT = "same person", "different people"
PEOPLE = ["a", "b", "c", "d"]
PATHS = ["a/1.jpg", "b/1.jpg", "c/1.jpg"]


def arm(nose, bc, drop, random_drop=(0.01, 0.02, 0.03), people=PEOPLE, paths=PATHS, images=("x", "y")) -> Measures:
    groups = [SAME] * 2 + [DIFFERENT] * (len(bc) - 2)
    return Measures(pd.Series(nose, index=people, dtype=float), pd.DataFrame({"group": groups, "bc": bc}),
                    pd.Series(drop, index=paths, dtype=float), pd.Series(random_drop, index=paths, dtype=float),
                    tuple(images))


def by_measure(rows: list[dict]) -> dict[str, dict]:
    return {r["measure"]: r for r in rows}


def test_differences_are_paired_means_with_intervals_around_them():
    plain = arm([0.1, 0.2, 0.3, 0.4], [0.9, 0.8, 0.3, 0.2, 0.1], [0.2, 0.1, 0.3])
    treated = arm([0.15, 0.2, 0.35, 0.4], [0.9, 0.8, 0.3, 0.2, 0.1], [0.1, 0.1, 0.1])
    rows = by_measure(lattice_effect.paired_differences("M", plain, treated, seed=0, n_boot=500))
    assert list(rows) == ["nose share", f"BC {DIFFERENT}", f"BC {SAME}", "cosine drop (critical)"]
    nose = rows["nose share"]
    assert nose["plain"] == pytest.approx(0.25) and nose["anti_aliased"] == pytest.approx(0.275)
    assert nose["difference"] == pytest.approx(0.025) and nose["n"] == 4
    assert 0.0 <= nose["ci_lo"] <= nose["difference"] <= nose["ci_hi"] <= 0.05  # resamples of {0.05, 0, 0.05, 0}
    assert rows[f"BC {SAME}"]["n"] == 2 and rows[f"BC {DIFFERENT}"]["n"] == 3
    for group in (SAME, DIFFERENT):  # unchanged values: a zero difference with a zero-width interval
        r = rows[f"BC {group}"]
        assert r["difference"] == r["ci_lo"] == r["ci_hi"] == 0.0
    drop = rows["cosine drop (critical)"]
    assert drop["difference"] == pytest.approx(-0.1) and drop["ci_hi"] <= 0.0


def test_units_are_matched_by_name_not_position():
    """The same people in another order are not silently paired by position."""
    plain = arm([0.1, 0.2, 0.3, 0.4], [0.5] * 4, [0.2, 0.1, 0.3])
    shuffled = arm([0.4, 0.3, 0.2, 0.1], [0.5] * 4, [0.2, 0.1, 0.3], people=PEOPLE[::-1])
    with pytest.raises(ValueError, match="nose share.*another order"):
        lattice_effect.paired_differences("M", plain, shuffled)


def test_arms_on_other_units_are_refused():
    plain = arm([0.1, 0.2, 0.3, 0.4], [0.5] * 4, [0.2, 0.1, 0.3])
    other_images = arm([0.1, 0.2, 0.3, 0.4], [0.5] * 4, [0.2, 0.1, 0.3], images=("x", "z"))
    with pytest.raises(ValueError, match="different images"):
        lattice_effect.paired_differences("M", plain, other_images)
    other_paths = arm([0.1, 0.2, 0.3, 0.4], [0.5] * 4, [0.2, 0.1, 0.3], paths=["a/1.jpg", "b/1.jpg", "e/1.jpg"])
    with pytest.raises(ValueError, match=r"cosine drop \(critical\).*e/1.jpg"):
        lattice_effect.paired_differences("M", plain, other_paths)


def test_summary_row_counts_the_arms_units():
    row = lattice_effect.summary_row("M", True, arm([0.1, 0.2, 0.3, 0.4], [0.9, 0.7, 0.2, 0.1, 0.3], [0.2, 0.1, 0.3]))
    assert row == pytest.approx({"model": "M", "antialias": True, "nose_share": 0.25, "bc_same": 0.8,
                                 "bc_different": 0.2, "drop_critical": 0.2, "drop_random": 0.02,
                                 "n_people": 4, "n_occluded": 3})
