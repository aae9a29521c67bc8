"""Notebook kernels started one notebook ahead, so a notebook does not wait for its kernel's start-up.

A kernel takes about 2 s to start and 3-4 s more to import torch, torchvision and the library. The
runner starts notebook i+1's kernel while notebook i runs and hands it to papermill, which executes
in it instead of starting its own. Whether a whole run gains depends on free CPU: on 2 busy cores the
start-up competes with notebook i (README, *Cost accounts*: the quick run was not faster). The kernel runs :func:`warm` at start-up, which imports :data:`WARM_IMPORTS` and
binds no name: every notebook still imports what it uses, so it runs the same cell by cell in Jupyter.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

KERNEL = "facexai"  # installed into the venv by tools/bootstrap.sh
#: Modules the notebooks import (directly or through the library), loaded while the previous notebook runs
#: (facenet_pytorch after facexai, which makes torchvision importable on CPU-only torch first).
WARM_IMPORTS = ("torch", "facexai.plots", "facexai.study", "facexai.models", "facenet_pytorch")


def warm() -> None:
    """Import :data:`WARM_IMPORTS` (a new kernel runs this at start-up; it binds no name in the notebook)."""
    for module in WARM_IMPORTS:
        importlib.import_module(module)


WARM_LINE = "__import__('facexai.kernels').kernels.warm()"  # an expression of value None: nothing is displayed


@dataclass
class Kernel:
    """A started kernel: its manager (papermill's ``km``), and the log file its stdout and stderr go to."""

    manager: AsyncKernelManager
    log: IO[str]

    @property
    def pid(self) -> int | None:
        """The kernel process's id (None once it has ended)."""
        process = getattr(self.manager.provisioner, "process", None)
        return process.pid if process is not None and process.poll() is None else None

    def shutdown(self) -> None:
        """Stop the kernel (politely, then by force) and close its log."""
        try:
            if run_sync(self.manager.is_alive)():
                run_sync(self.manager.shutdown_kernel)(now=False)
        finally:
            self.log.close()


def start(cwd: str | os.PathLike, env: dict[str, str], log: Path) -> Kernel:
    """Start the study's kernel in ``cwd`` with environment ``env``, its stdout and stderr into ``log`` (truncated),
    running :func:`warm` at start-up. Returns at once; papermill waits until the kernel is ready."""
    manager = AsyncKernelManager(kernel_name=KERNEL)
    fh = open(log, "w")
    try:
        # the history in memory, as nbclient asks of the kernels it starts itself (no sqlite file shared by kernels)
        run_sync(manager.start_kernel)(cwd=str(cwd), env=env, stdout=fh, stderr=fh,
                                       extra_arguments=["--HistoryManager.hist_file=:memory:",
                                                        f"--IPKernelApp.exec_lines={WARM_LINE}"])
    except BaseException:
        fh.close()
        raise
    return Kernel(manager, fh)
