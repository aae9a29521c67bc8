"""The study's shared inputs: which people, which images, which pairs, and their aligned crops.

Notebook ``00_data`` calls :func:`prepare` once; every later notebook calls :func:`load` and
:func:`crops`, so notebooks share files written by the library, never each other's variables.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import align, cache, data, feasibility
from facexai.models.registry import get_spec
from facexai.profiles import REPO_ROOT, Config

log = logging.getLogger(__name__)

DROPPED_COLUMNS = ["identity", "images", "aligned", "reason"]


@dataclass
class Study:
    """The selected individuals' images, the verification pairs, and what alignment left out."""

    images: pd.DataFrame  # identity, path (+ faces_found, face_kept, face_prob, face_box): aligned images
    pairs: pd.DataFrame  # fold, name_a, path_a, name_b, path_b, same (both images aligned)
    failures: pd.DataFrame  # path, reason: images excluded because alignment failed
    summary: dict
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DROPPED_COLUMNS))

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
            "dropped": d / "dropped_identities.csv", "summary": d / "summary.json"}


def shown_path(path: str | os.PathLike) -> str:
    """A path as committed tables show it: relative to the repository (or its parent folder, as ``../``),
    else absolute as given; so the shipped sample never shows this machine's location."""
    path = Path(os.path.abspath(path))  # normalised but not resolved: a symlinked ../shared still shows as ../shared
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
        if path.is_relative_to(base):
            return prefix + (path.relative_to(base).as_posix() or ".")
    return str(path)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    cache.atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def align_selection(cfg: Config, selected: data.FaceDataset, pairs: pd.DataFrame, models: tuple[str, ...] | list[str]
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, align.AlignmentResult]:
    """Align the selected people's images and the pairs' images for ``models``; exclude (and list) failures.

    Returns the selected images [identity, path, faces_found, face_kept, face_prob, face_box], the
    pairs whose two images aligned, the failures [path, reason] and the alignment result.
    """
    wanted = list(dict.fromkeys([*map(str, selected.paths()), *pairs.path_a, *pairs.path_b]))
    result = align.align_paths([Path(p) for p in wanted], geometries_for(models), cfg.cache_root, device=cfg.device)
    failed = {str(p) for p, _ in result.failed}
    images = pd.DataFrame({"identity": selected.labels(), "path": list(map(str, selected.paths()))})
    images = images[~images.path.isin(failed)].reset_index(drop=True)
    images = images.merge(result.face_table(), on="path", how="left")
    kept = pairs[~pairs.path_a.isin(failed) & ~pairs.path_b.isin(failed)].reset_index(drop=True)
    failures = pd.DataFrame([(str(p), why) for p, why in result.failed], columns=["path", "reason"])
    return images, kept, failures, result


def select_aligned(cfg: Config, dataset: data.FaceDataset, pairs: pd.DataFrame, models: tuple[str, ...] | list[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, align.AlignmentResult, pd.DataFrame]:
    """:func:`align_selection` of ``cfg.n_identities`` people with >= ``cfg.min_images`` *aligned* images.

    People drawn from the seed who keep fewer aligned images are dropped (and listed with the
    reason) and replaced by further seeded draws, until enough people qualify or none are left.
    Returns images, kept pairs, failures, the alignment result and the dropped people
    [identity, images, aligned, reason].
    """
    chosen: list[str] = []
    tried: set[str] = set()
    dropped: list[tuple[str, int, int, str]] = []
    draw = 0
    while len(chosen) < cfg.n_identities:
        pool = dataset.subset([n for n in dataset.identities if n not in tried])
        names = data.select_identities(pool, cfg.n_identities - len(chosen), cfg.min_images, cfg.seed + draw)
        if not names:
            break
        tried.update(names)
        images, _, failures, _ = align_selection(cfg, dataset.subset(names), pairs.iloc[:0], models)
        aligned = images.groupby("identity").size()
        why = dict(zip(failures.path, failures.reason))
        for name in names:
            n_aligned = int(aligned.get(name, 0))
            if n_aligned >= cfg.min_images:
                chosen.append(name)
                continue
            lost = [f"{Path(p).name}: {why[str(p)]}" for p in dataset.identities[name] if str(p) in why]
            dropped.append((name, len(dataset.identities[name]), n_aligned,
                            f"{n_aligned} aligned images < min_images {cfg.min_images} ({'; '.join(lost)})"))
        draw += 1
    if dropped:
        log.warning("dropped %d people with fewer than %d aligned images: %s", len(dropped), cfg.min_images,
                    "; ".join(f"{d[0]} ({d[2]} of {d[1]})" for d in dropped[:5]))
    if len(chosen) < cfg.n_identities:
        log.warning("only %d people have >= %d aligned images (asked for %d)", len(chosen), cfg.min_images,
                    cfg.n_identities)
    images, kept, failures, result = align_selection(cfg, dataset.subset(chosen), pairs, models)
    return images, kept, failures, result, pd.DataFrame(dropped, columns=DROPPED_COLUMNS)


def prepare(cfg: Config) -> tuple[Study, data.FaceDataset, align.AlignmentResult]:
    """Load the data set, select individuals (by aligned images), build or read pairs, align, write artifacts."""
    dataset = data.load_lfw(cfg.data_root)
    if cfg.pairs:
        pairs = data.read_lfw_pairs(cfg.pairs, dataset, on_missing=cfg.on_missing)
        pair_source = shown_path(cfg.pairs)
    else:
        pairs = data.make_pairs(dataset, feasibility.pair_folds(dataset, cfg.n_folds), cfg.pairs_per_fold, cfg.seed)
        pair_source = f"built from seed {cfg.seed}"
    images, kept, failures, result, dropped = select_aligned(cfg, dataset, pairs, cfg.models)
    skipped_folders = sum(1 for p, _ in dataset.skipped if p.is_dir())
    summary = {
        "profile": cfg.profile, "run_name": cfg.run_name, "data_root": shown_path(cfg.data_root), "seed": cfg.seed,
        "identities_in_dataset": dataset.n_identities, "images_in_dataset": dataset.n_images,
        "skipped_files": len(dataset.skipped) - skipped_folders, "skipped_folders": skipped_folders,
        "selected_identities": int(images.identity.nunique()), "dropped_identities": len(dropped),
        "min_aligned_images": cfg.min_images, "selected_images": len(images), "pairs_source": pair_source,
        "pairs": len(pairs), "pairs_kept": len(kept), "pairs_dropped_no_face": len(pairs) - len(kept),
        "aligned_images": len(result.paths), "alignment_failures": len(failures),
        "images_with_several_faces": int((result.n_faces > 1).sum()),
        "geometries": geometries_for(cfg.models), "models": list(cfg.models),
    }
    files = _files(cfg)
    _write_csv(images, files["images"])
    _write_csv(kept, files["pairs"])
    _write_csv(failures, files["failures"])
    _write_csv(dropped, files["dropped"])
    cache.save_json(files["summary"], summary)
    cache.save_json(_digests_file(cfg), {name: cache.file_sha256(path) for name, path in files.items()})
    return Study(images, kept, failures, summary, dropped), dataset, result


def _digests_file(cfg: Config) -> Path:
    return cfg.artifacts_dir / "digests.json"


def _verify(cfg: Config, files: dict[str, Path]) -> None:
    """Check each artifact against the SHA-256 that 00_data recorded beside it (ValueError naming the file)."""
    recorded = json.loads(_digests_file(cfg).read_text())
    for name, path in files.items():
        if cache.file_sha256(path) != recorded.get(name):
            raise cache.CorruptCacheFile(f"corrupt cache file {path}: its SHA-256 differs from the one notebook "
                                         f"00_data recorded; rerun it (./run_all.sh --profile {cfg.profile} --only 00)")


def report_tables(st: Study, dataset: data.FaceDataset) -> dict[str, pd.DataFrame]:
    """The tables notebook 00 commits, with paths relative to the data root (no machine path):
    summary, skipped (files and folders not read), alignment failures, dropped people, several faces."""
    def relative(p: str | os.PathLike) -> str:
        p = Path(p)
        name = p.relative_to(dataset.root).as_posix() if p.is_relative_to(dataset.root) else shown_path(p)
        return name.encode("utf-8", "backslashreplace").decode("utf-8")  # non-UTF-8 names shown escaped

    several = st.images[st.images.faces_found > 1] if "faces_found" in st.images else st.images.iloc[:0]
    return {
        "summary": pd.Series(st.summary, name="value").rename_axis("item").reset_index(),
        "skipped": pd.DataFrame([(relative(p), why) for p, why in dataset.skipped], columns=["path", "reason"]),
        "alignment_failures": st.failures.assign(path=st.failures.path.map(relative)),
        "dropped_identities": st.dropped,
        "several_faces": several.assign(path=several.path.map(relative))[
            ["identity", "path", "faces_found", "face_kept", "face_prob", "face_box"]],
    }


def load(cfg: Config) -> Study:
    """The artifacts that ``00_data`` wrote for this run, verified against their recorded SHA-256;
    a clear error if it has not run or a file was damaged."""
    files = _files(cfg)
    missing = [str(p) for p in [*files.values(), _digests_file(cfg)] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"run '{cfg.run_name}' has no data artifacts ({missing[0]}): "
                                f"run notebook 00_data first (./run_all.sh --profile {cfg.profile} --only 00)")
    _verify(cfg, files)
    return Study(pd.read_csv(files["images"]), pd.read_csv(files["pairs"]), pd.read_csv(files["failures"]),
                 json.loads(files["summary"].read_text()), pd.read_csv(files["dropped"]))


def crops(cfg: Config, paths: list[str], geometry: str) -> tuple[np.ndarray, list[str]]:
    """Aligned uint8 crops (N, S, S, 3) of ``paths`` in ``geometry`` and their cache keys (from the cache).

    Each key is :func:`align.crop_key`: the source file's SHA-256 and the geometry's definition, so
    everything cached from the crops (embeddings, maps, label maps) follows an edited template.
    """
    result = align.align_paths([Path(p) for p in paths], [geometry], cfg.cache_root, device=cfg.device)
    if result.failed:
        raise ValueError(f"{len(result.failed)} of these images have no aligned crop, e.g. {result.failed[0]}")
    return result.crops[geometry], [align.crop_key(sha, geometry) for sha in result.sha256]
