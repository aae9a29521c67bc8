"""Key numeric cells of the smoke notebooks, checked with nbval against committed outputs (issue 13, item 3).

:func:`build` turns a notebook's jupytext source into an ``.ipynb``: after its ``parameters`` cell a
cell that sets the smoke profile (caches and figures in folders named by environment variables, so no
machine path is committed) and quiets progress bars and log lines; the cells of :data:`CHECKED` are
marked ``# NBVAL_CHECK_OUTPUT``. The committed references in ``tests/reference/nbval/`` are such
notebooks, executed once, with the outputs of the marked cells only. ``tests/test_nbval.py`` puts
those outputs into a notebook built from the *current* source and lets ``pytest --nbval-lax``
re-execute it: a marked cell whose output differs fails.

Refresh the references after an intended change (and say so in the commit)::

    .venv/bin/python tests/nbval_reference.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO / "tests" / "reference" / "nbval"
MARK = "# NBVAL_CHECK_OUTPUT"
#: notebook stem -> a snippet of each checked cell's source (each must match exactly one cell)
CHECKED = {
    "00_data": ['study.prepare(cfg)', "pair_counts = "],
    "01_models": ["accuracy = verification.accuracy_table("],
}
SETUP = """# set by tests/nbval_reference.py: the smoke profile, the test's folders, no progress bars or log lines
import logging
import os
import warnings

import tqdm.std

profile = "smoke"
run_name = "smoke-nbval"
figures_dir = os.environ["FACEXAI_NBVAL_FIGURES"]
logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")
_init = tqdm.std.tqdm.__init__
tqdm.std.tqdm.__init__ = lambda self, *args, **kwargs: _init(self, *args, **{**kwargs, "disable": True})"""


def build(stem: str) -> nbformat.NotebookNode:
    """The notebook ``notebooks/<stem>.py`` with the setup cell after its parameters and the checked cells marked."""
    nb = jupytext.read(REPO / "notebooks" / f"{stem}.py")
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if "parameters" in cell.metadata.get("tags", []):
            cells.append(nbformat.v4.new_code_cell(SETUP))
    for snippet in CHECKED[stem]:
        hits = [c for c in cells if c.cell_type == "code" and snippet in c.source]
        if len(hits) != 1:
            raise ValueError(f"{stem}: {len(hits)} cells hold {snippet!r} (tests/nbval_reference.py CHECKED)")
        hits[0].source = f"{MARK}\n{hits[0].source}"
    nb.cells = cells
    return nb


def checked_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The marked code cells, in order."""
    return [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(MARK)]


def with_reference_outputs(nb: nbformat.NotebookNode, reference: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the reference's outputs in its marked cells (in order), every other output empty."""
    ours, theirs = checked_cells(nb), checked_cells(reference)
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} checked cells, the reference has {len(theirs)}: refresh it "
                         "(.venv/bin/python tests/nbval_reference.py)")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for cell, ref in zip(ours, theirs):
        cell.outputs, cell.execution_count = ref.outputs, ref.execution_count or 1  # nbval skips unrun cells
    return nb


def environment(cache: Path, figures: Path) -> dict[str, str]:
    """The environment of an nbval run: its own cache and figures folders."""
    return dict(os.environ, FACEXAI_CACHE=str(cache), FACEXAI_NBVAL_FIGURES=str(figures))


def run_nbval(paths: list[Path], cache: Path, figures: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``pytest --nbval-lax`` on ``paths`` in this interpreter's environment (the project's venv)."""
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                           "-q", *map(str, paths)], cwd=REPO, env=environment(cache, figures), capture_output=True,
                          text=True, timeout=timeout)


def refresh() -> None:
    """Execute the built notebooks (smoke, fresh cache) and write them with the checked cells' outputs only."""
    from nbclient import NotebookClient

    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp) / "cache", Path(tmp) / "figures")
        os.environ.update(env)  # the kernel inherits them
        for stem in CHECKED:
            nb = build(stem)
            NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
            for cell in nb.cells:
                if cell.cell_type == "code" and not cell.source.startswith(MARK):
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, REFERENCE_DIR / f"{stem}.ipynb")
            print(f"wrote {REFERENCE_DIR / f'{stem}.ipynb'}")


if __name__ == "__main__":
    refresh()
