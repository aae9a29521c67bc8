"""Restamp run folders written when the settings digest still covered the profiles' descriptive texts.

    .venv/bin/python tools/restamp_descriptive.py figures/quick figures/paper

Each table sidecar (``*.meta.json``) whose stamp is self-consistent and whose table is unchanged gets the
same stamp over its stored settings less ``description`` and ``estimate`` (facexai.runstamp.DESCRIPTIVE);
no table is touched. Prints how many sidecars were rewritten and how many were left (already current,
changed tables, unstamped).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from facexai import runstamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders, e.g. figures/quick")
    for folder in parser.parse_args(argv).folders:
        sidecars = sorted(folder.rglob("*.meta.json"))
        rewritten = sum(runstamp.restamp_descriptive(p) for p in sidecars)
        print(f"{folder}: {rewritten} of {len(sidecars)} sidecars restamped, "
              f"{len(sidecars) - rewritten} left as they were")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
