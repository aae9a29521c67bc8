"""Kernels started one notebook ahead: the study is loaded before a notebook starts, no name leaks into it, each
kernel has its own notebook's environment, and no kernel outlives the run (also when a notebook fails)."""
import json
import os
import time
from pathlib import Path

import psutil
from jupyter_core.utils import run_sync

from facexai import kernels, passes, runner
from facexai.cli import Notebook, RunPlan

PROBE = """# %%
import json, os, sys, time, psutil
me = psutil.Process()
time.sleep({sleep})
json.dump({{"pid": me.pid, "created": me.create_time(), "finished": time.time(),
           "passes_dir": os.environ.get("{env}"), "warm": {warm!r} and all(m in sys.modules for m in {warm!r}),
           "names": sorted(n for n in globals() if not n.startswith("_"))}}, open({out!r}, "w"))
{fail}
"""


def _notebook(folder: Path, stem: str, out: Path, sleep: float = 0.0, fail: bool = False) -> Notebook:
    source = folder / f"{stem}.py"
    source.write_text(PROBE.format(sleep=sleep, env=passes.ENV, warm=kernels.WARM_IMPORTS, out=str(out),
                                   fail="raise RuntimeError('this notebook fails')" if fail else ""))
    return Notebook(source, {})


def _plan(tmp_path: Path, notebooks: list[Notebook]) -> RunPlan:
    return RunPlan("smoke", "", "kernels-test", tmp_path / "figures", tmp_path / "outputs", tuple(notebooks),
                   {nb.stem: {} for nb in notebooks}, {"cache_dir": ""}, html=False)


def _kernels_alive(pids: list[int]) -> list[int]:
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_next_kernel_starts_while_the_current_notebook_runs(tmp_path):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    plan = _plan(tmp_path, [_notebook(tmp_path, "00_a", outs[0], sleep=4), _notebook(tmp_path, "01_b", outs[1])])
    assert runner._run(plan, [], plan.parameters, dict(os.environ)) == 0
    a, b = (json.loads(o.read_text()) for o in outs)
    assert a["pid"] != b["pid"]
    assert b["created"] < a["finished"], "the second kernel started only after the first notebook ended"
    assert a["warm"] and b["warm"], "the study's modules were not loaded at start-up"
    assert not {"facexai", "torch", "facenet_pytorch", "_module"} & set(a["names"] + b["names"])
    assert a["passes_dir"].endswith("00_a.passes") and b["passes_dir"].endswith("01_b.passes")
    manifest = json.loads((plan.figures_dir / "manifest.json").read_text())["notebooks"]
    assert manifest["00_a"]["status"] == manifest["01_b"]["status"] == "ok"
    time.sleep(1)
    assert not _kernels_alive([a["pid"], b["pid"]])


def test_a_failing_notebook_leaves_no_kernel_behind(tmp_path, capsys):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    plan = _plan(tmp_path, [_notebook(tmp_path, "00_a", outs[0], sleep=3, fail=True),
                            _notebook(tmp_path, "01_b", outs[1])])
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert runner._run(plan, [], plan.parameters, dict(os.environ)) == 1
    assert "FAILED in notebook 00_a" in capsys.readouterr().err and "this notebook fails" in (
        plan.outputs_dir / "00_a.ipynb").read_text()
    assert not outs[1].exists()  # the kernel started for 01_b never ran it
    time.sleep(1)
    assert not _kernels_alive([p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before])


def test_started_kernel_logs_into_its_file_and_shuts_down(tmp_path):
    kernel = kernels.start(tmp_path, dict(os.environ), tmp_path / "k.log")
    client = kernel.manager.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=120)
        pid = kernel.pid
        assert pid and psutil.pid_exists(pid)
        client.execute("import os; os.write(2, b'to the log\\n')")
        deadline = time.time() + 30
        while "to the log" not in (tmp_path / "k.log").read_text() and time.time() < deadline:
            time.sleep(0.2)
    finally:
        client.stop_channels()
        kernel.shutdown()
    assert "to the log" in (tmp_path / "k.log").read_text()
    assert kernel.log.closed and kernel.pid is None


def test_warm_imports_are_importable():
    kernels.warm()  # raises if a listed module is gone (a kernel would only log it)
