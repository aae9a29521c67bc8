"""facexai.floor_differences: technique minus random floor, paired over people, with a bootstrap interval."""
import numpy as np
import pandas as pd
import pytest

from facexai import occlusion_summary
from facexai.floor_differences import COLUMNS, floor_differences
from facexai.occlusion_runner import IMAGE_COLUMNS, PAIR_COLUMNS, OcclusionRun


def make_run(accept: dict[str, list[bool]], drops: dict[str, float], people: int, seeds: int = 1,
             rng: np.random.Generator | None = None) -> OcclusionRun:
    """One model, one fill, per selection name ('random' = the floor) and person one occluded image with
    len(accept[sel]) // people genuine pairs each (accepted as given) and one impostor pair; drops as given."""
    images, pairs = [], []
    for sel, accepted in accept.items():
        per = len(accepted) // people
        for s in range(seeds if sel == "random" else 1):
            for p in range(people):
                base = {"dataset": "LFW", "model": "M", "generation_model": "M",
                        "explainer": "leam" if sel == "random" else sel, "in_sample": False, "fill": "black",
                        "q": 1.0, "selection": "random" if sel == "random" else "critical",
                        "seed": s if sel == "random" else -1, "identity": f"p{p}", "path": f"p{p}/0.jpg"}
                drop = drops[sel] + (0 if rng is None else rng.normal(0, 0.01))
                images.append({**base, "n_pixels": 10, "clean_cos": 0.9, "occluded_cos": 0.9 - drop, "drop": drop})
                for k in range(per):
                    ok = accepted[p * per + k]
                    pairs.append({**base, "partner": f"p{p}/{k + 1}.jpg", "same": True, "clean_score": 0.8,
                                  "occluded_score": 0.7 if ok else 0.1, "threshold": 0.5})
                pairs.append({**base, "partner": "other.jpg", "same": False, "clean_score": 0.1,
                              "occluded_score": 0.1, "threshold": 0.5})
    return OcclusionRun(pd.DataFrame(images)[["dataset", *IMAGE_COLUMNS]], pd.DataFrame(pairs)[["dataset", *PAIR_COLUMNS]])


def test_difference_equals_the_summary_rates_and_the_interval_holds_it():
    rng = np.random.default_rng(1)
    people = 40
    run = make_run({"gradcam": list(rng.random(people * 3) < 0.6), "random": list(rng.random(people * 3) < 0.95)},
                   {"gradcam": 0.05, "random": 0.01}, people, rng=rng)
    out = floor_differences(run, n_boot=500, seed=0)
    assert list(out.columns) == ["dataset", *COLUMNS]
    summary = occlusion_summary.summarize(run, by=["dataset"], n_boot=10).set_index("selection")
    rr = out[out.measure == "recognition_rate"].iloc[0]
    expected = summary.loc["critical", "recognition_rate"] - summary.loc["random", "recognition_rate"]
    assert rr.difference == pytest.approx(expected)  # independent: the summary's own rates
    assert rr.technique == "gradcam" and rr.n_people == people and rr.n_images == people
    assert rr.ci_lo < rr.difference < rr.ci_hi < 0  # 60% vs 95% accepted: clearly below the floor
    drop = out[out.measure == "mean_drop"].iloc[0]
    assert drop.difference == pytest.approx(summary.loc["critical", "mean_drop"] - summary.loc["random", "mean_drop"])
    assert 0 < drop.ci_lo < drop.difference < drop.ci_hi


def test_identical_selections_differ_by_zero_with_a_zero_width_interval():
    accepted = [True, False, True] * 10
    run = make_run({"leam": accepted, "random": accepted}, {"leam": 0.02, "random": 0.02}, people=10)
    out = floor_differences(run, n_boot=200)
    assert np.allclose(out[["difference", "ci_lo", "ci_hi"]].to_numpy(), 0)


def test_interval_narrows_with_more_people():
    widths = []
    for people in (10, 160):
        rng = np.random.default_rng(people)
        run = make_run({"leam": list(rng.random(people * 2) < 0.7), "random": list(rng.random(people * 2) < 0.9)},
                       {"leam": 0.03, "random": 0.01}, people, rng=rng)
        rr = floor_differences(run, measures=["recognition_rate"], n_boot=1000).iloc[0]
        widths.append(rr.ci_hi - rr.ci_lo)
    assert widths[1] < widths[0] / 2


def test_floor_is_restricted_to_the_people_the_technique_occluded():
    people = 6
    run = make_run({"srise": [False] * people, "random": [True] * (people // 2) + [False] * (people // 2)},
                   {"srise": 0.1, "random": 0.0}, people)
    keep = run.images.selection.eq("random") | run.images.identity.isin(["p0", "p1"])  # RISE on a subset
    keep_pairs = run.pairs.selection.eq("random") | run.pairs.identity.isin(["p0", "p1"])
    sub = OcclusionRun(run.images[keep], run.pairs[keep_pairs])
    rr = floor_differences(sub, measures=["recognition_rate"], n_boot=50).iloc[0]
    assert rr.n_people == 2 and rr.floor_value == 1.0 and rr.difference == -1.0  # p0, p1 accept under the floor


def test_random_seeds_pool_into_one_floor_and_bad_input_is_refused():
    run = make_run({"leam": [True] * 8, "random": [True, False] * 4}, {"leam": 0.0, "random": 0.0}, people=4, seeds=3)
    rr = floor_differences(run, measures=["recognition_rate"], n_boot=20).iloc[0]
    assert rr.floor_value == 0.5 and rr.difference == 0.5
    with pytest.raises(ValueError, match="measure"):
        floor_differences(run, measures=["accuracy"])
    with pytest.raises(ValueError, match="n_boot"):
        floor_differences(run, n_boot=0)
    with pytest.raises(ValueError, match="no column \\['subset'\\]"):
        floor_differences(run, by=("subset",))
    no_floor = OcclusionRun(run.images[run.images.selection != "random"], run.pairs[run.pairs.selection != "random"])
    assert floor_differences(no_floor).empty
