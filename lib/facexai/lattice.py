"""The stride lattice of CAM-family maps: how much of a map is a regular dot grid, and which layer makes it.

A layer of output size h x w in an H x W input samples the image every s = H / h pixels (its
stride). Its backward pass through strided convolutions and max-pooling favours every other
cell, so its map can carry a one-cell checkerboard, the grid's Nyquist pattern; upsampled to the
input, that is a lattice of period P = 2 H / h pixels. Such a pattern has its energy at the
harmonics of 1 / P: spatial frequencies k h / 2 cycles per image height (k = 1, 2, ...; k = 2 is
the stride frequency 1 / s itself), and the same along the width.

**Lattice share** (:func:`lattice_share`): the share of a map's spectral energy (squared 2-D DFT
magnitude of the map minus its mean, i.e. DC excluded) in the frequency bins that lie within half
a bin of one of those harmonics along either axis (:func:`lattice_bins`). A smooth map scores
near 0, a pure lattice 1, white noise the bins' share of the spectrum (the ``chance`` column).
Layers whose lattice period exceeds ``max_period`` pixels (default 16, a tenth of a 160-px face)
cannot form a fine lattice; their harmonics fall among the face-scale frequencies, so they are
not measured (NaN).

Which layers make the lattice of the OVERALL map (the mean over layers): each layer's share of
the overall map's lattice energy, Re sum_B F_l conj(F_o) / (L sum_B |F_o|^2) over the union B of
the layers' lattice bins; these contributions sum to 1 over the layers. Which make it in the
critical (top q%) pixels: the lattice share of the overall map's top-q% mask, and how much it
falls when one layer is left out of the overall map.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.fft
import torch
from torch import nn

from facexai.explain.base import check_images, model_device, resolve_layers
from facexai.explain.topk import critical_mask

DEFAULT_MAX_PERIOD = 16.0  # px: coarser periodic patterns are face-scale structure, not a lattice


def lattice_period(size: Sequence[int], grid: Sequence[int]) -> float:
    """Lattice period in input pixels of a layer with output ``grid`` (h, w) in an input of ``size`` (H, W)."""
    (height, width), (h, w) = size, grid
    if min(h, w, height, width) < 1:
        raise ValueError(f"sizes must be positive, got input {size} and layer grid {grid}")
    return max(2 * height / h, 2 * width / w)


def _axis_bins(n: int, cells: int) -> np.ndarray:
    """DFT bins (n,) of one axis within half a bin of a harmonic k * cells / 2 (k >= 1), folded."""
    folded = np.minimum(np.arange(n), n - np.arange(n))
    harmonics = np.arange(1, int(n // (cells / 2)) + 2) * cells / 2
    return (np.abs(folded[:, None] - harmonics[None, :]) <= 0.5).any(1) & (folded > 0)


def lattice_bins(size: Sequence[int], grid: Sequence[int], max_period: float = DEFAULT_MAX_PERIOD) -> np.ndarray | None:
    """Boolean (H, W) DFT bins of the lattice of a layer with output ``grid`` in an input of ``size``.

    A bin (u, v) counts when its row frequency or its column frequency is a harmonic of the layer's
    lattice (see the module docstring). None when the period exceeds ``max_period`` pixels.
    """
    if lattice_period(size, grid) > max_period:
        return None
    rows, cols = _axis_bins(int(size[0]), int(grid[0])), _axis_bins(int(size[1]), int(grid[1]))
    return rows[:, None] | cols[None, :]


def _spectra(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 2 or not np.isfinite(maps).all():
        raise ValueError(f"maps must be finite (..., H, W), got shape {maps.shape}")
    # scipy's FFT on the process's torch threads: 6x numpy's on a stack of maps, equal to 1e-13
    return scipy.fft.fft2(maps - maps.mean(axis=(-2, -1), keepdims=True), workers=torch.get_num_threads())


def lattice_share(maps: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Share (...) of each map's (..., H, W) non-DC spectral energy in ``bins`` (H, W); 0 for a constant map."""
    return _share(_spectra(maps), bins)


def _share(spectra: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """:func:`lattice_share` of maps given by their :func:`_spectra`."""
    power = np.abs(spectra) ** 2
    if bins.shape != power.shape[-2:]:
        raise ValueError(f"bins {bins.shape} do not match maps {power.shape[-2:]}")
    total = power.sum(axis=(-2, -1))
    return np.where(total > 0, (power * bins).sum(axis=(-2, -1)) / np.where(total > 0, total, 1.0), 0.0)


def chance_share(bins: np.ndarray) -> float:
    """The lattice share of white noise: the bins' fraction of the non-DC spectrum."""
    return float(bins.sum() / (bins.size - 1))


def overall_contributions(maps: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Each layer's share (N, L) of the overall map's lattice energy, for maps (N, L, H, W); rows sum to 1.

    Images whose overall map has no energy in ``bins`` get NaN rows.
    """
    return _contributions(_spectra(maps), bins)


def _contributions(spectra: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """:func:`overall_contributions` of maps given by their :func:`_spectra`."""
    overall = spectra.mean(axis=1, keepdims=True)
    cross = (spectra * np.conj(overall)).real * bins
    energy = (np.abs(overall) ** 2 * bins).sum(axis=(-2, -1))  # (N, 1)
    layers = spectra.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(energy > 0, cross.sum(axis=(-2, -1)) / (layers * energy), np.nan)


def critical_lattice(maps: np.ndarray, bins: np.ndarray, q: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Lattice share (N,) of the top-q% mask of the overall map, and (N, L) of the overall map without layer l."""
    maps = np.asarray(maps, dtype=np.float64)
    full = lattice_share(critical_mask(maps.mean(1), q).astype(np.float64), bins)
    layers = maps.shape[1]
    if layers < 2:
        return full, np.full((len(maps), layers), np.nan)
    without = (maps.sum(1, keepdims=True) - maps) / (layers - 1)  # (N, L, H, W): overall map without layer l
    return full, lattice_share(critical_mask(without, q).astype(np.float64), bins)


def layer_grids(model: nn.Module, layers: Mapping[str, str] | Sequence[str], input_size: int | Sequence[int]
                ) -> dict[str, tuple[int, int]]:
    """Output grid (h, w) of each layer, from one forward pass of a blank image with hooks."""
    resolved = resolve_layers(model, layers)
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    grids: dict[str, tuple[int, int]] = {}

    def hook(name: str):
        def store(_module, _inputs, output) -> None:
            grids.setdefault(name, tuple(output.shape[-2:]))
        return store

    handles = [module.register_forward_hook(hook(name)) for name, module in resolved.items()]
    try:
        with torch.no_grad():
            model.eval()(check_images(torch.full((1, 3, *size), 128.0), size).to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return {name: grids[name] for name in resolved}


def lattice_table(maps: np.ndarray, layer_names: Sequence[str], grids: Mapping[str, Sequence[int]], q: float = 1.0,
                  max_period: float = DEFAULT_MAX_PERIOD) -> pd.DataFrame:
    """Per layer of per-image maps (N, L, H, W): where its lattice is, how strong, and its part in the overall map.

    Columns: layer, grid, period_px, chance, share (the layer's own map: mean over images),
    share_overall (the overall map, in this layer's bins), contribution (of the layer to the overall
    map's lattice energy in the union of all layers' bins; sums to 1), critical_share (the overall
    map's top-q% mask in the union bins, same in every row), critical_drop (how much that share
    falls when the layer is left out; > 0: the layer puts lattice into the critical pixels). Rows
    for layers too coarse to form a lattice (period > ``max_period``) hold NaN shares but their
    contribution.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[1] != len(layer_names):
        raise ValueError(f"maps must be (N, {len(layer_names)}, H, W), got {maps.shape}")
    size = maps.shape[-2:]
    per_layer = {name: lattice_bins(size, grids[name], max_period) for name in layer_names}
    usable = [b for b in per_layer.values() if b is not None]
    if not usable:
        raise ValueError(f"no layer has a lattice period <= {max_period} px: nothing to measure")
    union = np.logical_or.reduce(usable)
    spectra = _spectra(maps)  # once: every layer's share and contribution read it (a layer's slice = its own FFT)
    contributions = np.nanmean(_contributions(spectra, union), axis=0)
    critical, without = critical_lattice(maps, union, q)
    overall = _spectra(maps.mean(1))
    rows = []
    for j, name in enumerate(layer_names):
        bins = per_layer[name]
        rows.append({
            "layer": name, "grid": f"{grids[name][0]}x{grids[name][1]}",
            "period_px": lattice_period(size, grids[name]),
            "chance": np.nan if bins is None else chance_share(bins),
            "share": np.nan if bins is None else float(_share(spectra[:, j], bins).mean()),
            "share_overall": np.nan if bins is None else float(_share(overall, bins).mean()),
            "contribution": float(contributions[j]),
            "critical_share": float(critical.mean()),
            "critical_drop": float((critical - without[:, j]).mean()),
        })
    return pd.DataFrame(rows)


def overall_lattice(maps: np.ndarray, grids: Sequence[Sequence[int]], q: float = 1.0,
                    max_period: float = DEFAULT_MAX_PERIOD) -> dict[str, float]:
    """The overall map's lattice in one row: share and chance in the union of the layers' bins, and its top-q% mask's."""
    maps = np.asarray(maps, dtype=np.float64)
    usable = [b for b in (lattice_bins(maps.shape[-2:], g, max_period) for g in grids) if b is not None]
    if not usable:
        raise ValueError(f"no layer has a lattice period <= {max_period} px: nothing to measure")
    union = np.logical_or.reduce(usable)
    overall = maps.mean(1)
    return {"overall_share": float(lattice_share(overall, union).mean()),
            "critical_share": float(lattice_share(critical_mask(overall, q).astype(np.float64), union).mean()),
            "chance": chance_share(union)}
