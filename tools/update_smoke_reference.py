"""Write the smoke run's tables into tests/reference/smoke/ (the references tests/test_smoke_reference.py checks).

Run it after a change that is meant to move the smoke results, and commit the result with that
change (the diff of tests/reference/smoke/ shows what moved):

    .venv/bin/python tools/update_smoke_reference.py                  # a fresh smoke run on an empty cache
    .venv/bin/python tools/update_smoke_reference.py --figures figures/smoke-test   # reuse a run's tables
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from smoke_reference import REFERENCE_DIR, normalise, tables  # noqa: E402

RUN_NAME = "smoke-reference"


def smoke_run() -> Path | None:
    """Run every notebook in the smoke profile on an empty cache, as the test fixture does; its figures folder
    (None when a notebook failed: run_all.sh has printed which)."""
    shutil.rmtree(REPO / "figures" / RUN_NAME, ignore_errors=True)  # no table of an earlier run may linger
    with tempfile.TemporaryDirectory(prefix="smoke-reference-") as cache:
        cmd = [str(REPO / "run_all.sh"), "--profile", "smoke", "--cache-dir", cache, "--run-name", RUN_NAME]
        print("running:", " ".join(cmd), flush=True)
        if subprocess.run(cmd, cwd=REPO).returncode != 0:
            return None
    return REPO / "figures" / RUN_NAME


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--figures", type=Path, help="take the tables of this run folder (figures/<run>) instead")
    args = ap.parse_args()
    figures = args.figures.resolve() if args.figures else smoke_run()
    if figures is None:
        print("the smoke run failed: references left unchanged", file=sys.stderr)
        return 1
    found = tables(figures)
    if not found:
        print(f"no tables under {figures}", file=sys.stderr)
        return 1
    shutil.rmtree(REFERENCE_DIR, ignore_errors=True)
    for name, path in found.items():
        target = REFERENCE_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, newline="") as src, open(target, "w", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerows([normalise(cell, figures.name) for cell in row] for row in csv.reader(src))
    print(f"wrote {len(found)} reference tables to {REFERENCE_DIR.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
