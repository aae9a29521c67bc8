"""Plumbing shared by every explainer: layer lookup, input checks, map upsampling and normalisation.

Models are plain ``nn.Module``s taking RGB float images in [0, 255], (N, 3, H, W), and
returning raw embeddings (N, D). Layers are dotted submodule paths, given as a list of paths
or as ``{friendly_name: dotted_path}`` (the model registry's ``FaceModel.layers``).
"""
from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

LayerSpec = Mapping[str, str] | Sequence[str] | str


def resolve_layers(model: nn.Module, layers: LayerSpec) -> dict[str, nn.Module]:
    """``{name: submodule}`` in the given order; ValueError naming the valid paths for a bad one."""
    if isinstance(layers, str):
        layers = [layers]
    items = list(layers.items()) if isinstance(layers, Mapping) else [(path, path) for path in layers]
    if not items:
        raise ValueError("no layers given: pass a list of dotted module paths or {name: path}")
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate layer names in {names}")
    valid = [name for name, _ in model.named_modules() if name]
    resolved = {}
    for name, path in items:
        try:
            resolved[name] = model.get_submodule(path) if path else None
        except AttributeError:
            resolved[name] = None
        if resolved[name] is None:
            close = difflib.get_close_matches(str(path), valid, n=3)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"unknown layer {path!r}{hint}; valid layers of "
                             f"{type(model).__name__}: {', '.join(valid)}")
    return resolved


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def image_size(input_size: int | Sequence[int]) -> tuple[int, int]:
    """``160`` or ``(160, 160)`` -> ``(160, 160)``."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"input_size must be an int or (H, W), got {input_size!r}")
    return int(size[0]), int(size[1])


def check_images(images: torch.Tensor, input_size: int | Sequence[int] | None = None) -> torch.Tensor:
    """Validate an RGB batch (N, 3, H, W) in [0, 255]; uint8 is converted to float32.

    ``input_size`` (int or (H, W)), when given, is the size the model expects.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor (N, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be RGB batches (N, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    if images.dtype == torch.uint8:
        images = images.float()
    if not images.is_floating_point():
        raise TypeError(f"images must be float (or uint8) in [0, 255], got {images.dtype}")
    if input_size is not None and tuple(images.shape[2:]) != image_size(input_size):
        raise ValueError(f"the model expects {image_size(input_size)} images, "
                         f"got {tuple(images.shape[2:])} (batch shape {tuple(images.shape)})")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
    if float(images.max()) <= 1.0:
        log.warning("images are all <= 1: the models expect [0, 255], not [0, 1]")
    return images


def normalise_maps(maps: torch.Tensor, what: str = "map") -> tuple[torch.Tensor, int]:
    """Scale non-negative maps (..., H, W) to sum 1 each; an all-zero map becomes uniform.

    Returns the maps and the number of all-zero maps (logged as a warning). NaN or inf raises
    FloatingPointError, so an undefined map is never written: a map's sum is finite exactly when all of its
    values are (and they do not overflow), so the check reads the sums, not every pixel again.
    """
    sums = maps.sum(dim=(-2, -1), keepdim=True)
    if not torch.isfinite(sums).all():
        raise FloatingPointError(f"{what} contains NaN or inf")
    zero = sums <= 0
    n_zero = int(zero.sum())
    out = maps / sums.clamp_min(torch.finfo(maps.dtype).tiny)
    if n_zero:
        log.warning("%d all-zero %s(s) replaced by uniform maps", n_zero, what)
        out = torch.where(zero, torch.full_like(out, 1.0 / (maps.shape[-1] * maps.shape[-2])), out)
    return out, n_zero


#: Binomial [1, 2, 1] / 4 low-pass: gain 1 at frequency 0, exactly 0 at a grid's Nyquist frequency.
_BINOMIAL = torch.tensor([1.0, 2.0, 1.0]) / 4


def antialias_map(cam: torch.Tensor) -> torch.Tensor:
    """Low-pass maps (N, h, w) at their own grid with the separable binomial [1, 2, 1] / 4 filter.

    Its response is 0 at the grid's Nyquist frequency (a one-cell checkerboard, period 2 cells),
    so a lattice at the layer's stride cannot survive upsampling; replicate padding keeps a
    constant map constant and non-negative maps non-negative. Maps under 3 cells stay unchanged.
    """
    if min(cam.shape[-2:]) < 3:
        return cam
    kernel = _BINOMIAL.to(cam.device, cam.dtype)
    x = F.pad(cam[:, None], (1, 1, 1, 1), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, 3))
    return F.conv2d(x, kernel.view(1, 1, 3, 1))[:, 0]


def upsample_maps(cams: Sequence[torch.Tensor], size: Sequence[int], antialias: bool = False) -> torch.Tensor:
    """Per-layer maps [(N, h, w), ...] -> (N, L, H, W): optionally anti-aliased at each layer's own
    grid (:func:`antialias_map`), then upsampled bilinearly (align_corners=False) to ``size``."""
    out = [F.interpolate((antialias_map(cam) if antialias else cam)[:, None].float(), size=tuple(size),
                         mode="bilinear", align_corners=False)[:, 0] for cam in cams]
    return torch.stack(out, 1)
