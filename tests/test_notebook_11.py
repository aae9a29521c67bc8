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


def test_ledger_beside_another_run(smoke_run, tmp_path):
    """-p beside RUN: notebook 11 sets the verdicts of RUN's ledger beside this run's (a copy of the smoke run,
    whose 'other' run disagrees on one claim)."""
    import shutil
    import subprocess
    import sys

    from facexai import profiles

    _, figures, _ = smoke_run
    cache = json.loads((figures / "manifest.json").read_text())["options"]["cache_dir"]  # the run's data artifacts
    ours = tmp_path / "figures" / figures.name
    shutil.copytree(figures, ours)
    other = pd.read_csv(figures / claims.LEDGER, keep_default_na=False)
    first = other.claim.iloc[0]
    other.loc[0, "verdict"] = next(v for v in claims.VERDICTS if v != other.verdict.iloc[0])
    (tmp_path / "figures" / "other" / "11_claims").mkdir(parents=True)
    other.to_csv(tmp_path / "figures" / "other" / claims.LEDGER, index=False)
    res = subprocess.run([sys.executable, "-P", "-m", "facexai.cli", "--profile", "smoke", "--only", "11",
                          "--run-name", figures.name, "--figures-dir", str(ours), "--out", str(tmp_path / "out"),
                          "--cache-dir", cache, "--no-html", "-p", "beside", "other"],
                         cwd=profiles.REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    table = pd.read_csv(ours / "11_claims" / "beside_other.csv", keep_default_na=False)
    assert list(table.claim) == list(other.claim)
    assert table.loc[table.verdict_changed.astype(str) == "True", "claim"].tolist() == [first]
