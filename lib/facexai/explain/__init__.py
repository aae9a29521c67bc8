"""Explainers of face verification: LEAM and the Grad-CAM family, S-RISE and CorrRISE.

All take a model mapping RGB [0, 255] images (N, 3, H, W) to raw embeddings (N, D) and a target
scoring each embedding (see :mod:`facexai.explain.targets`).
"""
from facexai.explain.base import antialias_map, check_images, normalise_maps, resolve_layers, upsample_maps
from facexai.explain.cam import (
    LEAM,
    WEIGHTINGS,
    BaseCAM,
    GradCAM,
    GradCAMPlusPlus,
    LayerCAM,
)
from facexai.explain.rise import SRISE, CorrRISE, PearsonAccumulator, RiseMasks
from facexai.explain.targets import (
    ArcFaceTarget,
    CosineTarget,
    Target,
    person_target,
    reference_embeddings,
)
from facexai.explain.topk import critical_mask

__all__ = [
    "LEAM", "BaseCAM", "GradCAM", "GradCAMPlusPlus", "LayerCAM", "WEIGHTINGS",
    "SRISE", "CorrRISE", "RiseMasks", "PearsonAccumulator",
    "Target", "CosineTarget", "ArcFaceTarget", "reference_embeddings", "person_target",
    "critical_mask", "check_images", "normalise_maps", "resolve_layers", "antialias_map", "upsample_maps",
]
