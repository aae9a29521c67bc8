"""benchmarks/gpu_check.py: its second-device half runs end to end against the CPU, fails on a difference
above tolerance, and on a machine without CUDA stops after the CPU half with exit status 0."""
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

ROWS = ["embedding", "leam", "gradcam", "gradcam++", "layercam", "srise", "corrrise"]
ARGS = ["--models", "DLIB", "--images", "2", "--no-smoke"]


@pytest.fixture(autouse=True)
def few_masks(monkeypatch):
    monkeypatch.setattr(gpu_check, "RISE_MASKS", 50)


def verdicts(out: str) -> dict[str, str]:
    """Row -> verdict of the printed table (rows of the CPU half alone have none)."""
    rows = [line.split() for line in out.splitlines()]
    return {r[0]: r[4] for r in rows if len(r) >= 5 and r[0] in ROWS}


def test_the_comparison_runs_end_to_end_against_the_cpu(capsys):
    assert gpu_check.main([*ARGS, "--against", "cpu"]) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == dict.fromkeys(ROWS, "ok")  # every explainer compared, identical on one device
    assert "0.00e+00" in out


def test_a_difference_above_tolerance_fails(monkeypatch, capsys):
    real = gpu_check.run_device
    calls = []

    def shifted(name, images, device):
        out = real(name, images, device)
        calls.append(device)
        if len(calls) == 2:  # the second device's LEAM maps off by 1e-5 (tolerance 1e-6)
            maps, seconds = out["leam"]
            out["leam"] = (maps + 1e-5, seconds)
        return out

    monkeypatch.setattr(gpu_check, "run_device", shifted)
    assert gpu_check.main([*ARGS, "--against", "cpu"]) == 1
    found = verdicts(capsys.readouterr().out)
    assert found["leam"] == "FAIL" and found["gradcam"] == "ok"


def test_without_cuda_it_stops_after_the_cpu_half(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(ARGS) == 0
    out = capsys.readouterr().out
    assert "CUDA is not available here" in out and not verdicts(out)
    assert {line.split()[0] for line in out.splitlines() if line.split()[:1]} >= set(ROWS)  # the CPU half ran
