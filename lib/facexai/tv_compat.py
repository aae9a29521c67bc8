"""Make torchvision importable when its compiled ops cannot load against the installed torch.

The registry's torchvision 0.28.0 is a CUDA build; next to a CPU build of torch 2.13.0 its
``_C.so`` fails to load and ``import torchvision`` dies with "operator torchvision::nms does
not exist" (torchvision registers a fake kernel for ``nms`` unconditionally). facenet-pytorch
and onnx2torch import torchvision, and MTCNN needs ``nms``. When, and only when, that import
fails, this module defines ``torchvision::nms`` / ``qnms`` in pure torch and imports again.
A torchvision whose ops load is left untouched.
"""
from __future__ import annotations

import logging
import sys

import torch

log = logging.getLogger(__name__)

#: True once the pure-torch fallback has been installed in this process.
ACTIVE = False
_LIB: torch.library.Library | None = None  # kept alive: dropping it would unregister the ops


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, same contract as ``torchvision.ops.nms``.

    Boxes are (x1, y1, x2, y2); returns kept indices sorted by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].to(torch.float64)
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = (inter / (area[:, None] + area[None, :] - inter)).cpu().numpy()
    suppressed = [False] * len(order)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        over = iou[i] > iou_threshold
        for j in over.nonzero()[0]:
            if j > i:
                suppressed[j] = True
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def _install_fallback_ops() -> None:
    global _LIB
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.impl("nms", nms_reference, "CompositeExplicitAutograd")
    _LIB.impl(
        "qnms",
        lambda d, s, t: nms_reference(d.dequantize(), s.dequantize(), t),
        "CompositeExplicitAutograd",
    )


def _purge_torchvision_modules() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def ensure_torchvision() -> bool:
    """Import torchvision, installing the fallback ops only if its own ops failed to load.

    Returns True when the fallback is active. Any other import error propagates unchanged.
    """
    global ACTIVE
    if ACTIVE:
        return True
    try:
        import torchvision  # noqa: F401

        return False
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        log.info("torchvision's compiled ops did not load (%s); using pure-torch nms", err)
    _purge_torchvision_modules()
    _install_fallback_ops()
    import torchvision
    import torchvision.extension

    # torchvision.ops.nms asserts that the compiled ops loaded; nms (and only nms/qnms) now exist.
    torchvision.extension._has_ops = lambda: True
    ACTIVE = True
    return True
