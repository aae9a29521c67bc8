"""How many upright faces the orientation check rejects, and how many turned faces it lets through.

Aligns the shipped LFW sample as is, then every fifth image turned by 90, 180 and 270 degrees,
in a fresh temporary cache, and prints the counts per failure reason (the numbers quoted in
facexai.align.orientation_problems). Run: .venv/bin/python tools/measure_orientation.py
"""
from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from facexai import align, data

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    paths = data.load_lfw(REPO / "data" / "lfw_sample").paths()
    with tempfile.TemporaryDirectory(prefix="orientation-") as tmp:
        tmp = Path(tmp)
        upright = align.align_paths(paths, ["arcface112"], cache_dir=tmp / "cache")
        print(f"upright: {len(upright.paths)} of {len(paths)} aligned; rejected: {upright.failed}")
        turned = []
        for k in (1, 2, 3):
            for p in paths[::5]:
                target = tmp / f"{p.stem}_turned{90 * k}.png"
                Image.fromarray(np.ascontiguousarray(np.rot90(data.load_image(p), k))).save(target)
                turned.append(target)
        result = align.align_paths(turned, ["arcface112"], cache_dir=tmp / "cache")
        reasons = collections.Counter(why.split(":")[0] for _, why in result.failed)
        print(f"turned: {len(result.paths)} of {len(turned)} aligned ({[p.name for p in result.paths]}); "
              f"not aligned: {dict(reasons)}")


if __name__ == "__main__":
    main()
