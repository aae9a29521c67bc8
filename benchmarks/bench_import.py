"""A/B of :mod:`facexai.collector`: a notebook's imports and model loads with the collector left alone and with
the imports' objects frozen, each in a fresh process (the state a notebook kernel starts in).

Per arm, one process imports what notebook 01 imports, then loads the four packaged models from a warm
weights cache (``--cache-dir``, filled once before the first measurement), and reports the seconds of
each step and the seconds the collector spent in them (``gc.callbacks``). The arms alternate,
``--repeats`` times. Writes ``benchmarks/results_import.md``.

    nice -n 0 .venv/bin/python benchmarks/bench_import.py --cache-dir ../facexai-bench-cache
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fresh-process runner shared with the tests
from fresh_process import run_json  # noqa: E402

MODELS = ("SFACE", "FN_M", "FN_C", "DLIB")
STEPS = ("import", "load")

CHILD = """
import gc, json, time
spent, started = [0.0], []
def timer(phase, info):
    if phase == "start":
        started.append(time.perf_counter())
    else:
        spent[0] += time.perf_counter() - started.pop()
gc.callbacks.append(timer)
result = {{}}
t = time.perf_counter()
from facexai import feasibility, plots, profiles, study, verification
from facexai.models import load_model
from facexai.models.registry import registry_table
result["import"] = [time.perf_counter() - t, spent[0]]
spent[0], t = 0.0, time.perf_counter()
for name in {models!r}:
    load_model(name, "cpu", {cache!r})
result["load"] = [time.perf_counter() - t, spent[0]]
result["frozen"] = gc.get_freeze_count()
print(json.dumps(result))
"""


def measure(frozen: bool, cache_dir: Path) -> dict:
    """One fresh process with (``frozen``) or without :func:`facexai.collector.frozen_imports`."""
    code = CHILD.format(models=MODELS, cache=str(cache_dir))
    result = run_json(code, env={"FACEXAI_GC": None if frozen else "default"})
    if (result["frozen"] > 0) != frozen:
        raise RuntimeError(f"asked for frozen={frozen}, the process froze {result['frozen']} objects")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True, help="weights cache (converted once, then warm)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_import.md")
    args = parser.parse_args()
    measure(True, args.cache_dir)  # converts the weights once and warms the page cache; not reported
    runs = {False: [], True: []}
    for _ in range(args.repeats):
        for frozen in (False, True):
            runs[frozen].append(measure(frozen, args.cache_dir))
    started = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# The collector kept off the imports' objects: A/B ({started})", "",
             f"- command: `nice -n 0 .venv/bin/python benchmarks/bench_import.py {' '.join(sys.argv[1:])}`",
             f"- each cell: median over {args.repeats} fresh processes per arm (arms alternate): seconds of the step "
             "(collector's share in brackets); import = notebook 01's import cell, load = its four models from a "
             "warm weights cache",
             "- default = `FACEXAI_GC=default`; frozen = `facexai.collector.frozen_imports`", "",
             "| arm | import s (collector s) | load s (collector s) | objects frozen |", "|---|---:|---:|---:|"]
    for frozen, results in runs.items():
        cells = [f"{statistics.median(r[s][0] for r in results):.2f} ({statistics.median(r[s][1] for r in results):.2f})"
                 for s in STEPS]
        lines.append(f"| {'frozen' if frozen else 'default'} | {' | '.join(cells)} | "
                     f"{statistics.median(r['frozen'] for r in results):.0f} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
