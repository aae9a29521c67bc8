"""Serve large tensors from glibc's reused heap instead of fresh pages: 1.2-2.2x faster first no-grad forwards.

glibc hands every allocation above its mmap threshold (128 KiB at start, raised only after a large
block has been freed, at most 32 MiB) fresh ``mmap`` pages, which the kernel zero-fills on first
touch. A PyTorch forward allocates each layer's output anew, so until a backward pass had happened to
raise the threshold, a no-grad forward spent much of its time in page faults: measured here at
batch 32 (``benchmarks/results_allocator.md``), SFACE 41 -> 92 img/s, FN_M 51 -> 63, FN_C 55 -> 64,
DLIB 260 -> 307. Raising the threshold to 256 MiB (trimming at twice that, glibc's own ratio) reuses
the heap instead; one model's peak memory stayed within 3%, a whole notebook's rose by up to 20%. Applied once, on import of :mod:`facexai`, on Linux with glibc only;
``FACEXAI_GLIBC_MALLOC=default`` leaves glibc's defaults (for the A/B measurement).
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

ENV = "FACEXAI_GLIBC_MALLOC"  # "default": leave glibc's allocator settings alone
MMAP_THRESHOLD = 256 * 2**20  # blocks at least this large still get their own mapping (e.g. a GB of maps)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # free heap above this is returned to the system
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)


def tune() -> bool:
    """Set glibc's mmap and trim thresholds for this process; True when they were set."""
    if os.environ.get(ENV) == "default" or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not done:
        log.warning("glibc refused the allocator thresholds: forwards keep paying page faults")
    return done
