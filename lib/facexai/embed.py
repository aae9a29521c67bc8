"""Embeddings of aligned crops, batched, cached in resumable shards."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from facexai import align, cache, executor
from facexai.models.registry import FaceModel

SHARD = 256  # images per cache shard: a killed run loses at most one shard of work


def to_tensor(crops: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) crops -> float (N, 3, H, W) in [0, 255], the models' input."""
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected crops of shape (N, H, W, 3), got {crops.shape}")
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().to(device)


@torch.no_grad()
def embed(model: FaceModel, crops: np.ndarray, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Raw embeddings (N, D) float32 of uint8 crops in the model's geometry."""
    device = next(model.parameters()).device
    out = []
    for start in tqdm(range(0, len(crops), batch_size), desc=f"embed {model.spec.name}",
                      disable=not progress, leave=False):
        out.append(model(to_tensor(crops[start:start + batch_size], device)).float().cpu().numpy())
    if not out:
        return np.zeros((0, model.spec.embedding_dim), np.float32)
    emb = np.concatenate(out)
    if not np.isfinite(emb).all():
        raise FloatingPointError(f"{model.spec.name} produced non-finite embeddings")
    return emb


def cached_embed(model: FaceModel, crops: np.ndarray, keys: list[str], cache_root: Path | None = None,
                 batch_size: int = 32) -> np.ndarray:
    """:func:`embed` with an on-disk cache keyed by the model's fingerprint and the crops' keys.

    ``keys`` identify each crop (:func:`facexai.align.crop_key`: source file digest and geometry
    definition); the model's fingerprint covers its weights' SHA-256 and converter version. Shards
    of :data:`SHARD` images are written atomically, so an interrupted run resumes where it stopped.
    """
    if len(keys) != len(crops):
        raise ValueError("one key per crop is required")
    spec = model.spec
    # a FaceModel's fingerprint; modules that only carry a spec (test stand-ins): name and weights digest
    model_key = getattr(model, "fingerprint", "") or cache.key(spec.name, getattr(spec.weights, "sha256", ""))
    folder = (cache.cache_dir(cache_root) / "embeddings" / f"{spec.name}-{model_key}"
              / cache.key("crops", list(keys), SHARD))
    if not len(crops):
        return np.zeros((0, spec.embedding_dim), np.float32)
    ref = executor.ModelRef.of(model, cache_root)

    def job(a: int, b: int) -> EmbedShard:
        cached = align.cached_crop_keys(keys[a:b], ref.cache_root)  # read there, else shipped (e.g. occluded)
        return EmbedShard(ref, batch_size, tuple(keys[a:b]) if cached else None, None if cached else crops[a:b])

    return executor.current().sharded_array(
        folder, len(crops), SHARD, lambda a, b: embed(model, crops[a:b], batch_size, progress=False),
        progress=lambda r: tqdm(r, desc=f"embeddings {spec.name}", disable=len(r) < 2),
        job=job if ref else None, desc=f"embeddings {spec.name}")


@dataclass(frozen=True)
class EmbedShard:
    """One shard of :func:`cached_embed` for a Dask worker: the model by reference, the crops by their
    cache keys (read from the shared aligned-crop cache) or, for crops made in memory, the crops."""

    model: executor.ModelRef
    batch_size: int
    keys: tuple[str, ...] | None
    crops: np.ndarray | None

    def __call__(self) -> np.ndarray:
        crops = self.crops if self.keys is None else align.cached_crops(self.keys, self.model.cache_root)
        return embed(self.model.load(), crops, self.batch_size, progress=False)
