"""Provenance: the manifest beside a run's figures, git state, peak memory, portable paths, HTML copies."""
import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image

from facexai import provenance, runner
from facexai.profiles import REPO_ROOT


def test_paths_are_written_relative_to_the_repository():
    out = provenance.portable({"a": REPO_ROOT / "data" / "x", "b": [REPO_ROOT.parent / "shared"], "c": 3})
    assert out == {"a": "data/x", "b": ["../shared"], "c": 3}
    assert provenance.portable_parameters({"data_root": str(REPO_ROOT / "data"), "seed": 0, "q": ""}) == \
        {"data_root": "data", "seed": 0, "q": ""}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_state_flags_changed_code_but_not_figures(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "figures" / "t.csv").write_text("x\n1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "c")
    state = provenance.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "figures" / "t.csv").write_text("x\n2\n")  # the run's own outputs do not make it dirty
    assert provenance.git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")
    state = provenance.git_state(tmp_path)
    assert state["dirty"] is True and state["changed"] == ["code.py"]
    assert provenance.git_state(tmp_path / "figures" / "..").get("commit")
    assert provenance.git_state(Path("/"))["commit"] is None


def test_peak_memory_sees_a_child_process():
    code = "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(1.5)"
    with provenance.PeakMemory(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert memory.peak_mb > 250, memory.peak_mb
    with provenance.PeakMemory(interval=0.05) as idle:
        pass
    assert idle.peak_mb < 250


def test_package_versions_cover_the_pins():
    packages = provenance.package_versions()
    assert packages["torch"]["pinned"] == "2.13.0"
    assert packages["torch"]["installed"].startswith("2.13.0")
    assert "facenet-pytorch" in packages  # the --no-deps pins too


def test_manifest_keeps_earlier_notebooks_and_holds_no_absolute_path(tmp_path):
    folder = REPO_ROOT / "figures" / "smoke-manifest-test"  # gitignored (figures/smoke*/)
    options = {"data_root": REPO_ROOT / "data" / "lfw_sample", "seed": 0}
    first = provenance.Manifest(folder, "smoke-manifest-test", "smoke", ["--profile", "smoke"], options)
    first.record("00_data", {"cache_root": str(REPO_ROOT / "cache"), "seed": 0}, "t0", 1.23, 500.0, "ok")
    second = provenance.Manifest(folder, "smoke-manifest-test", "smoke", ["--only", "01"], options)
    second.record("01_models", {"seed": 0}, "t1", 2.0, 600.0, "failed")
    text = (folder / "manifest.json").read_text()
    data = json.loads(text)
    assert set(data["notebooks"]) == {"00_data", "01_models"}
    assert data["notebooks"]["00_data"]["parameters"]["cache_root"] == "cache"
    assert data["notebooks"]["01_models"]["status"] == "failed" and data["command"] == "./run_all.sh --only 01"
    assert data["options"]["data_root"] == "data/lfw_sample"
    assert str(REPO_ROOT) not in text
    md = (folder / "manifest.md").read_text()
    assert "| 00_data | ok | t0 | 1.2 | 500.0 |" in md and "| 01_models | failed |" in md
    assert not list(folder.glob("*.tmp"))


def png_output(width: int, height: int) -> dict:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode()})


def test_large_figures_are_downscaled_in_the_html_copy():
    cell = nbformat.v4.new_code_cell("plot()", outputs=[png_output(2000, 500), png_output(800, 3200), png_output(60, 40)])
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert runner.shrink_images(nb) == 2
    wide, tall, small = cell.outputs
    assert "image/png" not in wide.data and "image/png" not in tall.data and "image/png" in small.data
    image = Image.open(io.BytesIO(base64.b64decode(wide.data["image/jpeg"])))
    assert image.size == (runner.MAX_IMAGE_WIDTH, 350)
    image = Image.open(io.BytesIO(base64.b64decode(tall.data["image/jpeg"])))
    assert image.width * image.height <= runner.MAX_IMAGE_PIXELS and abs(image.height / image.width - 4) < 0.01


def test_html_copy_hides_this_machines_paths(tmp_path):
    cell = nbformat.v4.new_code_cell("print(cfg)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text=f"{REPO_ROOT}/data/lfw_sample {tmp_path}/cache {REPO_ROOT.parent}/shared/lfw "
                                      f"{sys.prefix}/lib/python3.11/site-packages/tqdm/auto.py\n")])
    executed = tmp_path / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), executed)
    html = runner.export_html(executed, tmp_path / "out" / "x.html", hide={tmp_path / "cache": "$CACHE"})
    text = html.read_text()
    assert "$REPO/data/lfw_sample" in text and "$CACHE" in text and "$REPO/../shared/lfw" in text
    assert "$VENV/lib/python3.11/site-packages/tqdm" in text
    assert str(REPO_ROOT.parent) not in text and str(tmp_path) not in text and sys.prefix not in text


def test_manifest_carries_each_notebooks_cost_account(tmp_path, monkeypatch):
    import torch

    from facexai import passes

    costs = tmp_path / "results_models.json"
    costs.write_text(json.dumps({"measured": "t", "rows": [
        {"model": "M", "kind": "nograd", "threads": torch.get_num_threads(), "img_per_s": [10.0]}]}))
    monkeypatch.setattr(provenance, "COSTS_FILE", costs)
    monkeypatch.delenv(passes.ENV, raising=False)  # restored after the test
    manifest = provenance.Manifest(tmp_path / "fig", "r", "smoke", [], {})
    folder = tmp_path / "out" / "03_x.passes"
    folder.mkdir(parents=True)
    (folder / "passes-1.json").write_text("stale")  # from an earlier run: removed before the notebook starts
    manifest.count_passes("03_x", folder)
    assert os.environ[passes.ENV] == str(folder) and not list(folder.iterdir())
    passes.reset()
    passes.counted("M", torch.zeros(40, 1), lambda: torch.zeros(40, 1))  # what the notebook's kernel does
    passes.write(folder)
    passes.reset()
    manifest.count_passes("04_y", tmp_path / "out" / "04_y.passes")  # a kernel that loaded no model
    manifest.record("03_x", {}, "t0", 6.0, 1.0, "ok")
    manifest.record("04_y", {}, "t1", 2.0, 1.0, "ok")
    data = json.loads((tmp_path / "fig" / "manifest.json").read_text())
    cost = data["notebooks"]["03_x"]["cost"]
    assert [(r["model"], r["kind"], r["images"]) for r in cost["passes"]] == [("M", "nograd", 40)]
    assert cost["floor_seconds"] == 4.0 and cost["wall_seconds"] == 6.0 and cost["ratio"] == 1.5
    assert data["notebooks"]["04_y"]["cost"] == {"recorded": False}
    md = (tmp_path / "fig" / "manifest.md").read_text()
    assert "| 03_x | M nograd 40 |" in md and "| 4.0 | 6.0 | 1.50 |" in md
    assert "| 04_y | none recorded (no model loaded) |" in md
