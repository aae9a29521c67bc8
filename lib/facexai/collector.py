"""Keep Python's cyclic garbage collector off the objects the heavy imports leave: about 0.5 s per process.

Importing torch and torchvision (which pulls in torch._dynamo and sympy) creates ~300k objects that
live as long as the process. Python's collector rescans every tracked object in each full collection,
so it spent ~0.55 s of a 3.3 s import of notebook 01's modules rescanning them, and more in every full
collection afterwards (0.17 s while loading the four models). :func:`frozen_imports` pauses the
collector while they load and then moves them to its permanent generation (``gc.freeze``), which
later collections skip: notebook 01's imports 3.13 -> 2.65 s, its four model loads 0.86 -> 0.70 s
(``benchmarks/results_import.md``). The price: the cycles those imports leave as garbage (~180k
objects, 5 MB resident) are frozen with them instead of freed. Applied once, on import of
:mod:`facexai`; ``FACEXAI_GC=default`` leaves the collector alone (for the A/B measurement,
``benchmarks/bench_import.py``).
"""
from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

ENV = "FACEXAI_GC"  # "default": leave the collector's behaviour alone


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """Run the block with the collector paused, then freeze every object tracked so far; restores its state."""
    if os.environ.get(ENV) == "default":
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
