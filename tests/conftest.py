"""Shared fixtures: the shipped LFW sample and the optional ../shared data folder."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import facexai  # noqa: F401  (installs the torchvision compat layer before any test imports it)
from facexai.models.registry import get_spec

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
    for folder in (REPO / "figures" / "smoke-test", REPO / "outputs" / "smoke-test"):
        shutil.rmtree(folder, ignore_errors=True)  # every file checked below comes from this run
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
def lfw_dir(shared_dir: Path) -> Path:
    """Full LFW deep-funneled in ../shared (skips with the reason when absent)."""
    return shared_dir / "data" / "lfw" / "lfw-deepfunneled"


@pytest.fixture(scope="session")
def lfw_centre_crops(lfw_dir: Path):
    """Factory: uint8 RGB (len(people) * per_person, size, size, 3) resizes of each image's central
    ``crop`` x ``crop`` box (LFW deep-funneled is 250 x 250, roughly aligned), images 1.. of each person."""
    def make(people: tuple[str, ...] | list[str], crop: int, size: int, per_person: int = 2) -> np.ndarray:
        offset = (250 - crop) // 2
        out = []
        for name in people:
            for index in range(1, per_person + 1):
                rgb = np.asarray(Image.open(lfw_dir / name / f"{name}_{index:04d}.jpg").convert("RGB"))
                box = np.ascontiguousarray(rgb[offset:offset + crop, offset:offset + crop])
                out.append(cv2.resize(box, (size, size), interpolation=cv2.INTER_AREA))
        return np.stack(out)

    return make


def vendor_file(model: str) -> Path:
    """The packaged weights file of a registry model (a clear failure, never a skip, when not installed)."""
    return get_spec(model).weights.locate()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped LFW sample data/lfw_sample (<Name>/<Name>_NNNN.jpg)."""
    path = REPO / "data" / "lfw_sample"
    assert path.is_dir(), f"{path} is missing: run tools/make_sample.py"
    return path
