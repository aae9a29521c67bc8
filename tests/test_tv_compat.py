"""The torchvision compatibility layer: correct nms, and it only acts when torchvision's ops fail."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from facexai import tv_compat


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    area = lambda r: np.prod(np.clip(r[2:] - r[:2], 0, None))  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_is_greedy_suppression(seed):
    """Kept boxes overlap each other at most `thr`; each dropped box overlaps a better kept one."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(300, 2, generator=g) * 30], dim=1)
    scores = torch.rand(300, generator=g)
    thr = 0.4
    keep = tv_compat.nms_reference(boxes, scores, thr).numpy()
    b, s = boxes.numpy().astype(float), scores.numpy()
    assert np.all(np.diff(s[keep]) <= 0), "kept indices are sorted by decreasing score"
    for i, a in enumerate(keep):
        for c in keep[i + 1:]:
            assert _iou(b[a], b[c]) <= thr
    for d in set(range(300)) - set(keep):
        assert any(_iou(b[d], b[k]) > thr and s[k] >= s[d] for k in keep)


def test_nms_empty():
    assert tv_compat.nms_reference(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_torchvision_ops_usable_after_import():
    import facexai  # noqa: F401
    from torchvision.ops import batched_nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11.0]])
    keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 1]), 0.5)
    assert keep.tolist() == [0, 2]


def _run(code: str, pythonpath: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)


def test_untouched_when_torchvision_imports(tmp_path):
    """With a torchvision that imports cleanly, nothing is registered."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("OK = True\n")
    res = _run(
        """
        import torch
        from facexai import tv_compat
        assert tv_compat.ensure_torchvision() is False and tv_compat.ACTIVE is False
        assert not hasattr(torch.ops.torchvision, "nms") or print("nms defined")
        print("untouched")
        """,
        f"{tmp_path}:{':'.join(sys.path)}",
    )
    assert "untouched" in res.stdout, res.stderr


def test_other_import_errors_propagate(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('something else entirely')\n")
    res = _run("from facexai import tv_compat\ntv_compat.ensure_torchvision()\n", f"{tmp_path}:{':'.join(sys.path)}")
    assert res.returncode != 0 and "something else entirely" in res.stderr


def test_active_exactly_when_compiled_ops_fail():
    """The layer is active iff torchvision's own _C extension cannot be loaded with this torch."""
    res = _run(
        """
        import importlib.util, pathlib, torch
        spec = importlib.util.find_spec("torchvision")
        lib = next(pathlib.Path(spec.submodule_search_locations[0]).glob("_C*.so"), None)
        try:
            torch.ops.load_library(str(lib)); print("LOADS")
        except Exception:
            print("FAILS")
        """,
        ":".join(sys.path),
    )
    loads = "LOADS" in res.stdout
    import facexai  # noqa: F401

    assert tv_compat.ACTIVE is (not loads)
