"""Randomisation sanity checks of saliency maps (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

A map that explains a model must change when the model's learned weights are destroyed, and a
map that explains a verification decision must change when the identity it is explained against
changes. Two checks, for every explainer of the study:

- **Cascading model-parameter randomisation**: on a deep copy of the model (the original is never
  touched), the parameterised modules are re-initialised block by block from the embedding layer
  down (:func:`cascade_blocks`: the modules after the last named layer, then each named layer's
  modules, in reverse execution order). Re-initialising replaces every parameter tensor by
  Gaussian noise with that tensor's own mean and standard deviation (seeded): scales are kept, so
  activations neither vanish nor explode, and all learned structure is gone. Buffers (batch-norm
  statistics) are kept. After each stage the maps are recomputed and compared with the original.
- **Target randomisation** (the verification analogue of label randomisation): the image is
  explained against an impostor's reference embedding, and against a random unit vector, instead
  of its own person's reference.

Similarity of a map to the original (:func:`similarity`): Spearman rank correlation of the pixel
values and SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, population
statistics) of the two maps, each min-max scaled to [0, 1].

**Verdict rule** (:func:`verdict`): an explainer *passes* a check on a model when the maps change:
the mean over images of |Spearman rho| AND the mean SSIM, at the fully randomised model (or the
randomised target), are both below ``threshold`` (default 0.5); otherwise it *fails*.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata
from torch import nn
from tqdm.auto import tqdm

from facexai import embed, metrics, saliency, study
from facexai.explain import SRISE, CorrRISE, LEAM, CosineTarget, Target, reference_embeddings
from facexai.explain.base import check_images, model_device
from facexai.explain.rise import RISEFamily
from facexai.models.registry import FaceModel
from facexai.profiles import Config

log = logging.getLogger(__name__)

PASSES, FAILS = "passes", "fails"
DEFAULT_THRESHOLD = 0.5
CAM_WEIGHTINGS = {"leam": "elementwise", "gradcam": "gradcam", "gradcam++": "gradcam++", "layercam": "elementwise"}
RISE_NAMES = ("srise", "corrrise")
EXPLAINERS = (*CAM_WEIGHTINGS, *RISE_NAMES)
RULE = ("passes when the maps change: mean absolute Spearman rho and mean SSIM to the original map both < {t:g} "
        "(fully randomised model, or randomised target); otherwise fails")

Explain = Callable[[nn.Module, torch.Tensor, Target], dict[str, np.ndarray]]


# ---------------------------------------------------------------- similarity of two maps

def _scaled(maps: np.ndarray) -> np.ndarray:
    """Maps (..., H, W) min-max scaled to [0, 1] each (a constant map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float64)
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity of two 2-D images (Wang et al. 2004; Gaussian window, population statistics)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim compares two 2-D maps of one shape, got {a.shape} and {b.shape}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x):
        return gaussian_filter(x, sigma, truncate=3.5, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of the pixel values of two maps (average ranks for ties; 0 if one is constant)."""
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def similarity(original: np.ndarray, other: np.ndarray) -> pd.DataFrame:
    """Per map pair of (N, H, W) stacks: spearman and ssim (maps min-max scaled before SSIM)."""
    original, other = np.asarray(original), np.asarray(other)
    if original.shape != other.shape or original.ndim != 3:
        raise ValueError(f"expected two (N, H, W) stacks of one shape, got {original.shape} and {other.shape}")
    a, b = _scaled(original), _scaled(other)
    return pd.DataFrame({"image": np.arange(len(a)),
                         "spearman": [spearman(x, y) for x, y in zip(original, other)],
                         "ssim": [ssim(x, y) for x, y in zip(a, b)]})


def verdict(spearman_values: Sequence[float], ssim_values: Sequence[float],
            threshold: float = DEFAULT_THRESHOLD) -> str:
    """``"passes"`` when mean |rho| and mean SSIM are both below ``threshold``, else ``"fails"`` (see the module)."""
    rho, s = np.abs(np.asarray(spearman_values, float)), np.asarray(ssim_values, float)
    if rho.size == 0 or s.size == 0 or not (np.isfinite(rho).all() and np.isfinite(s).all()):
        raise ValueError("verdict needs finite similarity values for at least one image")
    return PASSES if rho.mean() < threshold and s.mean() < threshold else FAILS


# ---------------------------------------------------------------- the study's explainers on any model

@dataclass(frozen=True)
class StudyExplainers:
    """Every explainer's map (N, H, W) of a batch on a given model, as the study defines them.

    LEAM: the overall map (mean over ``layers``); Grad-CAM, Grad-CAM++, LayerCAM: ``cam_layer``.
    All four come from one forward and one backward pass (:meth:`BaseCAM.weighted_maps`).
    S-RISE and CorrRISE share one set of ``rise_masks`` masked forward passes per image; their
    maps are scaled as the study's map store does (``rise_to_maps``).
    """

    layers: Mapping[str, str]  # {name: dotted path} in the model, input to output
    cam_layer: str  # name of the one layer of the Grad-CAM family
    input_size: int
    rise_masks: int = 100
    rise_cell: int = 16
    seed: int = 0
    antialias: bool = False
    explainers: tuple[str, ...] = EXPLAINERS

    def __post_init__(self):
        unknown = set(self.explainers) - set(EXPLAINERS)
        if unknown:
            raise ValueError(f"unknown explainers {sorted(unknown)}; valid: {list(EXPLAINERS)}")
        if self.cam_layer not in self.layers:
            raise ValueError(f"cam_layer {self.cam_layer!r} is not among the layers {list(self.layers)}")

    def __call__(self, model: nn.Module, images: torch.Tensor, target: Target) -> dict[str, np.ndarray]:
        images = check_images(images, self.input_size).to(model_device(model))
        out: dict[str, np.ndarray] = {}
        cams = [e for e in self.explainers if e in CAM_WEIGHTINGS]
        if cams:
            explainer = LEAM(model, dict(self.layers), self.input_size, antialias=self.antialias)
            column = list(self.layers).index(self.cam_layer)
            weightings = sorted({CAM_WEIGHTINGS[e] for e in cams})
            # LEAM needs its weighting at every layer; a weighting only the Grad-CAM family uses, at cam_layer alone
            at_cam_only = {w for w in weightings if "leam" not in cams or w != CAM_WEIGHTINGS["leam"]}
            maps = explainer.weighted_maps(images, target, weightings, {w: [column] for w in at_cam_only})
            for name in cams:
                m = maps[CAM_WEIGHTINGS[name]]
                at_cam = m[:, 0] if CAM_WEIGHTINGS[name] in at_cam_only else m[:, column]
                out[name] = (m.mean(1) if name == "leam" else at_cam).detach().cpu().numpy()
        rise = [e for e in self.explainers if e in RISE_NAMES]
        if rise:
            runner = RISEFamily(model, SRISE.statistics + CorrRISE.statistics, n_masks=self.rise_masks,
                                cell_size=self.rise_cell, seed=self.seed, batch_size=min(64, self.rise_masks),
                                input_size=self.input_size, progress=False)
            planes = saliency.rise_to_maps(runner(images, target)).cpu().numpy()  # the map store's scaling
            for name in rise:
                out[name] = planes[:, RISE_NAMES.index(name)]
        return {name: out[name].astype(np.float32) for name in self.explainers}


# ---------------------------------------------------------------- cascading randomisation

def completion_order(model: nn.Module, images: torch.Tensor) -> list[str]:
    """Names of all submodules in the order their forward calls first finish (children before parents)."""
    order: dict[str, None] = {}

    def hook(name: str):
        def record(_module, _inputs, _output) -> None:
            order.setdefault(name, None)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(images[:1])
    finally:
        for h in handles:
            h.remove()
    return list(order)


def cascade_blocks(model: nn.Module, layers: Mapping[str, str], images: torch.Tensor) -> list[tuple[str, list[str]]]:
    """Blocks of parameterised modules, from the embedding down: [(label, [module names])].

    A module that owns parameters belongs to the first named layer (input to output) whose forward
    call finishes at or after its own, i.e. the layer's own modules and those run since the
    previous named layer; the modules that finish after the last named layer form ``"head"``
    (the embedding layer and any normalisation). Empty blocks (e.g. a named ReLU right after a
    named convolution) are left out; parameterised modules that never run are logged and kept.
    """
    order = completion_order(model, images)
    position = {name: i for i, name in enumerate(order)}
    missing = [name for name in layers.values() if name not in position]
    if missing:
        raise ValueError(f"named layers {missing} do not run in the forward pass")
    ends = [position[path] for path in layers.values()]
    if ends != sorted(ends):
        raise ValueError(f"named layers {list(layers)} are not in execution order")
    owners = [name for name, m in model.named_modules() if name and any(True for _ in m.parameters(recurse=False))]
    idle = [name for name in owners if name not in position]
    if idle:
        log.info("%d parameterised modules do not run in the forward pass and are not randomised: %s",
                 len(idle), ", ".join(idle[:5]))
    labels = [*layers, "head"]
    members: dict[str, list[str]] = {label: [] for label in labels}
    for name in sorted((n for n in owners if n in position), key=position.get):
        block = next((label for label, end in zip(layers, ends) if position[name] <= end), "head")
        members[block].append(name)
    return [(label, members[label]) for label in reversed(labels) if members[label]]


@torch.no_grad()
def randomise_(model: nn.Module, module_names: Sequence[str], seed: int = 0) -> int:
    """Re-initialise (in place) every parameter of the named modules: N(mean, std) of the tensor itself.

    Returns the number of parameters changed. Call it on a copy (see :func:`cascading_randomisation`).
    """
    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    count = 0
    for name in module_names:
        for param in modules[name].parameters(recurse=False):
            flat = param.detach().double()
            std = float(flat.std(unbiased=False)) if flat.numel() > 1 else 0.0
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float64)
            param.copy_((float(flat.mean()) + std * noise).to(param.dtype))
            count += param.numel()
    return count


def stages(n_blocks: int, n_stages: int = 0) -> list[int]:
    """Which cumulative cascade stages to evaluate: 1..n_blocks (blocks randomised), evenly spaced, always
    the first and the last; ``n_stages`` 0 or >= n_blocks: all."""
    if n_blocks < 1:
        raise ValueError("the cascade has no block")
    if not n_stages or n_stages >= n_blocks:
        return list(range(1, n_blocks + 1))
    return sorted({int(round(x)) for x in np.linspace(1, n_blocks, max(2, n_stages))})


def cascading_randomisation(model: nn.Module, layers: Mapping[str, str], images: torch.Tensor, target: Target,
                            explain: Explain, *, n_stages: int = 0, seed: int = 0, model_name: str = "",
                            progress: bool = True) -> tuple[pd.DataFrame, dict[str, dict[int, np.ndarray]]]:
    """Cascading randomisation on a deep copy of ``model``: similarity of each explainer's maps to the original.

    Returns a tidy table (model, explainer, stage, randomised = the deepest block re-initialised,
    blocks, parameter_share = share of the model's parameters re-initialised, image, spearman,
    ssim; stage 0 is the original model) and the maps {explainer: {stage: (N, H, W)}} for figures.
    """
    work = copy.deepcopy(model).eval()
    blocks = cascade_blocks(work, layers, images)
    chosen = stages(len(blocks), n_stages)
    total = sum(p.numel() for p in work.parameters())
    original = explain(work, images, target)
    maps = {name: {0: m} for name, m in original.items()}
    rows = [_rows(original, original, model_name, 0, "none", 0, 0.0)]
    changed = 0
    for stage in tqdm(range(1, len(blocks) + 1), desc=f"cascade {model_name}", disable=not progress):
        label, names = blocks[stage - 1]
        changed += randomise_(work, names, seed + stage)
        if stage in chosen:
            now = explain(work, images, target)
            rows.append(_rows(original, now, model_name, stage, label, stage, changed / total))
            for name, m in now.items():
                maps[name][stage] = m
    return pd.concat(rows, ignore_index=True), maps


def _rows(original: Mapping[str, np.ndarray], now: Mapping[str, np.ndarray], model: str, stage: int, label: str,
          n_blocks: int, share: float) -> pd.DataFrame:
    frames = [similarity(original[name], now[name]).assign(explainer=name) for name in original]
    return pd.concat(frames, ignore_index=True).assign(model=model, stage=stage, randomised=label, blocks=n_blocks,
                                                       parameter_share=share)


# ---------------------------------------------------------------- target randomisation

def impostor_references(references: torch.Tensor, identities: Sequence[str]) -> torch.Tensor:
    """For each image, the reference of the next OTHER person in sorted order (cyclically): (N, D)."""
    identities = list(identities)
    people = sorted(set(identities))
    if len(people) < 2:
        raise ValueError("target randomisation needs images of at least two people")
    first = {p: identities.index(p) for p in people}
    return torch.stack([references[first[people[(people.index(who) + 1) % len(people)]]] for who in identities])


def random_references(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """n seeded random unit vectors (n, dim): an identity nobody has."""
    gen = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=-1)


def target_randomisation(model: nn.Module, images: torch.Tensor, references: torch.Tensor, identities: Sequence[str],
                         explain: Explain, *, seed: int = 0, model_name: str = "",
                         original: Mapping[str, np.ndarray] | None = None
                         ) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Maps against an impostor's reference and a random unit vector vs against the person's own reference.

    ``references`` (N, D) are the images' own (e.g. leave-one-out) references. Returns a tidy table
    (model, explainer, target, image, spearman, ssim) and the maps {explainer: {target: (N, H, W)}}.
    """
    own = dict(original) if original is not None else explain(model, images, CosineTarget(references))
    targets = {"impostor": impostor_references(references, identities),
               "random vector": random_references(len(images), references.shape[1], seed).to(references.dtype)}
    maps = {name: {"own": m} for name, m in own.items()}
    frames = []
    for label, refs in targets.items():
        now = explain(model, images, CosineTarget(refs))
        for name, m in now.items():
            maps[name][label] = m
            frames.append(similarity(own[name], m).assign(explainer=name, target=label))
    return pd.concat(frames, ignore_index=True).assign(model=model_name), maps


# ---------------------------------------------------------------- the study's images for the checks

@dataclass
class CheckInputs:
    """The images a model's checks explain, with what their scores need (from the run's cached embeddings)."""

    paths: list[str]
    identities: list[str]
    images: torch.Tensor  # (N, 3, S, S) float in [0, 255], the model's crops
    crops: np.ndarray  # (N, S, S, 3) uint8, for figures
    references: torch.Tensor  # (N, D) each image's leave-one-out reference among its person's images
    partners: list[torch.Tensor]  # clean embeddings (n_i, D) of each image's genuine partners
    threshold: float  # the model's decision threshold fixed on the run's clean pairs


def check_inputs(cfg: Config, model: FaceModel, st: study.Study, n_images: int) -> CheckInputs:
    """One image (the first by path) of each of ``n_images`` people in a seeded order (at least 2 people)."""
    if n_images < 2:
        raise ValueError(f"the checks need images of at least 2 people (target randomisation), got n_images={n_images}")
    images = st.images.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
    people = sorted(images.identity.unique())
    if len(people) < 2:
        raise ValueError("the checks need at least 2 people")
    order = [people[i] for i in np.random.default_rng(cfg.seed).permutation(len(people))[:n_images]]
    rows = [int(np.flatnonzero((images.identity == who).to_numpy())[0]) for who in sorted(order)]
    chosen = images.iloc[rows].reset_index(drop=True)
    people = sorted(chosen.identity.unique())
    everyone = images[images.identity.isin(people)].reset_index(drop=True)
    crops, keys = study.crops(cfg, everyone.path.tolist(), model.spec.geometry)
    emb = torch.from_numpy(embed.cached_embed(model, crops, keys, cfg.cache_root))
    refs, partners = {}, {}
    for who in people:
        idx = np.flatnonzero((everyone.identity == who).to_numpy())
        for i, ref in zip(idx, reference_embeddings(emb[idx], "leave_one_out")):
            refs[everyone.path[i]] = ref
            partners[everyone.path[i]] = emb[[j for j in idx if j != i]]
    pair_paths = list(dict.fromkeys([*st.pairs.path_a, *st.pairs.path_b]))
    pair_crops, pair_keys = study.crops(cfg, pair_paths, model.spec.geometry)
    pair_emb = dict(zip(pair_paths, embed.cached_embed(model, pair_crops, pair_keys, cfg.cache_root)))
    scores = metrics.cosine_similarity(np.stack([pair_emb[p] for p in st.pairs.path_a]),
                                       np.stack([pair_emb[p] for p in st.pairs.path_b]))
    threshold = metrics.clean_threshold(scores, st.pairs.same.to_numpy(bool), st.pairs.fold.to_numpy())
    where = [everyone.path.tolist().index(p) for p in chosen.path]
    return CheckInputs(chosen.path.tolist(), chosen.identity.tolist(), embed.to_tensor(crops[where], cfg.device),
                       crops[where], torch.stack([refs[p] for p in chosen.path]),
                       [partners[p] for p in chosen.path], threshold)


# ---------------------------------------------------------------- verdicts

#: the first columns of ``sanity_verdicts.csv`` (notebook 09), which every check's rows have; the claims ledger
#: reads them (each check adds its own measures after them)
VERDICT_COLUMNS = ["explainer", "model", "check", "verdict"]


def randomisation_verdicts(cascade: pd.DataFrame, targets: pd.DataFrame,
                           threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per explainer x model x check (model randomisation at the last stage; each target):
    :data:`VERDICT_COLUMNS`, spearman (mean |rho|), ssim (mean), threshold, n_images, rule."""
    rows = []
    last = cascade[cascade.stage == cascade.groupby("model").stage.transform("max")]
    for (model, name), g in last.groupby(["model", "explainer"], sort=True):
        rows.append(_verdict_row(name, model, "model randomisation", g, threshold))
    for (model, name, label), g in targets.groupby(["model", "explainer", "target"], sort=True):
        rows.append(_verdict_row(name, model, f"target randomisation ({label})", g, threshold))
    return pd.DataFrame(rows)


def _verdict_row(explainer: str, model: str, check: str, g: pd.DataFrame, threshold: float) -> dict:
    return {"explainer": explainer, "model": model, "check": check,
            "verdict": verdict(g.spearman, g.ssim, threshold), "spearman": float(g.spearman.abs().mean()),
            "ssim": float(g.ssim.mean()), "threshold": threshold, "n_images": len(g),
            "rule": RULE.format(t=threshold)}
