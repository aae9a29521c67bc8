"""The study's explanation techniques in one registry: name, label, family, layers, settings.

A technique belongs to a family that says how its maps are computed:

- ``cam``: gradient-weighted activation maps (:mod:`facexai.explain.cam`), all requested layers
  from one forward and one backward pass per batch; settings :class:`CamSettings`.
- ``rise``: maps of the input from masked forward passes (:mod:`facexai.explain.rise`); every
  RISE technique of the registry is computed from the same masks and scores at once (one plane
  each) and cached together; settings :class:`RiseSettings`.

Its layer policy says which layers it explains when none are named: ``all`` named layers (LEAM,
whose overall map is their mean), ``one`` layer (the Grad-CAM family: the method table's
``cam_layer``, the second-to-last by default), or the ``input`` (RISE).

Adding an explainer: write its class in its own file (a :class:`facexai.explain.BaseCAM` subclass
that says how it weights the gradients, or a RISE statistic) and add one :class:`Technique` to
:data:`TECHNIQUES`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from facexai import profiles
from facexai.explain import LEAM, SRISE, CorrRISE, GradCAM, GradCAMPlusPlus, LayerCAM
from facexai.profiles import Method

INPUT_LAYER = "input"  # the one "layer" of a map of the input (RISE)
RISE_CELL = 16  # RISE grid cell size, px, unless a run sets another (notebook 08 sweeps it)


@dataclass(frozen=True, kw_only=True)
class TargetSettings:
    """What a map explains: the score of each image's embedding (see :mod:`facexai.explain.targets`)."""

    target: str  # cosine to the reference | arcface (minus the ArcFace loss against a gallery)
    reference: str  # the person's reference embedding: leave_one_out | all | pair
    margin: float  # ArcFace margin (target "arcface")
    batch_size: int = 16  # images per forward pass (RISE: masked copies per forward pass)


@dataclass(frozen=True, kw_only=True)
class CamSettings(TargetSettings):
    """Settings of the CAM family."""

    weighting: str  # LEAM's gradient weighting: elementwise | gradcam | gradcam++
    antialias: bool  # low-pass each layer's map at its own grid before upsampling
    cam_layer: int  # the layer of one-layer techniques: index into the model's named layers


@dataclass(frozen=True, kw_only=True)
class RiseSettings(TargetSettings):
    """Settings of the RISE family (Petsiuk et al. 2018 masks)."""

    n_masks: int | None = None  # masks per image; None: the profile's rise_masks
    cell_size: int = RISE_CELL  # grid cell size, px
    p: float = 0.5  # probability a cell is kept
    fill: float = 0.0  # value of removed pixels (black)


SETTINGS = {"cam": CamSettings, "rise": RiseSettings}


def default_settings(family_name: str, method: Method | None = None) -> CamSettings | RiseSettings:
    """A family's settings as the method table defines them (:func:`facexai.profiles.method`, or ``method``):
    the target for both families, the weighting, antialiasing and CAM layer for the CAM family."""
    method = method or profiles.method()
    common = dict(target=method.target, reference=method.reference, margin=method.margin)
    if family_name == "cam":
        return CamSettings(**common, weighting=method.weighting, antialias=method.antialias, cam_layer=method.cam_layer)
    return RiseSettings(**common)


@dataclass(frozen=True)
class Technique:
    """One explainer of the registry."""

    name: str  # the key used everywhere (tables, notebook parameters, cache)
    label: str  # how figures and tables name it
    family: Literal["cam", "rise"]
    explainer: type  # the class that computes its maps (RISE: whose one statistic is its plane)
    layers: Literal["all", "one", "input"]  # layer policy when no layers are named
    options: tuple[str, ...] = ()  # settings fields passed to the explainer's constructor
    tuned: bool = False  # layer and loss swept by the second work (notebook 08's sweeps)

    def settings(self, base: TargetSettings | None = None, **overrides) -> CamSettings | RiseSettings:
        """This family's settings: ``base`` (default: :func:`default_settings`) with ``overrides`` applied."""
        kind = SETTINGS[self.family]
        if base is not None and not isinstance(base, kind):
            raise TypeError(f"{self.name} takes {kind.__name__}, got {type(base).__name__}")
        valid = {f.name for f in fields(kind)}
        unknown = set(overrides) - valid
        if unknown:
            raise ValueError(f"{self.name} ({self.family} family) has no setting(s) {sorted(unknown)}; "
                             f"valid: {sorted(valid)}")
        return replace(base or default_settings(self.family), **overrides)

    def default_layers(self, layer_names: list[str], cam_layer: int = -2) -> list[str]:
        """The layers explained when none are named: all, the one at index ``cam_layer``, or the input."""
        if self.layers == "input":
            return [INPUT_LAYER]
        if not layer_names:
            raise ValueError(f"{self.name} needs a model with named layers")
        return list(layer_names) if self.layers == "all" else [list(layer_names)[cam_layer]]

    def layers_for(self, layer_names: list[str], layers: list[str] | None = None, cam_layer: int = -2) -> list[str]:
        """``layers`` if given (checked against the policy), else :meth:`default_layers`."""
        if self.layers == "input":
            if layers and list(layers) != [INPUT_LAYER]:
                raise ValueError(f"{self.name} explains the input: layers must be None or [{INPUT_LAYER!r}], "
                                 f"got {layers}")
            return [INPUT_LAYER]
        return list(layers) if layers else self.default_layers(layer_names, cam_layer)


#: Every technique of the study, in the order tables list them.
TECHNIQUES: dict[str, Technique] = {t.name: t for t in (
    Technique("leam", "LEAM", "cam", LEAM, "all", options=("weighting", "antialias")),
    Technique("gradcam", "Grad-CAM", "cam", GradCAM, "one", options=("antialias",), tuned=True),
    Technique("gradcam++", "Grad-CAM++", "cam", GradCAMPlusPlus, "one", options=("antialias",), tuned=True),
    Technique("layercam", "LayerCAM", "cam", LayerCAM, "one", options=("antialias",), tuned=True),
    Technique("srise", "S-RISE", "rise", SRISE, "input"),
    Technique("corrrise", "CorrRISE", "rise", CorrRISE, "input"),
)}


def get(name: str) -> Technique:
    """The registered technique ``name``; ValueError listing the valid ones."""
    if name not in TECHNIQUES:
        raise ValueError(f"unknown explainer {name!r}; valid: {list(TECHNIQUES)}")
    return TECHNIQUES[name]


def family(name: str) -> list[Technique]:
    """The registered techniques of family ``name`` (``"cam"`` or ``"rise"``), in registry order."""
    return [t for t in TECHNIQUES.values() if t.family == name]


def names(family_name: str | None = None, tuned: bool | None = None) -> list[str]:
    """Names of the registered techniques, optionally of one family or only the (un)tuned ones."""
    return [t.name for t in TECHNIQUES.values()
            if (family_name is None or t.family == family_name) and (tuned is None or t.tuned == tuned)]
