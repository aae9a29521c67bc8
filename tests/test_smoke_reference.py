"""The tables of a smoke run equal the committed references (tests/reference/smoke/), cell by cell."""
import pandas as pd

from smoke_reference import REFERENCE_DIR, compare, compare_runs, normalise, read, tables


def test_differences_are_reported_by_table_row_and_column():
    ref = pd.DataFrame({"model": ["A", "B"], "accuracy": [0.9, 0.8]})
    assert compare("t.csv", ref, ref.copy()) == []
    assert compare("t.csv", ref, ref.assign(accuracy=[0.9 + 1e-7, 0.8])) == []  # within the tolerance
    moved = compare("t.csv", ref, ref.assign(accuracy=[0.9, 0.81]))
    assert moved == ["t.csv: row 1, column 'accuracy': 0.81, reference 0.8"]
    assert compare("t.csv", ref, ref.assign(model=["A", "C"])) == ["t.csv: row 1, column 'model': 'C', reference 'B'"]
    assert "columns" in compare("t.csv", ref, ref.rename(columns={"accuracy": "acc"}))[0]
    assert "1 rows, reference 2" in compare("t.csv", ref, ref.head(1))[0]
    named = pd.DataFrame({"item": ["run_name"], "value": ["$RUN"]})  # the run's name stands as $RUN
    assert compare("t.csv", named, named.assign(value=[normalise("smoke-x", "smoke-x")])) == []
    timed = pd.DataFrame({"technique": ["leam"], "seconds_per_image": [0.02], "source_sha256": ["ab"]})
    assert compare("cost.csv", timed, timed.assign(seconds_per_image=[9.0], source_sha256=["cd"])) == []
    nan = pd.DataFrame({"x": [float("nan")]})
    assert compare("t.csv", nan, nan.copy()) == [] and compare("t.csv", nan, pd.DataFrame({"x": [1.0]}))


def test_json_cells_compare_as_numbers_within_the_tolerance():
    """claims.csv's values / forest cells hold JSON: float noise passes, a moved number or key does not."""
    ref = pd.DataFrame({"claim": ["C1"], "values": ['{"gap": [0.123456789, NaN], "n": 60, "ok": true}']})
    noisy = ref.assign(values=['{"gap": [0.12345679, NaN], "n": 60, "ok": true}'])
    assert compare("claims.csv", ref, noisy) == []
    for changed in ('{"gap": [0.13, NaN], "n": 60, "ok": true}', '{"gap": [0.123456789, 1.0], "n": 60, "ok": true}',
                    '{"gap": [0.123456789], "n": 60, "ok": true}', '{"gaps": [0.123456789, NaN], "n": 60, "ok": true}',
                    '{"gap": [0.123456789, NaN], "n": 60, "ok": false}', 'not json'):
        assert len(compare("claims.csv", ref, ref.assign(values=[changed]))) == 1, changed


def test_empty_text_cells_compare_equal(tmp_path):
    (tmp_path / "t.csv").write_text("model,note,x\nA,,1.0\nB,text,\n")
    table = read(tmp_path / "t.csv")
    assert compare("t.csv", table, read(tmp_path / "t.csv")) == []
    (tmp_path / "u.csv").write_text("model,note,x\nA,,1.0\nB,other,\n")
    assert compare("t.csv", table, read(tmp_path / "u.csv")) == ["t.csv: row 1, column 'note': 'other', reference 'text'"]


def test_missing_and_new_tables_are_reported(tmp_path):
    (tmp_path / "ref" / "00_data").mkdir(parents=True)
    (tmp_path / "run" / "00_data").mkdir(parents=True)
    (tmp_path / "ref" / "00_data" / "a.csv").write_text("x\n1\n")
    (tmp_path / "run" / "00_data" / "b.csv").write_text("x\n1\n")
    (tmp_path / "run" / "00_data" / "manifest.csv").write_text("x\n1\n")  # excluded: not a result
    problems = compare_runs(tmp_path / "ref", tmp_path / "run", "run")
    assert problems == ["00_data/a.csv: in the reference, not written by the run",
                        "00_data/b.csv: written by the run, not in the reference (tools/update_smoke_reference.py adds it)"]


def test_smoke_tables_match_the_reference(smoke_run):
    _, figures, _ = smoke_run
    assert tables(REFERENCE_DIR), f"no references in {REFERENCE_DIR}: run tools/update_smoke_reference.py"
    problems = compare_runs(REFERENCE_DIR, figures, figures.name)
    assert not problems, "the smoke run's tables differ from tests/reference/smoke/ " \
                         "(if the change is intended, run tools/update_smoke_reference.py):\n" + "\n".join(problems)
