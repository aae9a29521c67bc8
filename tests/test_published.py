"""facexai.published equals the project's reference note (../shared/notes/published.md) cell for cell,
and its derived facts follow from its own tables."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from facexai import published as P

SHARED = Path(os.environ.get("FACEXAI_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
NOTE = SHARED / "notes" / "published.md"
needs_note = pytest.mark.skipif(not NOTE.is_file(), reason=f"reference note {NOTE.name} not present (../shared absent)")


def section(text: str, start: str, end: str | None = None) -> str:
    body = text.split(start, 1)[1]
    return body.split(end, 1)[0] if end else body


def md_table(text: str, caption: str) -> tuple[list[str], list[str], np.ndarray]:
    """(row labels, column labels, cells) of the first Markdown table after ``caption``."""
    lines = [ln for ln in section(text, caption).splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    header, body = rows[0], [r for r in rows[2:]]
    return [r[0] for r in body], header[1:], np.array([[float(c) for c in r[1:]] for r in body])


def numbers(text: str) -> set[float]:
    """Every number in ``text``; percentages as fractions; ranges 'a-b' give a and b."""
    out = set()
    for lo, hi, pct in re.findall(r"(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(%?)", text):
        out |= {round(float(v) / (100 if pct else 1), 6) for v in (lo, hi) if v}
    return out


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9+]", "", text.lower())


@pytest.fixture(scope="module")
def note() -> str:
    return NOTE.read_text()


@needs_note
@pytest.mark.parametrize("table, caption", [(P.TABLE1, "Table 1."), (P.TABLE2, "Table 2.")])
def test_tables_cell_for_cell(note, table, caption):
    rows, columns, cells = md_table(note, caption)
    assert tuple(rows) == table.rows and tuple(columns) == table.columns
    assert cells.shape == (len(table.rows), len(table.columns))
    np.testing.assert_array_equal(table.frame().to_numpy(), cells)
    for i, r in enumerate(rows):
        for j, c in enumerate(columns):
            assert table.cell(r, c) == cells[i, j], (table.name, r, c)


@needs_note
def test_table_captions_and_setup(note):
    assert "1% black-pixel occlusions" in section(note, "Table 1.", "\n\n") and "1% black-pixel" in P.TABLE1.caption
    caption2 = section(note, "Table 2.", "\n\n")
    assert P.TABLE2_EXPLAINER in caption2 and P.TABLE2_DATASET in caption2 and "CPLFW" in P.TABLE2.caption
    setup = section(note, "## Work 2", "Table 1.")
    assert "7 pretrained CNNs" in setup and len(P.POSTER_SETUP["models"]) == 7
    for key in ("models", "datasets", "techniques", "occlusion_types"):
        for name in P.POSTER_SETUP[key]:
            assert name in setup, (key, name)
    assert norm(P.POSTER_SETUP["protocol"].split(";")[0]) in norm(setup)


@needs_note
def test_leam_numbers_and_statements(note):
    leam = section(note, "## Work 1", "## Work 2").split("\n", 1)[1]  # without the heading's arXiv id
    ours = {round(v, 6) for k, p in P.PUBLISHED.items() if p.work == "LEAM" for v in p.values.values()}
    missing = numbers(leam) - ours
    assert not missing, f"numbers of the note's LEAM section not in facexai.published: {sorted(missing)}"
    assert "2509.17457" in P.WORKS["LEAM"] and "Borsukiewicz" in P.WORKS["LEAM"]
    texts = norm(" ".join(p.text for p in P.PUBLISHED.values() if p.work == "LEAM"))
    for phrase in ("different layers", "across architectures", "nose", "multiple facial fragments",
                   "central region", "transferable across", "female"):
        assert norm(phrase) in texts, phrase


@needs_note
def test_poster_findings_verbatim(note):
    findings = section(note, "Key findings, as the poster states them:")
    bullets = [" ".join(b.split()) for b in findings.split("\n- ")[1:]]  # wrapped bullets joined
    assert len(bullets) == 8
    texts = [norm(p.text) for p in P.PUBLISHED.values() if p.work == "XAI-gen"]
    for bullet in bullets:
        for sentence in re.split(r"[.;]\s+", bullet.removeprefix("Conclusion:").strip()):
            if sentence.strip(" ."):
                assert any(norm(sentence) in t for t in texts), sentence
    assert "issue" not in P.WORKS["XAI-gen"] and all("issue" not in p.where for p in P.PUBLISHED.values())


@needs_note
def test_derived_facts_and_inferences_are_labelled(note):
    derived = section(note, "Derived facts", "Inference (not stated)")
    inference = section(note, "Inference (not stated)", "Key findings")
    ours_derived = " ".join(n.text for n in P.DERIVED)
    ours_inference = " ".join(n.text for n in P.INFERENCES)
    assert numbers(derived) <= numbers(ours_derived) | {2.0}, numbers(derived) - numbers(ours_derived)
    assert numbers(inference) <= numbers(ours_inference), numbers(inference) - numbers(ours_inference)
    assert {n.kind for n in P.DERIVED} == {"derived"} and {n.kind for n in P.INFERENCES} == {"inference"}
    assert "IR50_I and IR50_S" in ours_inference and "genuine-acceptance" in ours_inference


def test_derived_facts_follow_from_table2():
    t2 = P.TABLE2.frame()
    ranges = t2.max(axis=1) - t2.min(axis=1)
    assert round(float(t2.to_numpy().min()), 2) == 0.04 and round(float(t2.to_numpy().max()), 2) == 0.94
    # rows decide: the between-row sum of squares dwarfs the between-column one
    grand = t2.to_numpy().mean()
    ss_rows = len(t2.columns) * ((t2.mean(axis=1) - grand) ** 2).sum()
    ss_cols = len(t2.index) * ((t2.mean(axis=0) - grand) ** 2).sum()
    assert ss_rows > 10 * ss_cols and (ranges < 0.2).all()
    lowest = t2.idxmin(axis=1)
    assert (t2["IR50_I"] == t2.min(axis=1)).all() and (lowest == "IR50_I").all()
    assert t2.loc["FN_C", "IR50_I"] == t2.loc["FN_C", "IR50"]  # the FN_C row's tie
    diag = np.diag(t2.to_numpy())
    assert [r for r, d in zip(t2.index, diag) if d == t2.loc[r].min()] == ["IR50_I"]
    assert [r for r, d in zip(t2.index, diag) if d == t2.loc[r].max()] == ["IR100"]
    assert P.TABLE2.cell("FN_C", "FN_C") == 0.337 and P.TABLE2.cell("FN_C", "IR50_I") == 0.284
    t1 = P.TABLE1.frame()
    assert (t1["LFW"] > t1["CPLFW"]).all() and (t1["LFW"] > t1["CALFW"]).all()  # "LFW is easier"


def test_tables_are_typed_and_checked():
    assert P.TABLE1.frame().shape == (5, 3) and P.TABLE2.frame().shape == (7, 7)
    assert P.TABLE1.frame().index.name == "technique" and P.TABLE2.frame().columns.name == "evaluation"
    with pytest.raises(ValueError, match="other shape"):
        P.Table("x", "XAI-gen", "", "r", "c", ("a",), ("b", "c"), ((1.0,),))
    assert P.PUBLISHED["xai_table1"].values["gradcam++|LFW"] == 0.622
    assert len(P.PUBLISHED["xai_table1"].values) == 15
    assert set(P.WORKS) == {p.work for p in P.PUBLISHED.values()}
