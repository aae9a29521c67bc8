"""The study's command line, run by ``./run_all.sh``: read the options, check them, plan the run, run it.

Every option arrives as an argument (argv), never as source text, and is checked here before any
notebook starts: a bad value stops with a message naming the option. ``plan`` turns the options
into a ``RunPlan`` (which notebooks, with which parameters, writing where); ``--dry-run`` prints it,
otherwise ``facexai.runner`` executes it.
"""
from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facexai import profiles

REPO_ROOT = profiles.REPO_ROOT
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEVICE = re.compile(r"cpu|cuda(:\d+)?")
# Parameters the CLI sets itself (through its own options), passed to every notebook.
COMMON = ("profile", "data_root", "pairs", "models", "device", "cache_root", "scheduler", "seed", "run_name")
# Settings that define the run's Config: they must reach every notebook, or notebooks disagree.
RUN_WIDE = {"figures_dir": "--figures-dir", "n_identities": "--n-identities", "min_images": "--min-images"}
OPTION_OF = {**{name: "--" + name.replace("_", "-") for name in COMMON}, "cache_root": "--cache-dir", **RUN_WIDE}

EXAMPLES = """\
examples:
  ./run_all.sh                                   # the quick profile on the shipped LFW sample -> figures/quick/
  ./run_all.sh --profile smoke --only 00,01      # a subset, by number prefix
  ./run_all.sh --data-root ~/faces --min-images 2 --n-identities 6   # one's own data -> figures/quick-faces/
  ./run_all.sh --only 07 -p explainer gradcam++ --run-name quick-gradcampp
  ./run_all.sh --list                            # the notebooks and their parameters
  ./run_all.sh --profile paper --data-root /data/lfw-deepfunneled --pairs /data/pairs.txt --device cuda
  ./run_all.sh --scheduler local:2               # shards on a 2-worker Dask LocalCluster on this machine
  ./run_all.sh --scheduler tcp://host:8786       # shards on an existing Dask cluster (cache on a shared folder)

Runs are named after the profile and the data set (quick, quick-faces, ...) unless --run-name is
given. Figures and tables go to figures/<run>/ (HTML copies of the executed notebooks in
figures/<run>/notebooks/, the run's manifest in figures/<run>/manifest.json and .md), executed
notebooks and their logs to outputs/<run>/notebooks/. A folder of committed results (figures/quick,
figures/paper) is only rewritten by the profile's own run on its own data; anything else needs
--overwrite-committed. The run stops at the first failing notebook, naming it and printing its error.

"""


class UsageError(Exception):
    """A bad command line: the message says which option and what to do."""


@dataclass(frozen=True)
class Parameter:
    """One assignment of a notebook's ``parameters`` cell."""

    name: str
    default: Any  # the Python value of the default (its source text when it is not a literal)
    source: str  # the default as written
    help: str  # the comment after it


@dataclass(frozen=True)
class Notebook:
    """A jupytext source ``notebooks/NN_name.py`` and the parameters it declares."""

    source: Path
    parameters: dict[str, Parameter]

    @property
    def stem(self) -> str:
        return self.source.stem

    @property
    def number(self) -> str:
        return self.stem[:2]


@dataclass(frozen=True)
class RunPlan:
    """What a run does: the notebooks in order, each one's parameters, and where everything goes."""

    profile: str
    models: str
    run_name: str
    figures_dir: Path
    outputs_dir: Path
    notebooks: tuple[Notebook, ...]
    parameters: dict[str, dict[str, Any]]  # notebook stem -> the parameters papermill injects
    options: dict[str, Any]  # the checked options, for the manifest
    html: bool


def read_parameters(source: Path) -> dict[str, Parameter]:
    """The parameters a notebook declares: each ``name = value  # help`` line of its ``parameters`` cell.

    Read with Python's own parser (papermill's inspection skips lines whose comment holds quotes).
    """
    import jupytext

    nb = jupytext.read(source)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    text = cells[0].source
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT}
    out = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and node.value is not None:
                written = ast.get_source_segment(text, node.value) or ""
                try:
                    default = ast.literal_eval(node.value)
                except ValueError:
                    default = written
                out[target.id] = Parameter(target.id, default, written, comments.get(node.end_lineno, ""))
    return out


def discover(folder: Path = NOTEBOOKS_DIR) -> list[Notebook]:
    """Every notebook of the study, in run order."""
    return [Notebook(src, read_parameters(src)) for src in sorted(folder.glob("[0-9][0-9]_*.py"))]


def build_parser() -> argparse.ArgumentParser:
    """The options of ./run_all.sh (``--help`` prints them)."""
    ap = argparse.ArgumentParser(
        prog="run_all.sh", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Run the study: every notebook in notebooks/ (jupytext sources), in order, with papermill.")
    run = ap.add_argument_group("what to run")
    run.add_argument("--profile", default="quick", help="smoke | quick (default) | paper (lib/facexai/profiles.toml)")
    run.add_argument("--only", metavar="NN,NN", help="only these notebooks, by number prefix: '00,01' or '3, 4'")
    run.add_argument("--from", dest="start", metavar="NN", help="run from this notebook on, e.g. --from 03")
    run.add_argument("--list", action="store_true", help="print the notebooks, their parameters and defaults; stop")
    run.add_argument("--dry-run", action="store_true", help="check the options and print the plan; run nothing")
    data = ap.add_argument_group("data and models (empty: the profile's)")
    data.add_argument("--data-root", metavar="DIR", help="folder-per-identity images (LFW layout)")
    data.add_argument("--pairs", metavar="FILE", help="LFW View 2 pairs.txt (otherwise pairs are built from the seed)")
    data.add_argument("--models", default="", metavar="A,B", help="comma-separated model names, e.g. FN_C,SFACE")
    data.add_argument("--n-identities", type=int, metavar="N", help="number of people to select")
    data.add_argument("--min-images", type=int, metavar="K", help="select only people with at least K images")
    data.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    data.add_argument("--seed", default="0", metavar="N", help="seed of every random choice (integer >= 0; default 0)")
    data.add_argument("--scheduler", default="", metavar="WHERE",
                      help="where cached shards run: empty (default) in this process, local:N on a Dask LocalCluster "
                           "of N one-thread workers started for the run, or a Dask scheduler address tcp://host:8786")
    params = ap.add_argument_group("notebook parameters")
    params.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set parameter NAME of every notebook that declares it (repeatable)")
    params.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="the same as -p NAME VALUE")
    params.add_argument("--params-file", metavar="FILE", help="YAML mapping NAME: value of notebook parameters (-p wins)")
    out = ap.add_argument_group("where results go")
    out.add_argument("--run-name", metavar="NAME", help="the run's name (default: the profile [-the data folder])")
    out.add_argument("--figures-dir", metavar="DIR", help="the run's figures and tables folder (default figures/<run>)")
    out.add_argument("--out", metavar="DIR", help="executed notebooks and logs (default outputs/<run>/notebooks)")
    out.add_argument("--cache-dir", metavar="DIR", help="cache folder (default $FACEXAI_CACHE or cache/)")
    out.add_argument("--overwrite-committed", action="store_true",
                     help="allow writing into a folder of committed results with other data or settings")
    out.add_argument("--no-html", action="store_true", help="do not export the executed notebooks to HTML")
    return ap


def select(notebooks: list[Notebook], only: str | None, start: str | None) -> list[Notebook]:
    """The notebooks ``--only`` / ``--from`` name (numbers like '00', '3' or '03_leam_layers')."""
    numbers = [nb.number for nb in notebooks]

    def number(token: str, option: str) -> str:
        token = token.strip()
        key = token.split("_")[0]
        key = key.zfill(2) if key.isdigit() else key
        if key not in numbers:
            raise UsageError(f"{option}: no notebook numbered '{token}'; the notebooks are "
                             + ", ".join(nb.stem for nb in notebooks))
        return key

    if only is not None and start is not None:
        raise UsageError("--only and --from exclude each other; give one")
    if only is not None:
        wanted = {number(t, "--only") for t in only.split(",") if t.strip()}
        if not wanted:
            raise UsageError("--only: give notebook numbers, e.g. --only 00,01")
        return [nb for nb in notebooks if nb.number in wanted]
    if start is not None:
        first = number(start, "--from")
        return [nb for nb in notebooks if nb.number >= first]
    return list(notebooks)


def coerce(value: Any, param: Parameter, stem: str) -> Any:
    """``value`` (command-line text or a YAML value) as the type of the parameter's default, or UsageError."""
    default, kind = param.default, type(param.default)

    def refuse() -> UsageError:
        expect = "True or False" if kind is bool else kind.__name__
        return UsageError(f"parameter {param.name} of {stem} expects {expect} (default {param.source}), got {value!r}")

    if default is None:  # e.g. n_eval = None: a Python literal if the text reads as one, else the text
        if isinstance(value, str):
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return value
        return value
    if kind is str:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, str):  # command-line text
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise refuse()
            return value.lower() == "true"
        try:
            parsed = kind(value) if kind in (int, float) else ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise refuse() from None
        if not isinstance(parsed, kind):
            raise refuse()
        return parsed
    if isinstance(value, bool) != (kind is bool):  # YAML true for a number, or 1 for a flag
        raise refuse()
    if kind is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, kind):
        raise refuse()
    return value


def requested_parameters(args: argparse.Namespace, cwd: Path) -> dict[str, Any]:
    """NAME -> value from --params-file, then --param NAME=VALUE and -p NAME VALUE (later wins)."""
    values: dict[str, Any] = {}
    if args.params_file:
        import yaml

        path = absolute(args.params_file, cwd)
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise UsageError(f"--params-file: cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"--params-file: {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--params-file: {path} must hold a mapping NAME: value")
        values.update({str(k): v for k, v in loaded.items()})
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param: expected NAME=VALUE, got '{item}'")
        values[name.strip()] = value
    values.update({name: value for name, value in args.parameter})
    for name in values:
        if name in OPTION_OF:
            raise UsageError(f"parameter {name} is set with {OPTION_OF[name]}, not -p/--param")
    return values


def forward(requested: dict[str, Any], run_wide: dict[str, Any], selected: list[Notebook],
            everyone: list[Notebook]) -> dict[str, dict[str, Any]]:
    """Per selected notebook, the requested parameters it declares (typed); errors name the notebooks."""
    out: dict[str, dict[str, Any]] = {nb.stem: {} for nb in selected}
    for name, value in requested.items():
        takers = [nb for nb in selected if name in nb.parameters]
        if not takers:
            elsewhere = [nb.stem for nb in everyone if name in nb.parameters]
            if elsewhere:
                raise UsageError(f"parameter {name}: none of the selected notebooks "
                                 f"({', '.join(nb.stem for nb in selected)}) declares it; "
                                 f"it is declared by {', '.join(elsewhere)}")
            raise UsageError(f"parameter {name}: no notebook declares it (see ./run_all.sh --list)")
        for nb in takers:
            out[nb.stem][name] = coerce(value, nb.parameters[name], nb.stem)
    for name, value in run_wide.items():
        missing = [nb.stem for nb in selected if name not in nb.parameters]
        if missing:
            raise UsageError(f"{RUN_WIDE[name]} must reach every notebook of the run, but {', '.join(missing)} "
                             f"declare{'s' if len(missing) == 1 else ''} no parameter '{name}'")
        for nb in selected:
            out[nb.stem][name] = value
    return out


def absolute(path: str, cwd: Path) -> Path:
    """A path given on the command line, relative to the caller's working directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (cwd / p).resolve()


def check_device(device: str) -> str:
    """cpu, cuda or cuda:N, and CUDA only when this torch sees such a device."""
    if not DEVICE.fullmatch(device):
        raise UsageError(f"--device: '{device}' is not a device this study runs on; use cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise UsageError(f"--device {device}: this torch ({torch.__version__}) sees "
                             f"{count or 'no'} CUDA device{'' if count == 1 else 's'}; use --device cpu")
    return device


def check_scheduler(scheduler: str) -> str:
    """Empty (in-process), local:N or a Dask scheduler address (:func:`facexai.executor.check_scheduler`)."""
    from facexai import executor

    try:
        return executor.check_scheduler(scheduler)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None


def check_seed(seed: str) -> int:
    """An integer numpy and torch both accept as a seed."""
    try:
        value = int(seed)
    except ValueError:
        raise UsageError(f"--seed: expected an integer >= 0, got '{seed}'") from None
    if not 0 <= value < 2**32:
        raise UsageError(f"--seed: expected an integer in [0, 2**32), got {value}")
    return value


def check_models(models: str) -> str:
    """Comma-separated registry names (an error names the known models)."""
    from facexai.models.registry import get_spec

    names = profiles.parse_list(models)
    for name in names:
        try:
            get_spec(name)
        except ValueError as exc:
            raise UsageError(f"--models: {exc}") from None
    return ",".join(names)


def slug(text: str) -> str:
    """A folder-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "data"


def default_run_name(profile: str, data_root: Path | None, pairs: Path | None) -> str:
    """The profile's name on its own data set, else profile-<data folder>[-<pairs file>]."""
    own_root, own_pairs = profiles.profile_data(profile)
    root = data_root or own_root
    if root == own_root and (pairs is None or pairs == own_pairs):
        return profile
    name = f"{profile}-{slug(root.name)}" if root else profile
    return name if pairs is None or pairs == own_pairs else f"{name}-{slug(pairs.stem)}"


def committed(folder: Path) -> bool:
    """Does git track files in ``folder`` (a folder of committed results)?"""
    try:
        res = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "--", str(folder)],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        res = None
    if res is None or res.returncode != 0:  # no git (e.g. a container without .git): profile folders count
        return folder.parent == REPO_ROOT / "figures" and folder.name in profiles.available() and folder.is_dir()
    return bool(res.stdout.strip())


def changed_settings(args: argparse.Namespace, data_root: Path | None, pairs: Path | None, models: str, seed: int,
                     requested: dict[str, Any], run_name: str) -> list[str]:
    """The options by which this run differs from its profile's own run (whose results may be committed)."""
    own_root, own_pairs = profiles.profile_data(args.profile)
    changes = ["--data-root"] * (data_root not in (None, own_root)) + ["--pairs"] * (pairs not in (None, own_pairs))
    changes += [OPTION_OF[k] for k in ("n_identities", "min_images") if getattr(args, k) is not None]
    changes += ["--models"] * bool(models) + ["--seed"] * (seed != 0) + [f"-p {n}" for n in requested]
    return changes + ["--run-name"] * (run_name != args.profile)


def plan(args: argparse.Namespace, cwd: Path | None = None) -> RunPlan:
    """Check the parsed options and turn them into a plan. Raises UsageError with the reason."""
    cwd = cwd or Path.cwd()
    table = profiles.available()
    if args.profile not in table:
        raise UsageError(f"--profile: unknown profile '{args.profile}'; choose one of {', '.join(table)}")
    everyone = discover()
    selected = select(everyone, args.only, args.start)
    device, seed, models = check_device(args.device), check_seed(args.seed), check_models(args.models)
    scheduler = check_scheduler(args.scheduler)
    for option in ("n_identities", "min_images"):
        value = getattr(args, option)
        if value is not None and value < (2 if option == "min_images" else 1):
            raise UsageError(f"{RUN_WIDE[option]}: expected an integer >= {2 if option == 'min_images' else 1}, "
                             f"got {value}")
    data_root = absolute(args.data_root, cwd) if args.data_root else None
    pairs = absolute(args.pairs, cwd) if args.pairs else None
    run_name = args.run_name or default_run_name(args.profile, data_root, pairs)
    if not RUN_NAME.fullmatch(run_name):
        raise UsageError(f"--run-name: '{run_name}' is not a folder name (letters, digits, '.', '_', '-')")
    figures_dir = absolute(args.figures_dir, cwd) if args.figures_dir else REPO_ROOT / "figures" / run_name
    outputs_dir = absolute(args.out, cwd) if args.out else REPO_ROOT / "outputs" / run_name / "notebooks"
    cache_dir = absolute(args.cache_dir, cwd) if args.cache_dir else None

    run_wide = {name: getattr(args, name) for name in ("n_identities", "min_images") if getattr(args, name)}
    if args.figures_dir:
        run_wide["figures_dir"] = str(figures_dir)
    requested = requested_parameters(args, cwd)

    changes = changed_settings(args, data_root, pairs, models, seed, requested, run_name)
    own_folder = figures_dir == REPO_ROOT / "figures" / args.profile
    if (changes or not own_folder) and committed(figures_dir) and not args.overwrite_committed:
        why = f"changes {', '.join(changes)}" if own_folder else f"is a {args.profile} run"
        raise UsageError(f"{figures_dir} holds committed results and this run {why}: give the run its own "
                         "folder with --run-name NAME (or --figures-dir DIR), or pass --overwrite-committed")
    extra = forward(requested, run_wide, selected, everyone)

    common = {"profile": args.profile, "data_root": str(data_root or ""), "pairs": str(pairs or ""),
              "models": models, "device": device, "cache_root": str(cache_dir or ""), "scheduler": scheduler,
              "seed": seed, "run_name": run_name}
    parameters = {nb.stem: {**common, **extra[nb.stem]} for nb in selected}
    options = {"profile": args.profile, "run_name": run_name, "data_root": data_root, "pairs": pairs,
               "models": models, "device": device, "scheduler": scheduler, "seed": seed,
               "n_identities": args.n_identities,
               "min_images": args.min_images, "cache_dir": cache_dir, "figures_dir": figures_dir,
               "out": outputs_dir, "only": args.only, "from": args.start, "parameters": requested,
               "overwrite_committed": args.overwrite_committed}
    return RunPlan(args.profile, models, run_name, figures_dir, outputs_dir, tuple(selected), parameters, options,
                   html=not args.no_html)


def describe_notebooks(notebooks: list[Notebook]) -> str:
    """The --list text: the common parameters once, then each notebook's own, with defaults and help."""
    lines = [f"Every notebook receives: {', '.join(COMMON)} (set with {', '.join(OPTION_OF[n] for n in COMMON)})", ""]
    for nb in notebooks:
        own = [p for p in nb.parameters.values() if p.name not in COMMON]
        lines.append(f"{nb.stem}" + ("" if own else "  (no parameters of its own)"))
        for p in own:
            lines.append(f"    {p.name} = {p.source}" + (f"    # {p.help}" if p.help else ""))
    lines.append("")
    lines.append("Set one with -p NAME VALUE (or --param NAME=VALUE, or a YAML --params-file): it reaches every "
                 "notebook that declares NAME.")
    return "\n".join(lines)


def describe_plan(p: RunPlan) -> str:
    """The --dry-run text: where the run writes and what each notebook receives."""
    lines = [f"[run_all] plan: run {p.run_name} (profile {p.profile})",
             f"[run_all]   figures and tables: {p.figures_dir}",
             f"[run_all]   executed notebooks: {p.outputs_dir}",
             f"[run_all]   cache: {p.options['cache_dir'] or 'default ($FACEXAI_CACHE or cache/)'}",
             f"[run_all]   html: {'figures/<run>/notebooks/*.html' if p.html else 'off'}"]
    for nb in p.notebooks:
        values = ", ".join(f"{k}={v!r}" for k, v in p.parameters[nb.stem].items())
        lines.append(f"[run_all]   {nb.stem}: {values}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """./run_all.sh: 0 on success, 1 when a notebook fails, 2 for a bad command line."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)  # exits 2 with argparse's message on a malformed line
    try:
        if args.list:
            print(describe_notebooks(select(discover(), args.only, args.start)))
            return 0
        run_plan = plan(args)
    except (UsageError, ValueError) as exc:
        print(f"run_all.sh: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(describe_plan(run_plan))
        return 0
    from facexai import runner

    return runner.run(run_plan, argv)


if __name__ == "__main__":
    sys.exit(main())
