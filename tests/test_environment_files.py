"""environment.yml and the Dockerfile describe the same pinned environment as requirements/."""
import re
from pathlib import Path

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
