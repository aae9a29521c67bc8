"""A/B of :mod:`facexai.allocator`: each model's first no-grad forwards with glibc's defaults and with the tuned
thresholds, each in a fresh process (the state a notebook kernel starts in).

Per model and arm, one process loads the model and times, in this order, ``nograd`` (batch 32, the
embedding pass: before any backward, where glibc's defaults hurt), ``grad_all_layers`` (batch 16,
LEAM's pass) and ``nograd`` again (after a backward, which raises glibc's own threshold), each for
``--seconds``; and its peak resident memory. The arms alternate, ``--repeats`` times. Writes
``benchmarks/results_allocator.md``.

    nice -n 0 .venv/bin/python benchmarks/bench_allocator.py
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

ORDER = ("nograd", "grad_all_layers", "nograd")

CHILD = """
import json, resource, sys
import facexai
sys.path.insert(0, {benchmarks!r})
import bench_models as B
from facexai.models import load_model
model = load_model({model!r})
names = list(model.layers)
fns = B.pass_functions(model, {{"grad": [names[-2]], "grad_all_layers": names}})
rates = [B.rates(fns[kind], B.face_like_images(B.BATCH[kind], model.spec.input_size, seed=1), {seconds})
         for kind in {order!r}]
print(json.dumps({{"tuned": facexai.TUNED_ALLOCATOR, "rates": rates,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(model: str, tuned: bool, seconds: float) -> dict:
    """One fresh process of ``model`` with (``tuned``) or without the allocator thresholds."""
    code = CHILD.format(benchmarks=str(ROOT / "benchmarks"), model=model, seconds=seconds, order=ORDER)
    result = run_json(code, env={"FACEXAI_GLIBC_MALLOC": None if tuned else "default"})
    if result["tuned"] != tuned:
        raise RuntimeError(f"{model}: asked for tuned={tuned}, the process reports {result['tuned']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["FN_C", "FN_M", "SFACE", "DLIB"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_allocator.md")
    args = parser.parse_args()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# glibc allocator thresholds: A/B ({started})", "",
             f"- command: `{' '.join(['nice -n 0 .venv/bin/python benchmarks/bench_allocator.py', *sys.argv[1:]])}`",
             f"- each cell: median img/s over {args.repeats} fresh processes per arm (arms alternate), "
             f"{args.seconds} s per measurement, in the order {' -> '.join(ORDER)}; peak = max resident MB",
             "- default = glibc's own thresholds (`FACEXAI_GLIBC_MALLOC=default`); tuned = `facexai.allocator`", "",
             "| model | arm | nograd, first (img/s) | grad_all_layers (img/s) | nograd, after a backward (img/s) "
             "| peak MB |", "|---|---|---:|---:|---:|---:|"]
    for model in args.models:
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for tuned in (False, True):
                runs[tuned].append(measure(model, tuned, args.seconds))
        for tuned, results in runs.items():
            cells = [statistics.median(r["rates"][i] for r in results) for i in range(len(ORDER))]
            peak = max(r["peak_mb"] for r in results)
            lines.append(f"| {model} | {'tuned' if tuned else 'default'} | "
                         + " | ".join(f"{c:.1f}" for c in cells) + f" | {peak:.0f} |")
            print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
