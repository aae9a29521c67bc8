"""End to end: run_all.sh executes every notebook in the smoke profile and writes its outputs.

The ``smoke_run`` fixture (tests/conftest.py) runs the study once per test session.
"""
import pandas as pd

from conftest import NOTEBOOKS, run_all


def test_every_notebook_executed(smoke_run):
    res, figures, executed = smoke_run
    for stem in NOTEBOOKS:
        assert (executed / f"{stem}.ipynb").is_file(), stem
        assert f"{stem} done" in res.stdout
    assert f"figures and tables: {figures}" in res.stdout


def test_data_and_model_outputs(smoke_run):
    _, figures, _ = smoke_run
    for name in ["summary.csv", "summary.md", "aligned_examples.png", "aligned_examples.pdf"]:
        assert (figures / "00_data" / name).is_file(), name
    acc = pd.read_csv(figures / "01_models" / "lfw_accuracy.csv")
    assert set(acc.model) == {"SFACE", "DLIB"}
    assert acc.accuracy.between(0.5, 1.0).all()


def test_unknown_model_stops_the_run(tmp_path):
    res = run_all("--run-name", "smoke-fail", "--models", "NO_SUCH_MODEL", "--only", "00", cache=tmp_path)
    assert res.returncode != 0
    assert "unknown model 'NO_SUCH_MODEL'" in res.stderr  # checked before any notebook runs


def test_failing_notebook_is_named(tmp_path):
    res = run_all("--run-name", "smoke-fail", "--data-root", str(tmp_path / "no_such_folder"), "--only", "00",
                  cache=tmp_path)
    assert res.returncode != 0
    assert "FAILED in notebook 00_data" in res.stderr
    assert "no_such_folder does not exist" in res.stderr


def test_leam_outputs(smoke_run):
    _, figures, _ = smoke_run
    table = pd.read_csv(figures / "03_leam_layers" / "layer_bhattacharyya.csv")
    assert set(table.model) == {"SFACE", "DLIB"}
    assert table["all pairs (mean BC)"].between(0, 1).all()
    for model in ("SFACE", "DLIB"):
        for stem in (f"layer_grid_{model}", f"overall_{model}"):
            assert (figures / "03_leam_layers" / f"{stem}.png").is_file()
            assert (figures / "03_leam_layers" / f"{stem}.pdf").is_file()
