"""Run Python code in a fresh interpreter and read the JSON object it prints last.

A fresh process is the state a notebook kernel starts in: the tests and benchmarks of what
``import facexai`` switches on (``FACEXAI_GLIBC_MALLOC``, ``FACEXAI_GC``) measure there.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping


def run_json(code: str, *args: str, env: Mapping[str, str | None] | None = None,
             timeout: float | None = None) -> dict:
    """``python -c code *args`` with this process's environment changed by ``env`` (a None value removes the
    variable) and tqdm silenced; the last line it printed, parsed as JSON. A failing child raises."""
    environ = {**os.environ, "TQDM_DISABLE": "1"}
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    out = subprocess.run([sys.executable, "-c", code, *args], env=environ, check=True, capture_output=True,
                         text=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])
