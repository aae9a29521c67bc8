"""What each notebook needs from the data set, checked before it computes anything.

A small data set of one's own (say 6 people with 2-4 photos each) can select too few people or
images for a step: a leave-one-out reference needs two images of a person, a different-person
comparison two people, an occlusion test a held-out image plus two map images per person. Each
notebook calls :func:`check` once after loading the study; it stops with one message saying what
the notebook needs, what the run has, and which setting to change. :func:`pair_folds` does the same
for the verification folds built from the seed (notebook 00).
"""
from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from facexai import data
from facexai.profiles import Config

log = logging.getLogger(__name__)

MIN_FOLDS = 2  # a threshold fit on some folds and tested on another needs two


class NotEnoughData(ValueError):
    """The selected people or images cannot support a notebook's computation (the message says which setting to change)."""


@dataclass(frozen=True)
class Need:
    """At least ``people`` selected people with at least ``images`` aligned images each, because ``why``."""

    people: int
    images: int
    why: str


def occluded_images(cfg: Config) -> int:
    """Aligned images a person needs to enter an occlusion test: the held-out ones (``occlusion_n_eval``,
    an int count; a fraction keeps at least one) plus two generation images (a leave-one-out map)."""
    n_eval = cfg.occlusion_n_eval
    held = int(n_eval) if isinstance(n_eval, numbers.Integral) and not isinstance(n_eval, bool) else 1
    return held + 2


def needs(notebook: str, cfg: Config) -> list[Need]:
    """The needs of ``notebook`` (its file stem, e.g. ``"05_bhattacharyya"``) under ``cfg``."""
    mapped = Need(1, 2, "a person map uses a leave-one-out reference (the mean of the person's other images)")
    two_people = Need(2, 1, "impostor pairs and different-person comparisons need two people")
    occluded = Need(1, occluded_images(cfg), f"the occlusion test holds out {cfg.occlusion_n_eval} image(s) per person "
                                             "and makes the person map from at least 2 others")
    table = {
        "00_data": [Need(1, 1, "the later notebooks need at least one selected person")],
        "01_models": [two_people, Need(1, 2, "genuine pairs need two images of one person")],
        "02_parsing": [Need(1, 1, "face parsing needs one aligned face")],
        "03_leam_layers": [mapped, two_people],
        "04_region_statistics": [mapped],
        "05_bhattacharyya": [mapped, two_people],
        "06_occlusion_validation": [occluded, two_people],
        "07_transferability": [occluded, two_people],
        "08_xai_generalizability": [occluded, two_people],
        "09_sanity_checks": [two_people, occluded],
        "10_protocol_sensitivity": [occluded, two_people],
        "11_claims": [Need(1, 1, "the ledger judges the tables of a run that selected at least one person")],
    }
    if notebook not in table:
        raise ValueError(f"no needs recorded for notebook {notebook!r}; known: {sorted(table)}")
    return table[notebook]


def _settings(cfg: Config, notebook: str) -> str:
    occluding = any(n in notebook for n in ("06", "07", "08", "09", "10"))
    parts = [f"--n-identities (now {cfg.n_identities})", f"--min-images (now {cfg.min_images})",
             "--data-root (a folder with more people, or more photos of each)"]
    if occluding:
        parts.append(f"-p n_eval (held-out images per person, now {cfg.occlusion_n_eval})")
    return ", ".join(parts)


def problems(notebook: str, images_per_person: Mapping[str, int], cfg: Config) -> list[str]:
    """The unmet needs of ``notebook``, one sentence each, given each selected person's aligned image count."""
    out = []
    for need in needs(notebook, cfg):
        have = sum(n >= need.images for n in images_per_person.values())
        if have < need.people:
            out.append(f"it needs {need.people} {'person' if need.people == 1 else 'people'} with >= {need.images} "
                       f"aligned image(s) each ({need.why}); this run has {have}")
    return out


def check(notebook: str, images: pd.DataFrame, cfg: Config) -> None:
    """Stop ``notebook`` with one clear :class:`NotEnoughData` message when the run's selected ``images``
    (columns identity, path: ``study.Study.images``) cannot support it; return quietly otherwise."""
    counts = images.groupby("identity").size().to_dict() if len(images) else {}
    unmet = problems(notebook, counts, cfg)
    if unmet:
        have = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nobody"
        raise NotEnoughData(
            f"notebook {notebook} cannot run on run '{cfg.run_name}': " + "; ".join(unmet)
            + f". Selected people (aligned images): {have}. Change {_settings(cfg, notebook)}; "
            f"notebook 00_data's tables dropped_identities and alignment_failures say who was left out and why.")


def pair_folds(dataset: data.FaceDataset, n_folds: int) -> int:
    """The number of verification folds to build from the seed: the profile's ``n_folds``, or as many as
    ``dataset`` allows when it has too few people (a fold needs one person with two images and two people
    in all, each person in one fold), logged; :class:`NotEnoughData` when even :data:`MIN_FOLDS` cannot be made."""
    multi = sum(len(files) >= 2 for files in dataset.identities.values())
    possible = min(multi, dataset.n_identities // 2)
    if possible >= n_folds:
        return n_folds
    if possible < MIN_FOLDS:
        raise NotEnoughData(
            f"{dataset.root}: {dataset.n_identities} people ({multi} with >= 2 images) cannot make {MIN_FOLDS} "
            f"verification folds of disjoint people (each needs a person with 2 images and 2 people in all); "
            f"use --data-root with at least 4 people, 2 of them with 2 or more photos, or give a pairs file (--pairs)")
    log.warning("%s: %d people (%d with >= 2 images) make at most %d folds of disjoint people: building %d "
                "instead of the profile's %d", dataset.root, dataset.n_identities, multi, possible, possible, n_folds)
    return possible


def not_eligible(dataset: data.FaceDataset, min_images: int) -> pd.DataFrame:
    """People of ``dataset`` never drawn because their folder holds fewer than ``min_images`` readable images:
    identity, images, reason (notebook 00 shows them beside the people dropped after alignment)."""
    rows = [(name, len(files), f"{len(files)} image(s) in the folder < min_images {min_images}")
            for name, files in sorted(dataset.identities.items()) if len(files) < min_images]
    return pd.DataFrame(rows, columns=["identity", "images", "reason"])
