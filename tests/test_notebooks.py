"""End to end: run_all.sh executes every notebook in the smoke profile and writes its outputs.

The ``smoke_run`` fixture (tests/conftest.py) runs the study once per test session.
"""
import json
import subprocess

import pandas as pd

from conftest import NOTEBOOKS, REPO, run_all


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


def test_html_copies_beside_the_figures(smoke_run):
    _, figures, _ = smoke_run
    for stem in NOTEBOOKS:
        html = figures / "notebooks" / f"{stem}.html"
        assert html.is_file(), stem
        assert html.stat().st_size < 3 * 2**20, f"{html.name}: {html.stat().st_size / 2**20:.1f} MB"
        text = html.read_text()
        assert "<html" in text and str(REPO) not in text, stem


def test_manifest_records_every_notebook(smoke_run):
    _, figures, _ = smoke_run
    manifest = json.loads((figures / "manifest.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert manifest["git"]["commit"] == head and isinstance(manifest["git"]["dirty"], bool)
    assert manifest["run_name"] == "smoke-test" and "--run-name smoke-test" in manifest["command"]
    assert manifest["packages"]["papermill"]["installed"] == manifest["packages"]["papermill"]["pinned"]
    for stem in NOTEBOOKS:
        entry = manifest["notebooks"][stem]
        assert entry["status"] == "ok" and entry["seconds"] > 0, stem
        assert entry["peak_memory_mb"] > 100, stem  # a kernel that imported torch
        assert entry["parameters"]["run_name"] == "smoke-test" and entry["parameters"]["profile"] == "smoke"
    assert (figures / "manifest.md").read_text().startswith("# Manifest · run smoke-test")
    assert str(REPO) not in (figures / "manifest.json").read_text()


def test_every_png_is_under_the_size_cap(smoke_run):
    from facexai import plots

    _, figures, _ = smoke_run
    pngs = sorted(figures.rglob("*.png"))
    assert pngs
    big = [f"{p.relative_to(figures)}: {p.stat().st_size / 1e6:.2f} MB" for p in pngs
           if p.stat().st_size > plots.MAX_PNG_BYTES]
    assert not big, big
