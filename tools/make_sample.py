"""Build the shipped LFW sample data/lfw_sample/ from the full LFW deep-funneled release.

Usage: python tools/make_sample.py [--lfw ../shared/data/lfw/lfw-deepfunneled] [--out data/lfw_sample]
Picks (seed 0) 60 people with >= 6 images, copies the first 4-6 images of each (count drawn from the
same seed), keeps LFW's layout <Name>/<Name>_NNNN.jpg and writes MANIFEST.csv (name, file, sha256, bytes).
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np

from facexai.cache import file_sha256
from facexai.data import load_lfw, select_identities

REPO = Path(__file__).resolve().parents[1]


def make_sample(lfw: Path, out: Path, n_people: int = 60, min_images: int = 6, seed: int = 0) -> int:
    """Copy the sample into ``out`` (replacing it) and write its manifest; return the image count."""
    dataset = load_lfw(lfw)
    names = select_identities(dataset, n_people, min_images=min_images, seed=seed)
    counts = np.random.default_rng(seed).integers(4, 7, size=len(names))
    if out.exists():
        shutil.rmtree(out)
    rows = []
    for name, k in zip(names, counts):
        for src in dataset.identities[name][:k]:
            dst = out / name / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            rows.append((name, f"{name}/{src.name}", file_sha256(dst), dst.stat().st_size))
    with open(out / "MANIFEST.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "file", "sha256", "bytes"])
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared/data/lfw/lfw-deepfunneled")
    parser.add_argument("--out", type=Path, default=REPO / "data/lfw_sample")
    args = parser.parse_args()
    n = make_sample(args.lfw, args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {n} images ({size / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
