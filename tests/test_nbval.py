"""nbval guards the key numeric cells of the smoke notebooks 00 and 01 (issue 13, item 3).

The current notebook sources are re-executed (smoke profile, a fresh cache) by ``pytest --nbval-lax``
with the committed outputs of their checked cells (tests/reference/nbval/, see tests/nbval_reference.py):
the data summary, the pairs per fold and the verification accuracy must reproduce. A changed number fails.
"""
import re

import nbformat
import pytest

from nbval_reference import CHECKED, REFERENCE_DIR, build, checked_cells, run_nbval, with_reference_outputs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The current notebooks with the committed outputs of their checked cells, in a folder of their own."""
    folder = tmp_path_factory.mktemp("nbval")
    paths = []
    for stem in CHECKED:
        reference = nbformat.read(REFERENCE_DIR / f"{stem}.ipynb", as_version=4)
        path = folder / f"{stem}.ipynb"
        nbformat.write(with_reference_outputs(build(stem), reference), path)
        paths.append(path)
    return folder, paths


def test_references_hold_outputs_of_the_checked_cells_only():
    for stem, snippets in CHECKED.items():
        reference = nbformat.read(REFERENCE_DIR / f"{stem}.ipynb", as_version=4)
        marked = checked_cells(reference)
        assert len(marked) == len(snippets) and all(c.outputs for c in marked), stem
        assert not any(c.outputs for c in reference.cells if c.cell_type == "code" and c not in marked), stem
        text = (REFERENCE_DIR / f"{stem}.ipynb").read_text()
        assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text, f"{stem}: a machine path"


@pytest.mark.slow
def test_checked_cells_reproduce(built):
    folder, paths = built
    res = run_nbval(paths, folder / "cache", folder / "figures")
    assert res.returncode == 0, res.stdout[-4000:]
    assert "passed" in res.stdout and "failed" not in res.stdout


@pytest.mark.slow
def test_a_changed_number_fails(built):
    folder, paths = built  # runs after the test above: the cache holds the aligned crops
    nb = nbformat.read(paths[0], as_version=4)
    cell = checked_cells(nb)[0]
    out = next(o for o in cell.outputs if "data" in o)
    before = out["data"]["text/plain"]
    out["data"]["text/plain"] = re.sub(r"(selected_images +)(\d+)", lambda m: f"{m[1]}{int(m[2]) + 1}", before)
    assert out["data"]["text/plain"] != before, f"no selected_images line in:\n{before}"
    changed = folder / "changed_00_data.ipynb"
    nbformat.write(nb, changed)
    res = run_nbval([changed], folder / "cache", folder / "figures")
    assert res.returncode != 0, res.stdout[-3000:]
    assert "1 failed" in res.stdout and "Cell outputs differ" in res.stdout, res.stdout[-3000:]
    assert "mismatch 'text/plain'" in res.stdout  # the changed line is reported
