"""Notebook 11_claims in the smoke run: the ledger exists, every row is judged, every number traces to its file."""
import hashlib
import html
import json
import re

import pandas as pd

from facexai import claims, runstamp


def test_claims_ledger(smoke_run):
    _, figures, executed = smoke_run
    assert (executed / "11_claims.ipynb").is_file()
    ledger = pd.read_csv(figures / "11_claims" / "claims.csv", keep_default_na=False)
    assert ledger.claim.tolist() == [c.key for c in claims.CLAIMS]
    assert set(ledger.verdict) <= set(claims.VERDICTS)
    assert (ledger.reason != "").all()
    # notebooks 03 and 05 always run before 11: the claim reading both must be judged
    assert ledger.set_index("claim").loc["layers_differ", "verdict"] != claims.NOT_TESTABLE
    for _, row in ledger.iterrows():
        if row.verdict == claims.NOT_TESTABLE:
            continue
        assert row.link and (figures / row.link).is_file(), row.claim
        assert not row.figure or (figures / row.figure).is_file()
        assert row.n and row.direction and row.magnitude, row.claim
        for source, sha in zip(row.source.split("; "), row.source_sha256.split("; ")):
            assert re.match(r"(0\d|10)_", source), f"{row.claim} reads {source}, not an earlier notebook's table"
            assert hashlib.sha256((figures / source).read_bytes()).hexdigest() == sha
            # every table the ledger read carries this run's stamp
            stamp = json.loads(runstamp.sidecar(figures / source).read_text())["stamp"]
            assert stamp["run_name"] == figures.name and stamp["data_digest"]
        # the same claim, measured again from those files now, gives the ledger's numbers
        again = claims.evaluate(claims.SPEC[row.claim], figures)
        assert json.loads(again["values"]) == json.loads(row["values"]) and again["verdict"] == row.verdict, row.claim
        assert row.ours and row.measured_on
    md, page = (figures / "claims.md").read_text(), (figures / "claims.html").read_text()
    for text in ledger.published:
        assert text in md and html.escape(text) in page
    assert "## Run and caveats" in md and "## Rules" in md
    assert (figures / "11_claims" / "forest.png").is_file() and "![ours vs published](11_claims/forest.png)" in md
    assert "## Provenance" in md
