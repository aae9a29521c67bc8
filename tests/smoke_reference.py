"""The smoke run's tables against the committed references in tests/reference/smoke/ (issue 13, item 1).

Every CSV a smoke run writes under ``figures/<run>/`` is compared with its reference: same columns,
same rows, numbers equal within ``RTOL``/``ATOL``, text equal (JSON cells, e.g. claims.csv's
``values``, as structures whose numbers are within the same tolerance). The references are written by
``tools/update_smoke_reference.py`` from a smoke run on an empty cache. Columns that are not results
(timings, file digests and times) are skipped by name (``SKIPPED_COLUMNS``).
"""
from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO / "tests" / "reference" / "smoke"
RUN = "$RUN"  # stands for the run's name (00's summary holds it), so any run name compares
RTOL, ATOL = 1e-3, 1e-5  # float noise across CPUs and BLAS builds; a changed result moves by far more
SKIPPED_COLUMNS = re.compile(r"seconds|sha256|mtime|digest")  # wall-clock times; digests and times of files
EXCLUDED = ("*manifest*",)  # tables (globs relative to the run's figures folder) that are not results
MAX_REPORTED = 40  # differing cells listed per table


def normalise(cell: str, run_name: str) -> str:
    """A text cell as the references hold it: the run's name as $RUN, this checkout's path as $REPO."""
    return RUN if cell == run_name else cell.replace(str(REPO), "$REPO")


def tables(figures_dir: Path) -> dict[str, Path]:
    """The run's compared tables: relative name -> path."""
    out = {}
    for path in sorted(figures_dir.rglob("*.csv")):
        name = path.relative_to(figures_dir).as_posix()
        if not any(fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED):
            out[name] = path
    return out


def read(path: Path, run_name: str = RUN) -> pd.DataFrame:
    """A table as written, text cells normalised (empty files: no rows, no columns)."""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = pd.Series([("" if pd.isna(v) else normalise(str(v), run_name)) for v in frame[column]],
                                      index=frame.index, dtype=object)  # plain text, empty cells as ""
    return frame


def compare(name: str, expected: pd.DataFrame, actual: pd.DataFrame, rtol: float = RTOL,
            atol: float = ATOL) -> list[str]:
    """The differences of one table, one line each (empty: equal within the tolerance)."""
    if list(expected.columns) != list(actual.columns):
        return [f"{name}: columns {list(actual.columns)}, reference {list(expected.columns)}"]
    if len(expected) != len(actual):
        return [f"{name}: {len(actual)} rows, reference {len(expected)}"]
    problems = []
    for column in expected.columns:
        if SKIPPED_COLUMNS.search(str(column)):
            continue
        e, a = expected[column], actual[column]
        if pd.api.types.is_numeric_dtype(e) and pd.api.types.is_numeric_dtype(a):
            ev, av = e.to_numpy(float), a.to_numpy(float)
            same = np.isclose(av, ev, rtol=rtol, atol=atol) | (np.isnan(ev) & np.isnan(av))
        else:
            same = np.array([same_text(str(x), str(y), rtol, atol) for x, y in zip(a, e)], dtype=bool)
        for row in np.flatnonzero(~same):
            got, want = a.iloc[row], e.iloc[row]
            got, want = (v.item() if isinstance(v, np.generic) else v for v in (got, want))
            problems.append(f"{name}: row {row}, column '{column}': {got!r}, reference {want!r}")
    if len(problems) > MAX_REPORTED:
        problems = problems[:MAX_REPORTED] + [f"{name}: ... {len(problems) - MAX_REPORTED} more differing cells"]
    return problems


def same_text(got: str, want: str, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Equal text, or two JSON values of the same structure whose numbers are within the tolerance."""
    if got == want:
        return True
    try:
        return _same_json(json.loads(got), json.loads(want), rtol, atol)
    except ValueError:
        return False


def _same_json(got, want, rtol: float, atol: float) -> bool:
    if isinstance(got, bool) or isinstance(want, bool) or not isinstance(want, (int, float, list, dict)):
        return got == want
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and bool(np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            _same_json(g, w, rtol, atol) for g, w in zip(got, want))
    return isinstance(got, dict) and got.keys() == want.keys() and all(
        _same_json(got[k], want[k], rtol, atol) for k in want)


def compare_runs(reference_dir: Path, figures_dir: Path, run_name: str) -> list[str]:
    """Every difference between a run's tables and the references, including missing and new tables."""
    expected, actual = tables(reference_dir), tables(figures_dir)
    problems = [f"{name}: in the reference, not written by the run" for name in sorted(set(expected) - set(actual))]
    problems += [f"{name}: written by the run, not in the reference (tools/update_smoke_reference.py adds it)"
                 for name in sorted(set(actual) - set(expected))]
    for name in sorted(set(expected) & set(actual)):
        problems += compare(name, read(expected[name]), read(actual[name], run_name))
    return problems
