"""Occlusion measures under every declared definition (notebook 10's accuracy and cosine-drop arms).

On top of the occlusion protocol (:mod:`facexai.occlusion_protocol`: per-person split, held-out
probes; :mod:`facexai.person_maps`: person maps of the generation images; :mod:`facexai.occlusion_runner`:
map warps, random pixels, fills and cached occluded embeddings) this module varies what the works
leave open: held-out vs in-sample probes (:func:`chosen_probes`), the operating point
(:mod:`facexai.thresholds`), the occluded side (probe only, or both images of a genuine pair), the
measure (genuine acceptance, balanced accuracy, rank-1 identification against every identity's
gallery mean), q, the CAM layer, white-box vs cross-model maps, raw vs
gap-normalised drops, and the control the critical pixels are compared with (:mod:`facexai.controls`).
Each measurement becomes a :class:`facexai.protocol.Cell` of per-unit values.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from facexai import controls, embed, passes, regions, study, thresholds
from facexai import occlusion_runner as runner
from facexai.occlusion_protocol import Protocol, hash_int
from facexai.person_maps import MIN_GENERATION_IMAGES, generation_maps, mapped_people
from facexai.explain.topk import critical_mask, critical_masks
from facexai.models.registry import FaceModel
from facexai.profiles import Config
from facexai.protocol import Cell, Grid, cell, definition

log = logging.getLogger(__name__)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass
class Probes:
    """A protocol's occluded (held-out) images in one model's crops, with the clean data their measures need."""

    model: str
    geometry: str
    identities: list[str]
    paths: list[str]
    crops: np.ndarray
    keys: list[str]
    clean: np.ndarray  # (N, D) unit clean embeddings of the probes
    reference: np.ndarray  # (N, D) unit: the probe's person's generation mean (the drop's reference)
    gallery: np.ndarray  # (P, D) unit generation means of every person
    label: np.ndarray  # (N,) row of the probe's own person in the gallery
    genuine: list[tuple[int, str]]  # (probe row, partner path) of genuine pairs
    impostor: list[tuple[int, str]]
    partners: dict[str, np.ndarray]  # unit clean embedding of every partner
    gap: float  # clean mean genuine cosine minus mean impostor cosine over every pair of the run's images
    points: dict[str, thresholds.OperatingPoint] = field(default_factory=dict)
    forward_passes: int = 0


def chosen_probes(protocol: Protocol, per_person: int = 0, seed: int = 0) -> dict[str, list[str]]:
    """The occluded images of ``protocol`` (held-out, or in-sample the generation images) that become
    probes: per person ``per_person`` of them drawn from (seed, person) (0: all), in the protocol's order.
    Only people with a person map (:func:`facexai.person_maps.mapped_people`) have probes; the others are
    counted in a warning, as notebook 06 leaves them out."""
    if per_person < 0:
        raise ValueError(f"per_person must be >= 0, got {per_person}")
    mapped = set(mapped_people(protocol))
    left_out = sorted(set(protocol.occluded) - mapped)
    if left_out:
        log.warning("%d of %d people have fewer than %d generation images, so no person map: their images are "
                    "not probes (e.g. %s)", len(left_out), len(protocol.occluded), MIN_GENERATION_IMAGES,
                    left_out[0])
    out = {}
    for person, paths in sorted(protocol.occluded.items()):
        if person not in mapped:
            continue
        paths = list(paths)
        if per_person and len(paths) > per_person:
            rng = np.random.default_rng(hash_int(seed, "probes", person))
            paths = [paths[i] for i in sorted(rng.choice(len(paths), per_person, replace=False))]
        out[person] = paths
    return out


def probes(cfg: Config, model: FaceModel, protocol: Protocol, rules: Sequence[str], per_person: int = 0) -> Probes:
    """The probes of ``protocol`` on ``model`` (:func:`chosen_probes`, seeded by cfg.seed) with the operating
    points ``rules`` fit on clean scores (every pair of the run's images: the same for either sample)."""
    raw = runner.clean_embeddings(cfg, model, protocol)
    chosen = chosen_probes(protocol, per_person, cfg.seed)
    people = sorted(chosen)
    identities = [p for p in people for _ in chosen[p]]
    paths = [path for p in people for path in chosen[p]]
    crops, keys = study.crops(cfg, paths, model.spec.geometry)
    gallery_ids = sorted(protocol.generation)
    gallery = _unit(np.stack([np.mean([raw[g] for g in protocol.generation[p]], axis=0) for p in gallery_ids]))
    label = np.array([gallery_ids.index(p) for p in identities])
    row = {p: i for i, p in enumerate(paths)}
    pairs = protocol.pairs[protocol.pairs.path.isin(row)]
    genuine = [(row[r.path], r.partner) for r in pairs[pairs.same].itertuples()]
    impostor = [(row[r.path], r.partner) for r in pairs[~pairs.same].itertuples()]
    images = protocol.images
    all_gen, all_imp = thresholds.all_pair_scores(np.stack([raw[p] for p in images.path]), images.identity.to_numpy())
    sp = protocol.study_pairs
    study_scores = np.sum(_unit(np.stack([raw[p] for p in sp.path_a])) * _unit(np.stack([raw[p] for p in sp.path_b])),
                          axis=1)
    points = thresholds.operating_points(list(rules), study_scores, sp.same.to_numpy(bool), sp.fold.to_numpy(),
                                         all_gen, all_imp)
    return Probes(model.spec.name, model.spec.geometry, identities, paths, crops, keys,
                  _unit(np.stack([raw[p] for p in paths])), gallery[label], gallery, label, genuine, impostor,
                  {p: _unit(raw[p]) for p in pairs.partner}, float(all_gen.mean() - all_imp.mean()), points)


def occluded_embeddings(cfg: Config, model: FaceModel, crops: np.ndarray, keys: list[str], masks: np.ndarray,
                        fill: str) -> tuple[np.ndarray, int]:
    """Unit embeddings of the crops with ``masks`` filled (cached per crop, fill and mask) and the forwards run."""
    with passes.counting(model.spec.name) as forwarded:
        occluded, okeys = runner.occlude(crops, masks, fill, keys, cfg.seed)
        emb = embed.cached_embed(model, occluded, okeys, cfg.cache_root)
    return _unit(emb), forwarded.images


def control_masks(control: str, critical: np.ndarray, keys: Sequence[str], seed: int,
                  face: np.ndarray | None = None) -> np.ndarray:
    """Masks of a control with the critical masks' pixel count: ``uniform`` (the study's random pixels),
    ``face`` (random pixels in the face region ``face``), ``shifted``, ``components`` (:mod:`facexai.controls`)."""
    size = critical.shape[-1]
    k = int(critical[0].sum())
    if control == "uniform":
        return runner.random_masks(keys, size, k, seed)
    if control == "face":
        if face is None:
            raise ValueError("the face control needs the face regions")
        return controls.region_random_masks(face, k, seed)
    if control == "shifted":
        return controls.shifted_masks(critical, seed)
    if control == "components":
        return controls.component_masks(critical, seed)
    raise ValueError(f"unknown control {control!r}; valid: uniform, face, shifted, components")


def face_regions(cfg: Config, paths: Sequence[str], geometry: str) -> tuple[np.ndarray, int]:
    """Face regions of the crops (any parsed face class, :func:`controls.face_regions`) and the fallback count."""
    labels, ok = regions.label_maps(cfg, list(paths), geometry)
    return controls.face_regions(labels, ok)


# ---------------------------------------------------------------- measures of one occlusion

def measure_cells(claim: str, pr: Probes, emb: np.ndarray, base: dict, grid: Grid,
                  partner_emb: Mapping[str, np.ndarray] | None = None) -> list[Cell]:
    """Cells of every measure x operating point of one occlusion (probe embeddings ``emb``).

    With ``partner_emb`` (occluded partners) only the both-sides genuine acceptance is measured, over
    the genuine pairs whose partner is among them.
    """
    side = "both" if partner_emb is not None else "probe"
    partners = partner_emb if partner_emb is not None else pr.partners
    gen = np.array([emb[i] @ partners[p] for i, p in pr.genuine if p in partners])
    imp = np.array([emb[i] @ pr.partners[p] for i, p in pr.impostor])
    out = []
    for measure in grid.measures:
        if side == "both" and measure != "genuine_acceptance":
            continue
        if measure == "rank1":
            hits = (emb @ pr.gallery.T).argmax(1) == pr.label
            out.append(cell(claim, definition(**base, side=side, measure=measure, operating_point="none"),
                            pr.model, (1.0, hits)))
            continue
        for name, point in pr.points.items():
            d = definition(**base, side=side, measure=measure, operating_point=name)
            if measure == "genuine_acceptance":
                out.append(cell(claim, d, pr.model, (1.0, gen >= point.threshold)))
            elif measure == "balanced_accuracy":
                out.append(cell(claim, d, pr.model, (0.5, gen >= point.threshold), (0.5, imp < point.threshold)))
            else:
                raise ValueError(f"unknown measure {measure!r}; valid: genuine_acceptance, balanced_accuracy, rank1")
    return out


def both_sides_partners(pr: Probes, per_probe: int = 0) -> list[str]:
    """The genuine partners occluded in the both-sides arm: the first ``per_probe`` of each probe (path
    order; 0: all), sorted."""
    chosen: dict[int, list[str]] = {}
    for i, p in sorted(pr.genuine, key=lambda g: (g[0], g[1])):
        if not per_probe or len(chosen.setdefault(i, [])) < per_probe:
            chosen.setdefault(i, []).append(p)
    return sorted({p for paths in chosen.values() for p in paths})


def accuracy_cells(cfg: Config, model: FaceModel, protocol: Protocol, pr: Probes, grid: Grid,
                   claim: str) -> tuple[list[Cell], list[Cell]]:
    """The accuracy arm on one model: (claim cells of the critical pixels, control cells ``claim|control``).

    Grad-CAM-family person maps of the generation images at each layer of ``grid.accuracy_layers``;
    for every q the critical pixels of the probes; at ``control_qs`` every control; at ``both_sides_qs``
    the genuine partners (:func:`both_sides_partners`) occluded too (critical and uniform pixels).
    The definitions' ``sample`` is the protocol's: ``in_sample`` when the probes are generation images
    (their own maps are in their person map), else ``held_out``.
    """
    sample = "in_sample" if protocol.in_sample else "held_out"
    if protocol.in_sample and not set(pr.paths) <= set(protocol.generation_paths):
        raise ValueError(f"{pr.model}: in-sample probes must be generation images")
    if not protocol.in_sample and set(pr.paths) & set(protocol.generation_paths):
        raise ValueError(f"{pr.model}: held-out probes must not be generation images")
    claim_cells, control_cells = [], []
    face = face_regions(cfg, pr.paths, pr.geometry)[0] if "face" in grid.controls else None
    names = list(model.layers)
    owner = {p: pr.identities[i] for i, p in pr.genuine}  # a genuine partner is its probe's person
    partner_paths = both_sides_partners(pr, grid.both_sides_partners)
    partner_ids = [owner[p] for p in partner_paths]
    layers = list(dict.fromkeys(names[i] for i in grid.accuracy_layers))
    every = generation_maps(cfg, model, protocol, grid.accuracy_explainer, layers=layers)  # one pass, all layers
    missing = sorted(set(pr.identities) - set(every.identities))
    if missing:
        raise ValueError(f"{pr.model}: {len(missing)} probes' people have no person map, e.g. {missing[0]}")
    pcrops, pkeys = study.crops(cfg, partner_paths, pr.geometry)
    for layer in grid.accuracy_layers:
        person = every.layer(names[layer])
        maps = runner.eval_maps(cfg, person, pr.identities, pr.paths, pr.geometry)
        pmaps = runner.eval_maps(cfg, person, partner_ids, partner_paths, pr.geometry)
        pcritical = dict(zip(grid.both_sides_qs, critical_masks(pmaps, grid.both_sides_qs)))
        for q, critical in zip(grid.accuracy_qs, critical_masks(maps, grid.accuracy_qs)):  # every q from one sort
            base = dict(explainer=grid.accuracy_explainer, layer=layer, q=q, fill=grid.fill, sample=sample)
            selections = {"critical": critical}
            if q in grid.control_qs:
                selections |= {c: control_masks(c, critical, pr.keys, runner.mask_seed(cfg, 0), face)
                               for c in grid.controls}
            for selection, masks in selections.items():
                emb, n = occluded_embeddings(cfg, model, pr.crops, pr.keys, masks, grid.fill)
                pr.forward_passes += n
                name = claim if selection == "critical" else f"{claim}|{selection}"
                (claim_cells if selection == "critical" else control_cells).extend(
                    measure_cells(name, pr, emb, base, grid))
                if "both" in grid.occluded_sides and q in grid.both_sides_qs and selection in ("critical", "uniform"):
                    pmasks = pcritical[q] if selection == "critical" else \
                        control_masks("uniform", pcritical[q], pkeys, runner.mask_seed(cfg, 1))
                    pemb, n = occluded_embeddings(cfg, model, pcrops, pkeys, pmasks, grid.fill)
                    pr.forward_passes += n
                    (claim_cells if selection == "critical" else control_cells).extend(
                        measure_cells(name, pr, emb, base, grid, dict(zip(partner_paths, pemb))))
    return claim_cells, control_cells


def drop_cells(cfg: Config, models: Mapping[str, FaceModel], protocol: Protocol,
               probes_of: Mapping[str, Probes], grid: Grid) -> tuple[list[Cell], list[Cell]]:
    """The cosine-drop arm at every q of ``control_qs``: white-box and cross-model critical pixels (claim
    ``drop_map``; cross-model = mean over the other models' maps, warped), the uniform random pixels
    (``drop_random``), raw and gap-normalised (claims ``*_gap_normalised``: no published counterpart, the
    works' gaps are not stated); the white-box raw controls as ``drop_map|<control>``."""
    person = {name: generation_maps(cfg, m, protocol, grid.drop_explainer) for name, m in models.items()}
    claim_cells, control_cells = [], []
    for name, model in models.items():
        pr = probes_of[name]
        face = face_regions(cfg, pr.paths, pr.geometry)[0] if "face" in grid.controls else None
        clean_cos = np.sum(pr.clean * pr.reference, 1)
        for q in grid.control_qs:
            maps = runner.eval_maps(cfg, person[name], pr.identities, pr.paths, pr.geometry)
            critical = critical_mask(maps, q)
            drops = {}
            for selection in ("critical", *grid.controls):
                masks = critical if selection == "critical" else \
                    control_masks(selection, critical, pr.keys, runner.mask_seed(cfg, 0), face)
                emb, n = occluded_embeddings(cfg, model, pr.crops, pr.keys, masks, grid.fill)
                pr.forward_passes += n
                drops[selection] = clean_cos - np.sum(emb * pr.reference, 1)
            cross = []
            if "cross_model" in grid.drop_settings:
                for gen_name in models:
                    if gen_name == name:
                        continue
                    warped = runner.eval_maps(cfg, person[gen_name], pr.identities, pr.paths, pr.geometry)
                    emb, n = occluded_embeddings(cfg, model, pr.crops, pr.keys, critical_mask(warped, q), grid.fill)
                    pr.forward_passes += n
                    cross.append(clean_cos - np.sum(emb * pr.reference, 1))
            for scale in grid.drop_scales:
                div = pr.gap if scale == "gap_normalised" else 1.0
                suffix = "" if scale == "raw" else f"_{scale}"  # a normalised drop has no published counterpart
                for setting in grid.drop_settings:
                    if setting == "cross_model" and not cross:
                        continue
                    d = definition(explainer=grid.drop_explainer, q=q, fill=grid.fill, setting=setting, scale=scale)
                    crit = [(1.0, drops["critical"] / div)] if setting == "white_box" else \
                        [(1.0 / len(cross), c / div) for c in cross]
                    claim_cells.append(cell(f"drop_map{suffix}", d, name, *crit))
                    if "uniform" in drops:
                        claim_cells.append(cell(f"drop_random{suffix}", d, name, (1.0, drops["uniform"] / div)))
                    if setting == "white_box" and scale == "raw":  # beating a control does not depend on the scale
                        control_cells.extend(cell(f"drop_map|{c}", d, name, (1.0, drops[c])) for c in grid.controls)
    return claim_cells, control_cells
