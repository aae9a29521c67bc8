"""The study's shared inputs: which people, which images, which pairs, and their aligned crops.

Notebook ``00_data`` calls :func:`prepare` once; every later notebook calls :func:`load` and
:func:`crops`, so notebooks share files written by the library, never each other's variables.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import align, cache, data
from facexai.models.registry import get_spec
from facexai.profiles import Config

log = logging.getLogger(__name__)


@dataclass
class Study:
    """The selected individuals' images, the verification pairs, and what alignment left out."""

    images: pd.DataFrame  # identity, path: the selected individuals' aligned images
    pairs: pd.DataFrame  # fold, name_a, path_a, name_b, path_b, same (both images aligned)
    failures: pd.DataFrame  # path, reason: images excluded because alignment failed
    summary: dict

    @property
    def identities(self) -> list[str]:
        return sorted(self.images.identity.unique())

    def images_of(self, identity: str) -> list[str]:
        return self.images.loc[self.images.identity == identity, "path"].tolist()


def geometries_for(models: tuple[str, ...] | list[str]) -> list[str]:
    """The aligned-crop geometries the given models need, in a stable order."""
    return sorted({get_spec(m).geometry for m in models})


def _files(cfg: Config) -> dict[str, Path]:
    d = cfg.artifacts_dir
    return {"images": d / "images.csv", "pairs": d / "pairs.csv", "failures": d / "alignment_failures.csv",
            "summary": d / "summary.json"}


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    cache.atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def align_selection(cfg: Config, selected: data.FaceDataset, pairs: pd.DataFrame, models: tuple[str, ...] | list[str]
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, align.AlignmentResult]:
    """Align the selected people's images and the pairs' images for ``models``; exclude (and list) failures.

    Returns the selected images [identity, path], the pairs whose two images aligned, the failures
    [path, reason] and the alignment result.
    """
    wanted = list(dict.fromkeys([*map(str, selected.paths()), *pairs.path_a, *pairs.path_b]))
    result = align.align_paths([Path(p) for p in wanted], geometries_for(models), cfg.cache_root, device=cfg.device)
    failed = {str(p) for p, _ in result.failed}
    images = pd.DataFrame({"identity": selected.labels(), "path": list(map(str, selected.paths()))})
    images = images[~images.path.isin(failed)].reset_index(drop=True)
    kept = pairs[~pairs.path_a.isin(failed) & ~pairs.path_b.isin(failed)].reset_index(drop=True)
    failures = pd.DataFrame([(str(p), why) for p, why in result.failed], columns=["path", "reason"])
    return images, kept, failures, result


def prepare(cfg: Config) -> tuple[Study, data.FaceDataset, align.AlignmentResult]:
    """Load the data set, select individuals, build or read pairs, align everything, write artifacts."""
    dataset = data.load_lfw(cfg.data_root)
    names = data.select_identities(dataset, cfg.n_identities, cfg.min_images, cfg.seed)
    selected = dataset.subset(names)
    if cfg.pairs:
        pairs = data.read_lfw_pairs(cfg.pairs, dataset)
        pair_source = str(cfg.pairs)
    else:
        pairs = data.make_pairs(dataset, cfg.n_folds, cfg.pairs_per_fold, cfg.seed)
        pair_source = f"built from seed {cfg.seed}"
    images, kept, failures, result = align_selection(cfg, selected, pairs, cfg.models)
    summary = {
        "profile": cfg.profile, "run_name": cfg.run_name, "data_root": str(cfg.data_root), "seed": cfg.seed,
        "identities_in_dataset": dataset.n_identities, "images_in_dataset": dataset.n_images,
        "skipped_files": len(dataset.skipped), "selected_identities": len(names),
        "selected_images": len(images), "pairs_source": pair_source, "pairs": len(pairs),
        "pairs_kept": len(kept), "pairs_dropped_no_face": len(pairs) - len(kept),
        "aligned_images": len(result.paths), "alignment_failures": len(failures),
        "geometries": geometries_for(cfg.models), "models": list(cfg.models),
    }
    files = _files(cfg)
    _write_csv(images, files["images"])
    _write_csv(kept, files["pairs"])
    _write_csv(failures, files["failures"])
    cache.save_json(files["summary"], summary)
    return Study(images, kept, failures, summary), dataset, result


def load(cfg: Config) -> Study:
    """The artifacts that ``00_data`` wrote for this run; a clear error if it has not run."""
    files = _files(cfg)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"run '{cfg.run_name}' has no data artifacts ({missing[0]}): "
                                f"run notebook 00_data first (./run_all.sh --profile {cfg.profile} --only 00)")
    return Study(pd.read_csv(files["images"]), pd.read_csv(files["pairs"]), pd.read_csv(files["failures"]),
                 json.loads(files["summary"].read_text()))


def crops(cfg: Config, paths: list[str], geometry: str) -> tuple[np.ndarray, list[str]]:
    """Aligned uint8 crops (N, S, S, 3) of ``paths`` in ``geometry`` and their cache keys (from the cache)."""
    result = align.align_paths([Path(p) for p in paths], [geometry], cfg.cache_root, device=cfg.device)
    if result.failed:
        raise ValueError(f"{len(result.failed)} of these images have no aligned crop, e.g. {result.failed[0]}")
    return result.crops[geometry], [f"{sha}:{geometry}" for sha in result.sha256]
