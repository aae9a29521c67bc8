"""RISE for verification: S-RISE and CorrRISE, masks generated and scored in bounded chunks.

Masks (Petsiuk et al. 2018): N binary grids of ceil(H/s) x ceil(W/s) cells of size s, each
cell kept with probability p, upsampled bilinearly to (grid + 1) * s and cropped at a random
shift in [0, s) per axis. A masked image is ``fill + (x - fill) * M`` (black by default).
Scores s_i = target(f(x masked by M_i)), e.g. the cosine to the reference embedding.
S-RISE: saliency = sum_i s_i M_i / (N p). CorrRISE: per pixel Pearson correlation between the
mask value and the score across the N masks (positive = similarity map), from streaming sums.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from facexai.explain.base import check_images, image_size, model_device
from facexai.explain.targets import Target


def check_mask_params(n_masks: int, cell_size: int, p: float) -> None:
    """ValueError unless n_masks >= 1, cell_size >= 1 (ints) and 0 < p < 1."""
    if not (isinstance(n_masks, int) and n_masks >= 1):
        raise ValueError(f"n_masks must be an int >= 1, got {n_masks!r}")
    if not 0 < p < 1:
        raise ValueError(f"keep probability p must be in (0, 1), got {p}")
    if not (isinstance(cell_size, int) and cell_size >= 1):
        raise ValueError(f"cell_size must be an int >= 1 (pixels), got {cell_size!r}")


class RiseMasks:
    """N seeded RISE masks (H, W) in [0, 1], produced ``chunk`` at a time on ``device``.

    The grids and shifts (N * cells values, tiny) are drawn up front on the CPU from
    ``torch.Generator().manual_seed(seed)``, so the masks do not depend on the device or the
    chunk size; only one chunk of full-size masks exists at a time.
    """

    def __init__(self, n_masks: int, size: int | Sequence[int], cell_size: int = 16, p: float = 0.5,
                 seed: int = 0, device: str | torch.device = "cpu"):
        check_mask_params(n_masks, cell_size, p)
        self.n_masks, self.p, self.cell = n_masks, float(p), cell_size
        self.height, self.width = image_size(size)
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)
        grid = (math.ceil(self.height / cell_size), math.ceil(self.width / cell_size))
        self.grids = torch.rand(n_masks, *grid, generator=gen) < p
        self.shifts = torch.randint(0, cell_size, (n_masks, 2), generator=gen)

    def __len__(self) -> int:
        return self.n_masks

    def chunks(self, chunk: int) -> Iterator[torch.Tensor]:
        """Masks (n <= chunk, H, W) float32 on the device, in order."""
        up = ((self.grids.shape[1] + 1) * self.cell, (self.grids.shape[2] + 1) * self.cell)
        rows = torch.arange(self.height, device=self.device)
        cols = torch.arange(self.width, device=self.device)
        for start in range(0, self.n_masks, chunk):
            grids = self.grids[start:start + chunk].to(self.device, torch.float32)
            big = F.interpolate(grids[:, None], size=up, mode="bilinear", align_corners=False)[:, 0]
            shift = self.shifts[start:start + chunk].to(self.device)
            n = torch.arange(len(grids), device=self.device)[:, None, None]
            yield big[n, (shift[:, 0, None] + rows)[:, :, None], (shift[:, 1, None] + cols)[:, None, :]]


class PearsonAccumulator:
    """Streaming per-pixel Pearson correlation between mask values and scores (float64 sums)."""

    def __init__(self, n_pixels: int, device: str | torch.device = "cpu"):
        zeros = torch.zeros(n_pixels, dtype=torch.float64, device=device)
        self.n = 0
        self.sum_m, self.sum_m2, self.sum_ms = zeros.clone(), zeros.clone(), zeros.clone()
        self.sum_s = self.sum_s2 = torch.zeros((), dtype=torch.float64, device=device)

    def update(self, masks: torch.Tensor, scores: torch.Tensor) -> None:
        """Add n observations: masks (n, n_pixels) and their scores (n,)."""
        m, s = masks.double(), scores.double()
        self.n += len(s)
        self.sum_m += m.sum(0)
        self.sum_m2 += (m * m).sum(0)
        self.sum_ms += s @ m
        self.sum_s = self.sum_s + s.sum()
        self.sum_s2 = self.sum_s2 + s @ s

    def result(self) -> torch.Tensor:
        """r (n_pixels,) float64; ValueError where it is undefined (constant scores or pixel)."""
        n = self.n
        var_s = n * self.sum_s2 - self.sum_s ** 2
        var_m = n * self.sum_m2 - self.sum_m ** 2
        if n < 2 or var_s <= 1e-12 * n * self.sum_s2:
            raise ValueError("the scores are constant across the masks: correlation undefined")
        flat = var_m <= 1e-12 * n * self.sum_m2
        if flat.any():
            raise ValueError(f"{int(flat.sum())} pixel(s) have the same mask value in every mask: "
                             "correlation undefined (use more masks)")
        return (n * self.sum_ms - self.sum_m * self.sum_s) / torch.sqrt(var_m * var_s)


class WeightedMaskSum:
    """S-RISE's sum: saliency = sum_i s_i M_i / (N p), streamed over chunks of masks (float64)."""

    min_masks = 1

    def __init__(self, n_pixels: int, device: str | torch.device, n_masks: int, p: float):
        self.total = torch.zeros(n_pixels, dtype=torch.float64, device=device)
        self.scale = n_masks * p

    def update(self, masks: torch.Tensor, scores: torch.Tensor) -> None:
        self.total += scores.double() @ masks.double()

    def result(self) -> torch.Tensor:
        return self.total / self.scale


class MaskScoreCorrelation(PearsonAccumulator):
    """CorrRISE's statistic: per-pixel Pearson correlation of mask value and score."""

    min_masks = 2

    def __init__(self, n_pixels: int, device: str | torch.device, n_masks: int, p: float):
        super().__init__(n_pixels, device)


class _RISE:
    """Shared loop: every chunk of masks is applied to each image and scored in one forward.

    A subclass names its ``statistics``: one accumulator class per output plane, all fed the same
    masks and scores (so several RISE variants share one set of masked forward passes).
    """

    statistics: tuple[type, ...] = ()

    def __init__(self, model: nn.Module, n_masks: int = 4000, cell_size: int = 16, p: float = 0.5,
                 seed: int = 0, batch_size: int = 64, fill: float | torch.Tensor = 0.0,
                 input_size: int | Sequence[int] | None = None, progress: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        check_mask_params(n_masks, cell_size, p)
        min_masks = max(stat.min_masks for stat in self.statistics)
        if n_masks < min_masks:
            raise ValueError(f"{type(self).__name__} needs n_masks >= {min_masks}, got {n_masks}")
        self.model = model.eval()
        self.n_masks, self.cell_size, self.p, self.seed = n_masks, cell_size, p, seed
        self.batch_size, self.fill, self.input_size, self.progress = batch_size, fill, input_size, progress

    @torch.no_grad()
    def planes(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Saliency (N, len(statistics), H, W) float32 on the model's device for images (N, 3, H, W).

        A :class:`Target` is split per image with ``select``; a plain callable is shared.
        """
        device = model_device(self.model)
        images = check_images(images, self.input_size).to(device)
        fill = torch.as_tensor(self.fill, dtype=images.dtype, device=device)
        height, width = images.shape[-2:]
        masks = RiseMasks(self.n_masks, (height, width), self.cell_size, self.p, self.seed, device)
        targets = [target.select(b) if isinstance(target, Target) else target for b in range(len(images))]
        states = [[stat(height * width, device, self.n_masks, self.p) for stat in self.statistics] for _ in images]
        n_chunks = math.ceil(self.n_masks / self.batch_size)
        bar = tqdm(total=n_chunks * len(images), desc=type(self).__name__, disable=not self.progress)
        for chunk in masks.chunks(self.batch_size):
            m = chunk[:, None]
            flat = chunk.flatten(1)
            for image, tgt, stats in zip(images, targets, states):
                scores = tgt(self.model(torch.addcmul(fill, image - fill, m)))  # fill + (x - fill) * M
                if scores.shape != (len(chunk),) or not torch.isfinite(scores).all():
                    raise ValueError(f"target must return finite scores of shape ({len(chunk)},), "
                                     f"got shape {tuple(scores.shape)}")
                for stat in stats:
                    stat.update(flat, scores)
                bar.update()
        bar.close()
        out = torch.stack([torch.stack([stat.result() for stat in stats]) for stats in states])
        return out.reshape(len(images), len(self.statistics), height, width).float()

    def __call__(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Saliency (N, H, W) of the one statistic (several: :meth:`planes`)."""
        return self.planes(images, target)[:, 0]


class SRISE(_RISE):
    """S-RISE: saliency = sum_i s_i M_i / (N p), s_i the score of the image masked by M_i."""

    statistics = (WeightedMaskSum,)


class CorrRISE(_RISE):
    """CorrRISE: per pixel Pearson correlation of mask value and score over the N masks."""

    statistics = (MaskScoreCorrelation,)


class RISEFamily(_RISE):
    """Several RISE statistics of the same masks and scores, from one set of masked forward passes.

    ``RISEFamily(model, (WeightedMaskSum, MaskScoreCorrelation), ...)(images, target)`` -> (N, 2, H, W):
    plane j equals what the single-statistic explainer of ``statistics[j]`` (:class:`SRISE`,
    :class:`CorrRISE`) with the same parameters returns.
    """

    def __init__(self, model: nn.Module, statistics: Sequence[type], **kwargs):
        if not statistics:
            raise ValueError("RISEFamily needs at least one statistic")
        self.statistics = tuple(statistics)
        super().__init__(model, **kwargs)

    def __call__(self, images: torch.Tensor, target: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return self.planes(images, target)
