"""Which run made a table: a stamp written beside every table, checked by the claims ledger.

A run's identity is what notebook 00 recorded about it (``study.prepare``'s summary: run name,
profile, data set, selection counts, seed, pairs, models) plus its profile's settings, less the
texts that only describe the profile (:data:`DESCRIPTIVE`). Every table
``plots.save_table`` writes gets a sidecar ``<table>.meta.json`` holding that stamp and the table's
SHA-256; the ledger refuses a table whose sidecar is missing, whose content changed after it was
stamped, or whose stamp is another run's (e.g. figures copied from one run folder into another).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from facexai import cache

#: The table notebook 00 writes first in every run folder (figures/<run>/): the run's summary.
SUMMARY_TABLE = Path("00_data") / "summary.csv"
#: A stamp (JSON) that overrides the one found from the run folder, for tools writing tables elsewhere.
ENV = "FACEXAI_RUN_STAMP"
FIELDS = ("run_name", "profile", "data_digest", "settings_digest")
#: Profile keys for people (printed when a run starts) that change no result: left out of the stamp, so that
#: rewording them does not make every committed table another run's.
DESCRIPTIVE = ("description", "estimate")


class RunStampError(ValueError):
    """A table was not produced by the run the ledger describes; the message names the table."""


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def result_settings(table: Mapping[str, object]) -> dict:
    """A profile's settings without its :data:`DESCRIPTIVE` texts: the part that can change a result."""
    return {k: v for k, v in table.items() if k not in DESCRIPTIVE}


def settings(profile: str) -> dict | None:
    """The profile's result settings in profiles.toml (None for an unknown profile)."""
    from facexai import profiles  # here: profiles imports the model registry lazily, keep plots light

    table = profiles.available().get(profile)
    return result_settings(table) if table is not None else None


def settings_digest(profile: str) -> str:
    """SHA-256 of the profile's result settings in profiles.toml ('' for an unknown profile)."""
    table = settings(profile)
    return _digest(table) if table is not None else ""


def as_table_text(summary: Mapping[str, object]) -> dict[str, str]:
    """The summary as notebook 00's table holds it (item, value as CSV text), so summary.json and summary.csv
    give the same stamp whatever the value types (None, floats, lists)."""
    buffer = io.StringIO()
    pd.Series(dict(summary), name="value", dtype=object).to_frame().reset_index(names="item").to_csv(buffer,
                                                                                                     index=False)
    buffer.seek(0)
    return {row["item"]: row["value"] for row in csv.DictReader(buffer)}


def from_summary(summary: Mapping[str, object]) -> dict[str, str]:
    """The stamp of the run notebook 00 summarised (values compared as text, the data folder by its name)."""
    items = as_table_text(summary)
    if "data_root" in items:  # the clone's location is not the data set's identity
        items["data_root"] = Path(items["data_root"]).name
    data = {k: v for k, v in items.items() if k not in ("run_name", "profile")}
    profile = items.get("profile", "")
    return {"run_name": items.get("run_name", ""), "profile": profile, "data_digest": _digest(data),
            "settings_digest": settings_digest(profile), "settings": settings(profile)}


def read_summary_table(path: str | os.PathLike) -> dict[str, str]:
    """Notebook 00's summary table (columns item, value) as a dict of text."""
    with open(path, newline="") as fh:
        return {row["item"]: row["value"] for row in csv.DictReader(fh)}


def current(table: str | os.PathLike) -> dict[str, str] | None:
    """The stamp for a table written at ``figures/<run>/<notebook>/<name>``: $FACEXAI_RUN_STAMP, else the stamp
    of that run folder's ``00_data/summary.csv``, else None (no run summary yet)."""
    if os.environ.get(ENV):
        return json.loads(os.environ[ENV])
    summary = Path(table).resolve().parent.parent / SUMMARY_TABLE
    return from_summary(read_summary_table(summary)) if summary.is_file() else None


def sidecar(table: str | os.PathLike) -> Path:
    """``<table>.meta.json`` beside ``<table>.csv``."""
    base = Path(table).with_suffix("")
    return base.with_name(base.name + ".meta.json")


def write(table: str | os.PathLike, stamp: Mapping[str, str] | None) -> Path:
    """Write the sidecar of ``table``: its stamp (None: unstamped) and its SHA-256."""
    meta = {"table": Path(table).name, "sha256": cache.file_sha256(table), "stamp": dict(stamp) if stamp else None}
    return cache.save_json(sidecar(table), meta)


def check(table: str | os.PathLike, expected: Mapping[str, str], name: str = "") -> None:
    """RunStampError unless ``table`` is unchanged since stamped and its stamp equals ``expected``."""
    name = name or str(table)
    meta_path = sidecar(table)
    if not meta_path.is_file():
        raise RunStampError(f"table {name} has no run stamp ({meta_path.name} missing): it was not written by this "
                            f"run's notebooks; rerun the notebook that makes it")
    meta = json.loads(meta_path.read_text())
    if meta.get("sha256") != cache.file_sha256(table):
        raise RunStampError(f"table {name} changed after its run stamp was written (SHA-256 differs from "
                            f"{meta_path.name}); rerun the notebook that makes it")
    stamp = meta.get("stamp") or {}
    differ = [f"{k} {stamp.get(k)!r} (this run: {expected.get(k)!r})"
              for k in FIELDS if stamp.get(k) != expected.get(k)]
    if differ:
        before, now = stamp.get("settings") or {}, expected.get("settings") or {}
        changed = [f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
                   if before.get(k) != now.get(k)]
        raise RunStampError(f"table {name} was produced by another run: " + "; ".join(differ)
                            + (f" (settings changed: {', '.join(changed)})" if changed else "")
                            + "; rerun the notebook that makes it for this run")


def restamp_descriptive(sidecar_path: str | os.PathLike) -> bool:
    """Rewrite a sidecar stamped when the settings digest still covered the :data:`DESCRIPTIVE` texts: the same
    stamp over its own stored settings less those texts. Only a self-consistent stamp of an unchanged table
    is rewritten (its stored digest is of its stored settings; the table's SHA-256 matches); returns whether
    it was."""
    path = Path(sidecar_path)
    meta = json.loads(path.read_text())
    stamp, table = meta.get("stamp") or {}, path.with_name(meta.get("table", ""))
    stored = stamp.get("settings")
    if (not isinstance(stored, dict) or not set(DESCRIPTIVE) & set(stored)
            or _digest(stored) != stamp.get("settings_digest")
            or not table.is_file() or cache.file_sha256(table) != meta.get("sha256")):
        return False
    kept = result_settings(stored)
    cache.save_json(path, {**meta, "stamp": {**stamp, "settings": kept, "settings_digest": _digest(kept)}})
    return True
