"""environment.yml and the Dockerfile describe the same pinned environment as requirements/."""
import os
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)")


def pins(text: str) -> dict[str, str]:
    return {name.lower(): version for name, version in PIN.findall(text)}


def requirement_pins(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        lines = (ROOT / "requirements" / name).read_text().splitlines()
        out.update(pins("\n".join(ln for ln in lines if not ln.startswith("#"))))
    return out


def test_environment_yml_matches_requirements():
    text = (ROOT / "environment.yml").read_text()
    assert pins(text) == requirement_pins("base.txt", "nodeps.txt")


def test_dockerfile_matches_requirements():
    text = (ROOT / "Dockerfile").read_text()
    base = requirement_pins("base.txt")
    for name, version in pins(text).items():
        assert base.get(name) == version, f"Dockerfile pins {name}=={version}, requirements say {base.get(name)}"
    assert "-r requirements/base.txt" in text and "--no-deps -r requirements/nodeps.txt" in text


def test_constraints_agree_with_requirements():
    constraints = requirement_pins("constraints.txt")
    for name, version in requirement_pins("base.txt", "nodeps.txt", "test.txt", "test-nodeps.txt").items():
        if name in constraints:
            assert constraints[name] == version, name


def supported_python() -> str:
    return re.search(r'^supported="([0-9.]+)"', (ROOT / "tools" / "bootstrap.sh").read_text(), re.M).group(1)


def test_one_python_version_everywhere():
    version = supported_python()
    assert re.search(rf"^FROM python:{re.escape(version)}-", (ROOT / "Dockerfile").read_text(), re.M)
    assert re.search(rf"^\s*- python={re.escape(version)}\s*$", (ROOT / "environment.yml").read_text(), re.M)


def fake_python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_bootstrap_refuses_another_python(tmp_path):
    wrong = "3.99"
    env = dict(os.environ, PYTHON=str(fake_python(tmp_path / "python", wrong)), FACEXAI_VENV=str(tmp_path / "venv"))
    res = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and not (tmp_path / "venv").exists()
    assert f"needs Python {supported_python()}" in res.stderr and f"is {wrong}" in res.stderr
    # an existing environment made with another Python is refused too, before any install
    fake_python(tmp_path / "old" / "bin" / "python", wrong)
    env["FACEXAI_VENV"] = str(tmp_path / "old")
    res = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and f"runs Python {wrong}" in res.stderr


def test_license_and_citation_agree_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == project["license"]
    assert str(citation["version"]) == project["version"] and citation["title"] and citation["authors"]


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv/", "cache/", "outputs/"} <= ignored
