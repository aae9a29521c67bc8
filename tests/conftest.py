"""Shared fixtures: the shipped LFW sample and the optional ../shared data folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import facexai  # noqa: F401  (installs the torchvision compat layer before any test imports it)

REPO = Path(__file__).resolve().parents[1]


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
