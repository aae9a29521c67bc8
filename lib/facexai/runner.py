"""Execute a run plan: each notebook jupytext source -> papermill -> executed .ipynb -> HTML beside the figures.

Stops at the first failing notebook, naming it and printing its error; the manifest is rewritten
after every notebook, so a killed run still says what it finished.
"""
from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from facexai import executor, profiles, provenance
from facexai.cli import NOTEBOOKS_DIR, RunPlan

KERNEL = "facexai"  # installed into the venv by tools/bootstrap.sh
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_IMAGE_BYTES = 200_000  # an embedded figure larger than this is downscaled in the HTML copy
MAX_IMAGE_WIDTH = 1400  # px: large figures are downscaled to this width at most (the PNG/PDF files keep full size)
MAX_IMAGE_PIXELS = 1_200_000  # and to this many pixels at most (tall grids)


def say(text: str, err: bool = False) -> None:
    print(f"[run_all] {text}", file=sys.stderr if err else sys.stdout, flush=True)


def run(plan: RunPlan, argv: list[str]) -> int:
    """Execute every notebook of ``plan`` in order: 0 when all succeed, 1 at the first failure.

    ``--scheduler local:N`` starts one LocalCluster for the whole run and gives the notebooks its
    address, so the workers keep their loaded models from one notebook to the next.
    """
    environ = dict(os.environ)  # every kernel starts with it, even after a nanny restarted a worker and wrote its own
    with shared_cluster(plan) as parameters:
        return _run(plan, argv, parameters, environ)


@contextlib.contextmanager
def shared_cluster(plan: RunPlan) -> Iterator[dict[str, dict]]:
    """The notebooks' parameters, with a ``local:N`` scheduler replaced by the address of a cluster started here."""
    scheduler = plan.options.get("scheduler", "")
    match = executor.LOCAL.fullmatch(scheduler)
    if not match:
        yield plan.parameters
        return
    cluster = executor.start_local(int(match.group(1)))
    say(f"Dask LocalCluster: {match.group(1)} workers (1 thread each) at {cluster.scheduler_address}")
    try:
        yield {stem: {**values, "scheduler": cluster.scheduler_address} for stem, values in plan.parameters.items()}
    finally:
        cluster.close()


def _run(plan: RunPlan, argv: list[str], parameters: dict[str, dict], environ: dict[str, str]) -> int:
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    print(profiles.announce(plan.profile, plan.models), flush=True)
    plan.outputs_dir.mkdir(parents=True, exist_ok=True)
    manifest = provenance.Manifest(plan.figures_dir, plan.run_name, plan.profile, argv, plan.options)
    n = len(plan.notebooks)
    for i, nb in enumerate(plan.notebooks, 1):
        executed, log = plan.outputs_dir / f"{nb.stem}.ipynb", plan.outputs_dir / f"{nb.stem}.log"
        say(f"({i}/{n}) {nb.stem} ... (progress: tail -f {log})")
        executor.restore_environ(environ)
        manifest.count_passes(nb.stem, plan.outputs_dir / f"{nb.stem}.passes")  # its kernel's face-model passes
        started, start, error = provenance.now(), time.monotonic(), None
        with open(log, "w") as fh, provenance.PeakMemory() as memory, logged_to(fh):
            try:
                # shutdown "immediate": once the last cell ran the kernel is stopped at once; its exit would
                # only free memory, 1-2.5 s per notebook (its pass counts are written after every cell)
                papermill.execute_notebook(jupytext.read(nb.source), str(executed), parameters=parameters[nb.stem],
                                           kernel_name=KERNEL, cwd=str(NOTEBOOKS_DIR), progress_bar=False,
                                           stdout_file=fh, stderr_file=fh, shutdown_kernel="immediate")
            except PapermillExecutionError as exc:
                error = ANSI.sub("", "\n".join(exc.traceback)) or f"{exc.ename}: {exc.evalue}"
            except Exception as exc:  # the kernel died, or did not start: still name the notebook
                error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - start
        manifest.record(nb.stem, plan.parameters[nb.stem], started, seconds, memory.peak_mb,
                        "failed" if error else "ok")
        if error:
            say(f"FAILED in notebook {nb.stem} (executed copy: {executed}, log: {log}):", err=True)
            print("\n".join(error.strip().splitlines()[-30:]), file=sys.stderr, flush=True)
            return 1
        if plan.html:
            html = export_html(executed, plan.figures_dir / "notebooks" / f"{nb.stem}.html",
                               hide={plan.options["cache_dir"]: "$CACHE"} if plan.options["cache_dir"] else {})
            say(f"({i}/{n}) {nb.stem} done in {seconds:.0f} s (HTML {html.stat().st_size / 2**20:.1f} MB)")
        else:
            say(f"({i}/{n}) {nb.stem} done in {seconds:.0f} s")
    say(f"finished. Executed notebooks: {plan.outputs_dir}")
    say(f"figures and tables: {plan.figures_dir}/")
    say(f"manifest: {manifest.path}")
    return 0


@contextlib.contextmanager
def logged_to(stream) -> Iterator[None]:
    """While a notebook runs, its kernel's stderr and papermill's log lines go to the notebook's log file."""
    handler, logger = logging.StreamHandler(stream), logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(stream.fileno(), 2)  # the kernel is a child process: it inherits file descriptor 2
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        logger.removeHandler(handler)


def shrink_images(nb, max_bytes: int = MAX_IMAGE_BYTES, max_width: int = MAX_IMAGE_WIDTH,
                  max_pixels: int = MAX_IMAGE_PIXELS) -> int:
    """Re-encode embedded PNG outputs larger than ``max_bytes`` as JPEG, downscaled to at most ``max_width``
    px wide and ``max_pixels`` pixels (in place); how many were changed."""
    from PIL import Image

    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data or len(data["image/png"]) * 3 // 4 <= max_bytes:
                continue
            image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
            scale = min(1.0, max_width / image.width, (max_pixels / (image.width * image.height)) ** 0.5)
            if scale < 1.0:
                size = (int(image.width * scale + 1e-6), int(image.height * scale + 1e-6))  # rounded down
                image = image.resize(size, Image.LANCZOS)
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="JPEG", quality=80)
            del data["image/png"]
            data["image/jpeg"] = base64.b64encode(buf.getvalue()).decode()
            output.get("metadata", {}).pop("image/png", None)
            count += 1
    return count


def export_html(executed: Path, html: Path, hide: dict[Path, str] | None = None) -> Path:
    """The executed notebook as a self-contained HTML page (figures embedded, large ones downscaled).

    Absolute paths of this machine are replaced (the repository by ``$REPO``, its parent folder by
    ``$REPO/..``, e.g. a data set in ``../shared``, the Python environment by ``$VENV``, each ``hide``
    folder by its label, the home folder by ``~``), so the page can be committed.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    shrink_images(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    labels = {str(k): v for k, v in (hide or {}).items()} | {
        str(profiles.REPO_ROOT): "$REPO", f"{profiles.REPO_ROOT.parent}/": "$REPO/../", sys.prefix: "$VENV",
        str(Path.home()): "~"}
    for path in sorted(labels, key=len, reverse=True):
        body = body.replace(path, labels[path])
    html.parent.mkdir(parents=True, exist_ok=True)
    tmp = html.with_name(html.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html)
    return html
