"""Peak memory of aligning four 24-megapixel photos (6000 x 4000, upscaled sample faces).

Large images are detected on a downscaled copy and decoded a bounded number of pixels at a time
(facexai.align.MAX_DETECT_PIXELS, LOAD_PIXELS), so the peak stays well below what MTCNN needs on
full-size photos. Run: .venv/bin/python tools/measure_alignment_memory.py
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

from facexai import align, data

REPO = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    sample = data.load_lfw(REPO / "data" / "lfw_sample")
    with tempfile.TemporaryDirectory(prefix="alignment-memory-") as tmp:
        tmp = Path(tmp)
        photos = []
        for i, path in enumerate(sample.paths()[:4]):
            photo = tmp / f"photo{i}.jpg"
            big = cv2.resize(data.load_image(path), (6000, 4000), interpolation=cv2.INTER_LINEAR)
            Image.fromarray(big).save(photo, quality=90)
            photos.append(photo)
        del big
        before, start = peak_mb(), time.time()
        result = align.align_paths(photos, ["arcface112"], cache_dir=tmp / "cache")
        print(f"aligned {len(result.paths)} of {len(photos)} 24-MP photos in {time.time() - start:.0f} s "
              f"(failures: {result.failed}); peak RSS {peak_mb():.0f} MB, {before:.0f} MB before aligning")


if __name__ == "__main__":
    main()
