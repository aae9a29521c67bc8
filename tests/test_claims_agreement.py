"""Notebooks 03 and 05 and the ledger agree on every claim both mention (committed quick-profile tables).

The notebooks show the ledger's verdict (``claims.verdict_line``) instead of judging the claims
themselves; here the readings notebook 05 used to compute on its own are recomputed independently
from the committed tables and compared with the ledger's verdicts.
"""
import re
from pathlib import Path

import pandas as pd
import pytest

from facexai import claims
from facexai.published import PUBLISHED

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "figures" / "quick"
needs_quick = pytest.mark.skipif(not (QUICK / "05_bhattacharyya" / "bc_cross_model.csv").is_file(),
                                 reason="committed quick-profile tables absent")


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    return claims.build_ledger(QUICK).set_index("claim")


@needs_quick
def test_models_agree_notebook05_reading_and_ledger(ledger):
    cross = pd.read_csv(QUICK / "05_bhattacharyya" / "bc_cross_model.csv")
    # notebook 05's reading: two models' maps of one person at least as alike as one model's maps of two people
    between = cross[(cross.group == "same person") & (cross.model_a != cross.model_b)]["mean"].mean()
    within = cross[(cross.group == "different people") & (cross.model_a == cross.model_b)]["mean"].mean()
    supported = between >= within
    verdict = ledger.loc["models_agree", "verdict"]
    assert verdict in ((claims.REPRODUCED, claims.PARTLY) if supported else
                       (claims.NOT_REPRODUCED, claims.NOT_JUDGEABLE)), (between, within, verdict)
    assert claims.verdict_for("models_agree", QUICK)["verdict"] == verdict
    assert verdict in claims.verdict_line("models_agree", QUICK)


@needs_quick
@pytest.mark.parametrize("key, table", [("bc_same_vs_different", "bc_same_different.csv"),
                                        ("bc_same_vs_different_top1", "bc_critical_same_different.csv")])
def test_bc_gap_notebook05_reading_and_ledger(ledger, key, table):
    bc = pd.read_csv(QUICK / "05_bhattacharyya" / table)
    overall = bc[bc.layer == "overall"].pivot(index="model", columns="group", values="mean")
    pub = PUBLISHED["bc_same_vs_different"].values
    smallest_gap = pub["same_lo"] - pub["diff_hi"]  # notebook 05: "the work's ranges imply a gap of at least"
    smaller = (overall["same"] - overall["different"] < smallest_gap).all()
    row = ledger.loc[key]
    if smaller:
        assert row.magnitude != claims.COMPATIBLE and row.verdict != claims.REPRODUCED, row.reason
    assert claims.verdict_for(key, QUICK)["verdict"] == row.verdict


def _own_verdicts(source: str, phrases: list[str]) -> list[str]:
    return [p for p in phrases if p in source]


def test_notebook05_shows_the_ledgers_verdict():
    source = (REPO / "notebooks" / "05_bhattacharyya.py").read_text()
    if not re.search(r"claims\.verdict_(line|for)\(", source):
        pytest.skip("notebook 05 does not call claims.verdict_line yet")
    assert not _own_verdicts(source, ["supported: architecture", "not supported: two models"])
    for key in re.findall(r"claims\.verdict_(?:line|for)\(\"(\w+)\"", source):
        assert key in claims.SPEC


def test_notebook03_uses_the_ledgers_rule():
    source = (REPO / "notebooks" / "03_leam_layers.py").read_text()
    if not re.search(r"claims\.(verdict_line|verdict_for|rules)\(", source):
        pytest.skip("notebook 03 does not show the ledger's 'layers differ' rule yet")
    assert "'moves' if" not in source  # its own threshold (first vs last < 0.8) is gone
