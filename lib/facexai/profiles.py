"""Run profiles (smoke / quick / paper) and the folders a run writes to.

Every notebook starts with ``cfg = profiles.resolve(profile, **overrides)``: the profile's table
in ``profiles.toml`` with the notebook's non-empty parameters on top.
"""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from facexai import cache, executor

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_FILE = Path(__file__).with_name("profiles.toml")


def parse_list(value: str | Sequence | None, cast: type = str) -> list:
    """A profile list or a comma-separated notebook parameter as a list of ``cast`` values."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [cast(v.strip() if isinstance(v, str) else v) for v in items if str(v).strip()]


def available() -> dict[str, dict]:
    """All profiles as plain dicts, in file order (not the ``[method]`` and ``[protocol_sweep]`` tables)."""
    with open(PROFILES_FILE, "rb") as fh:
        return {name: table for name, table in tomllib.load(fh).items() if name not in ("method", "protocol_sweep")}


@dataclass(frozen=True)
class Config:
    """A resolved run configuration."""

    profile: str
    data_root: Path
    pairs: Path | None
    n_identities: int
    min_images: int
    models: tuple[str, ...]
    n_folds: int
    pairs_per_fold: int
    rise_masks: int
    rise_images: int
    occlusion_n_eval: int | float = 1  # held-out images per person (int) or fraction (float)
    occlusion_seeds: int = 1  # random-pixel baseline draws per occlusion condition
    xai_models: tuple[str, ...] = ()  # 08: models explained (empty: the run's models)
    xai_sweep_models: tuple[str, ...] = ()  # 08: models of the hyperparameter sweeps (empty: every xai model)
    xai_sweep_layers: int = 0  # 08: named layers in the layer sweep (0: every named layer)
    xai_margins: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)  # 08: ArcFace margins of the loss sweep
    xai_rise_mask_counts: tuple[int, ...] = ()  # 08: RISE mask counts swept besides rise_masks
    xai_rise_cell_sizes: tuple[int, ...] = (8, 32)  # 08: RISE cell sizes (px) swept besides the default 16
    xai_cost_images: int = 8  # 08: images of the fixed batch the explainers are timed on
    sanity_models: tuple[str, ...] = ()  # 09: models of the randomisation and faithfulness checks (empty: the run's)
    sanity_images: int = 4  # 09: images each check explains (one per person, seeded)
    sanity_stages: int = 0  # 09: cascade stages evaluated (0: every block)
    sanity_rise_masks: int = 100  # 09: RISE masks per image in the checks
    sanity_steps: int = 10  # 09: deletion / insertion steps from 0 to 100%
    sanity_lattice_people: int = 0  # 09: people of the lattice-treatment comparison (0: all)
    on_missing: str = "raise"  # 00: pairs naming missing or unreadable images: "raise" or "skip" (drop them)
    seed: int = 0
    device: str = "cpu"
    cache_root: Path = field(default_factory=cache.cache_dir)
    run_name: str = ""
    description: str = ""
    estimate: str = ""
    figures_root: Path | None = None  # the run's figures folder when not figures/<run_name> (--figures-dir)
    scheduler: str = ""  # where cached shards run: "" in-process, "local:N" or "tcp://host:8786" (facexai.executor)

    @property
    def figures_dir(self) -> Path:
        """Where this run's figures and tables go: ``figures/<run_name>/`` unless ``figures_root`` is set."""
        return self.figures_root or REPO_ROOT / "figures" / self.run_name

    @property
    def artifacts_dir(self) -> Path:
        """Where this run's intermediate artifacts go (read by later notebooks)."""
        return self.cache_root / "runs" / self.run_name

    def out(self, notebook: str, name: str) -> Path:
        """Path of an output file of one notebook, e.g. ``out("01_models", "lfw_accuracy.csv")``."""
        path = self.figures_dir / notebook / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def announce(profile: str, models: str = "") -> str:
    """Lines for the start of a run: the profile, what it is, how long it takes (checks the settings)."""
    cfg = resolve(profile, models=models)
    return f"[run_all] profile {cfg.profile}: {cfg.description}\n[run_all] expected time: {cfg.estimate}"


def _path(value: str | Path | None) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def profile_data(profile: str) -> tuple[Path | None, Path | None]:
    """The data set a profile names: (data root, pairs file), absolute (None where the profile leaves it empty)."""
    table = available()
    if profile not in table:
        raise ValueError(f"unknown profile '{profile}'; choose one of {list(table)}")
    return _path(table[profile].get("data_root")), _path(table[profile].get("pairs"))


def resolve(profile: str = "quick", **overrides) -> Config:
    """The profile's settings with every override that is not None or empty applied."""
    table = available()
    if profile not in table:
        raise ValueError(f"unknown profile '{profile}'; choose one of {list(table)}")
    values = dict(table[profile])
    values.update({k: v for k, v in overrides.items() if v not in (None, "", [], ())})
    figures_root = _path(values.pop("figures_dir", None))  # the notebooks' figures_dir parameter
    unknown = set(values) - {f.name for f in Config.__dataclass_fields__.values()}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} for profile '{profile}'")
    models = values.pop("models")
    if isinstance(models, str):
        models = parse_list(models)
    from facexai.models.registry import get_spec  # here: the registry is heavier than this module

    for name in models:
        get_spec(name)  # ValueError naming the known models
    cfg = Config(
        profile=profile,
        models=tuple(models),
        data_root=_path(values.pop("data_root")),
        pairs=_path(values.pop("pairs", None)),
        cache_root=cache.cache_dir(values.pop("cache_root", None)),
        figures_root=figures_root,
        **{k: v for k, v in values.items() if k != "run_name"},
    )
    executor.use(cfg.scheduler, cfg.cache_root)  # connects (once) and checks every worker sees the cache
    return replace(cfg, run_name=values.get("run_name") or profile)


@dataclass(frozen=True)
class Method:
    """The study's definitions (``[method]`` in profiles.toml), the same in every profile and notebook."""

    q: float  # critical region: top q% pixels
    fill: str  # the main occlusion fill
    fills: tuple[str, ...]  # fills compared; the main fill among them
    cam_layer: int  # the Grad-CAM family's layer: index into the named layers
    target: str  # cosine | arcface
    reference: str  # leave_one_out | all | pair
    margin: float  # ArcFace margin
    weighting: str  # LEAM's gradient weighting
    antialias: bool  # low-pass layer maps before upsampling


def method(**overrides) -> Method:
    """The ``[method]`` table with every override that is not None or empty applied (fills: a list or
    "a,b,c"); ValueError for an unknown name or a main fill outside ``fills``."""
    with open(PROFILES_FILE, "rb") as fh:
        values = dict(tomllib.load(fh)["method"])
    values.update({k: v for k, v in overrides.items() if v not in (None, "", [], ())})
    names = {f.name for f in Method.__dataclass_fields__.values()}
    if set(values) != names:
        raise ValueError(f"method settings: unknown {sorted(set(values) - names)}, missing {sorted(names - set(values))}")
    fills = values["fills"]
    fills = tuple(parse_list(fills))
    if values["fill"] not in fills:
        raise ValueError(f"the main fill {values['fill']!r} is not among the fills {list(fills)}")
    return Method(**{**values, "q": float(values["q"]), "cam_layer": int(values["cam_layer"]),
                     "margin": float(values["margin"]), "antialias": bool(values["antialias"]), "fills": fills})

