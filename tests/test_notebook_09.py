"""Notebook 09_claims in the smoke run: the ledger exists, every row is judged, every number traces to its file."""
import hashlib
import html
import json
import re

import pandas as pd

from facexai import claims


def test_claims_ledger(smoke_run):
    _, figures, executed = smoke_run
    assert (executed / "09_claims.ipynb").is_file()
    ledger = pd.read_csv(figures / "09_claims" / "claims.csv", keep_default_na=False)
    assert ledger.claim.tolist() == [c.key for c in claims.CLAIMS]
    assert set(ledger.verdict) <= set(claims.VERDICTS)
    assert (ledger.reason != "").all()
    # notebook 03 always runs before 09: its claim must be judged
    assert ledger.set_index("claim").loc["layers_differ", "verdict"] != claims.NOT_TESTABLE
    spec = {c.key: c for c in claims.CLAIMS}
    for _, row in ledger.iterrows():
        if row.verdict == claims.NOT_TESTABLE:
            continue
        assert row.link and (figures / row.link).is_file(), row.claim
        assert not row.figure or (figures / row.figure).is_file()
        source = figures / row.source
        assert re.match(r"0[0-8]_", row.source), f"{row.claim} reads {row.source}, not an earlier notebook's table"
        assert hashlib.sha256(source.read_bytes()).hexdigest() == row.source_sha256
        # the same claim, measured again from that file now, gives the ledger's numbers
        again = json.loads(claims.evaluate(spec[row.claim], figures)["values"])
        assert again == json.loads(row["values"]) and again, row.claim
        assert row.ours and row.measured_on
    md, page = (figures / "claims.md").read_text(), (figures / "claims.html").read_text()
    for text in ledger.published:
        assert text in md and html.escape(text) in page
    assert "## Provenance" in md and len(re.findall(r"\| [0-9a-f]{64} \|", md)) == (ledger.source_sha256 != "").sum()
