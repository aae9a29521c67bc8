"""Shared fixtures: the shipped LFW sample and the optional ../shared data folder."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import facexai  # noqa: F401  (installs the torchvision compat layer before any test imports it)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def run_all(*args: str, cache: Path) -> subprocess.CompletedProcess:
    """./run_all.sh --profile smoke with its own cache folder (in the project's venv)."""
    env = dict(os.environ, FACEXAI_VENV=os.environ.get("FACEXAI_VENV", str(REPO / ".venv")))
    return subprocess.run(["bash", str(REPO / "run_all.sh"), "--profile", "smoke", "--cache-dir", str(cache), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Run every notebook once in the smoke profile: (result, figures folder, executed notebooks folder)."""
    cache = tmp_path_factory.mktemp("cache")
    res = run_all("--run-name", "smoke-test", cache=cache)
    assert res.returncode == 0, f"run_all.sh failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res, REPO / "figures" / "smoke-test", REPO / "outputs" / "smoke-test" / "notebooks"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared next to the repo (or $FACEXAI_SHARED); skips the test when it is absent."""
    path = Path(os.environ.get("FACEXAI_SHARED") or REPO.parent / "shared")
    if not (path / "data").is_dir():
        pytest.skip(f"shared data folder {path} is absent (set FACEXAI_SHARED to use another)")
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped LFW sample data/lfw_sample (<Name>/<Name>_NNNN.jpg)."""
    path = REPO / "data" / "lfw_sample"
    assert path.is_dir(), f"{path} is missing: run tools/make_sample.py"
    return path
