"""Provenance of a run: the manifest beside its figures (``figures/<run>/manifest.json`` and ``.md``).

It records what produced the figures: the options and each notebook's parameters, the git commit
(with a dirty flag), the versions of the pinned packages, the machine, and per notebook when it
ran, how long it took, the peak memory of its kernel and its cost account (the face-model passes it
made, their floor at the measured img/s of ``benchmarks/results_models.json``, and wall / floor).
Paths are written relative to the repository, so a committed manifest holds no machine's absolute path.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import threading
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from facexai import passes
from facexai.profiles import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", re.M)
PIN_FILES = ("base.txt", "nodeps.txt")
COSTS_FILE = REPO_ROOT / "benchmarks" / "results_models.json"  # measured img/s per model (bench_models.py)
RATIO_TARGET = 1.5  # a notebook's wall time over its passes' floor (the cost-account speed target)


def portable(value: Any) -> Any:
    """``value`` with every path made relative to the repository (``../x`` outside it); other values as they are."""
    if isinstance(value, Path):
        return os.path.relpath(value, REPO_ROOT)
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit checked out and whether tracked files outside figures/ differ from it (dirty)."""
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return res.stdout if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "changed": [], "note": "not a git checkout"}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures") or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit.strip(), "dirty": bool(changed), "changed": changed[:20]}


def package_versions() -> dict[str, dict[str, str | None]]:
    """Per package pinned in requirements/ (base and no-deps): the pin and the installed version."""
    out = {}
    for name in PIN_FILES:
        for pkg, pin in PIN.findall((REPO_ROOT / "requirements" / name).read_text()):
            try:
                installed = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                installed = None
            out[pkg] = {"pinned": pin, "installed": installed}
    return out


def machine() -> dict[str, Any]:
    """The hardware and system the run used (no host name)."""
    return {"system": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


class PeakMemory:
    """Peak resident memory of this process's children (the notebook's kernel and its workers), sampled.

    A background thread sums the RSS of every descendant process every ``interval`` seconds; the
    peak is a lower bound on the true peak (a spike shorter than the interval can be missed).
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_bytes = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass  # the process ended between listing and reading
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the run folder ``folder`` ({} before its first notebook)."""
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def notebook_parameters(folder: Path, stem: str) -> dict[str, Any]:
    """The parameters notebook ``stem`` last ran with in the run folder ``folder`` (its manifest entry; {} if none)."""
    return read_manifest(folder).get("notebooks", {}).get(stem, {}).get("parameters", {})


def declared_parameters(folder: Path) -> dict[str, dict[str, Any]]:
    """Per notebook of the run folder's manifest, the parameters it ran with beyond the ones every notebook
    gets (profile, data, models, device, cache, scheduler, seed, run name, people): what a run declared with
    ``-p`` (e.g. a paper run's RISE subset). Notebooks without any are left out."""
    from facexai.cli import OPTION_OF

    out = {}
    for stem, entry in sorted(read_manifest(folder).get("notebooks", {}).items()):
        extra = {k: v for k, v in entry.get("parameters", {}).items() if k not in OPTION_OF}
        if extra:
            out[stem] = extra
    return out


class Manifest:
    """``manifest.json`` + ``manifest.md`` of one run folder, rewritten (atomically) after every notebook.

    A run that executes only some notebooks keeps the entries of the others from earlier runs;
    each entry records the commit it ran at.
    """

    def __init__(self, folder: Path, run_name: str, profile: str, argv: list[str], options: dict[str, Any]):
        self.path = folder / "manifest.json"
        previous = read_manifest(folder)
        self.git = git_state()
        self.data = {
            "run_name": run_name, "profile": profile, "updated": now(),
            "command": "./run_all.sh " + " ".join(portable_argv(argv)),
            "options": portable(options), "git": self.git, "machine": machine(),
            "packages": package_versions(), "notebooks": previous.get("notebooks", {}),
        }
        self._pass_dirs: dict[str, Path] = {}

    def count_passes(self, stem: str, folder: Path) -> None:
        """Have the next notebook's kernel write its pass counts into ``folder`` (emptied first), via $FACEXAI_PASSES_DIR."""
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("passes-*.json"):
            old.unlink()
        os.environ[passes.ENV] = str(folder)
        self._pass_dirs[stem] = folder

    def record(self, stem: str, parameters: dict[str, Any], started: str, seconds: float, peak_mb: float,
               status: str) -> None:
        """Add (or replace) one notebook's entry and rewrite both files."""
        self.data["notebooks"][stem] = {
            "status": status, "started": started, "seconds": round(seconds, 1), "peak_memory_mb": peak_mb,
            "commit": self.git["commit"], "dirty": self.git["dirty"], "parameters": portable_parameters(parameters)}
        if stem in self._pass_dirs:
            self.data["notebooks"][stem]["cost"] = passes.account(
                passes.read(self._pass_dirs[stem]), passes.load_costs(COSTS_FILE), seconds)
        self.data["notebooks"] = dict(sorted(self.data["notebooks"].items()))
        self.data["updated"] = now()
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.path, json.dumps(self.data, indent=2) + "\n"),
                           (self.path.with_suffix(".md"), to_markdown(self.data))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)


def portable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Notebook parameters with absolute path strings made relative to the repository."""
    return {k: os.path.relpath(v, REPO_ROOT) if isinstance(v, str) and os.path.isabs(v) else v
            for k, v in parameters.items()}


def portable_argv(argv: list[str]) -> list[str]:
    """The command line with absolute paths made relative to the repository (quoted where needed)."""
    import shlex

    return [shlex.quote(os.path.relpath(a, REPO_ROOT) if os.path.isabs(a) else a) for a in argv]


def cost_markdown(notebooks: dict[str, Any]) -> list[str]:
    """The cost accounts as a table: passes (images) per model and kind, time inside them, floor, wall / floor."""
    lines = ["## Cost accounts", "",
             "Face-model forward passes per notebook (images; `grad` / `grad_all_layers` = with an autograd "
             "graph, a backward to the Grad-CAM layer / to every named layer follows), seconds inside the "
             "forwards, the floor (passes at the measured img/s of `benchmarks/results_models.json`, each "
             "grad kind at forward + backward to its depth), wall / floor "
             f"(target <= {RATIO_TARGET}).", "",
             "| notebook | passes (images) | forward s | floor s | wall s | wall / floor |", "|---|---|---:|---:|---:|---:|"]
    for stem, e in notebooks.items():
        cost = e.get("cost")
        if cost is None:
            continue
        if not cost["recorded"]:
            lines.append(f"| {stem} | none recorded (no model loaded) | | | {e['seconds']} | |")
            continue
        shown = ", ".join(f"{r['model']} {r['kind']} {r['images']}" + ("" if r["device"] == "cpu" else f" ({r['device']})")
                          for r in cost["passes"]) or "none"
        ratio = "n/a" if cost["ratio"] is None else f"{cost['ratio']:.2f}"
        if cost["ratio"] is not None and cost["ratio"] > RATIO_TARGET:
            ratio += " (above target)"
        floor = "n/a" if cost["floor_seconds"] is None else cost["floor_seconds"]
        lines.append(f"| {stem} | {shown} | {cost['forward_seconds']} | {floor} | {cost['wall_seconds']} | {ratio} |")
    return lines + [""]


def to_markdown(data: dict[str, Any]) -> str:
    """The manifest as a page a reviewer reads."""
    git = data["git"]
    commit = git["commit"] or "unknown (not a git checkout)"
    dirty = {True: " (dirty: " + ", ".join(git["changed"]) + ")", False: " (clean)", None: ""}[git["dirty"]]
    m = data["machine"]
    lines = [f"# Manifest · run {data['run_name']}", "",
             f"- profile: `{data['profile']}`; last updated {data['updated']}",
             f"- command: `{data['command']}`",
             f"- commit: `{commit}`{dirty}",
             f"- machine: {m['system']}, {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}", "",
             "| notebook | status | started (UTC) | seconds | peak memory (MB) | commit |",
             "|---|---|---|---:|---:|---|"]
    for stem, e in data["notebooks"].items():
        sha = (e["commit"] or "?")[:10] + ("+dirty" if e["dirty"] else "")
        lines.append(f"| {stem} | {e['status']} | {e['started']} | {e['seconds']} | {e['peak_memory_mb']} | {sha} |")
    lines += ["", "Peak memory: the kernel's resident memory (with its child processes), sampled every 0.2 s.", ""]
    lines += cost_markdown(data["notebooks"])
    lines += ["## Parameters", ""]
    for stem, e in data["notebooks"].items():
        lines.append(f"- {stem}: " + ", ".join(f"`{k}={v!r}`" for k, v in e["parameters"].items()))
    lines += ["", "## Packages (pinned in requirements/)", "", "| package | pinned | installed |", "|---|---|---|"]
    for name, v in data["packages"].items():
        lines.append(f"| {name} | {v['pinned']} | {v['installed'] or 'missing'} |")
    return "\n".join(lines) + "\n"
