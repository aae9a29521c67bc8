"""The two works' published numbers and statements: the only place they are typed.

Every notebook and the claims ledger compare against these; tests check they are read from here.
Numbers are fractions, not percent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: The two works, as cited in the ledger.
WORKS = {
    "LEAM": "P. J. Borsukiewicz, J. Samhi, J. Klein, T. F. Bissyandé, \"Explainable AI for Analyzing "
            "Person-Specific Patterns in Facial Recognition Tasks\", arXiv:2509.17457 (2025) (LEAM)",
    "XAI-gen": "the companion work on the generalizability and transferability of XAI techniques for face "
               "recognition (Grad-CAM, Grad-CAM++, LayerCAM, S-RISE, CorrRISE on LFW, CALFW, CPLFW); "
               "its findings as quoted in the project's issue 6",
}


@dataclass(frozen=True)
class Published:
    """A claim as the work states it: source, wording and its numbers (fractions, not percent)."""

    work: str  # key of WORKS
    where: str
    text: str
    values: dict[str, float] = field(default_factory=dict)


#: Every published number the ledger compares against, in one place.
PUBLISHED: dict[str, Published] = {
    "bc_same_vs_different": Published(
        "LEAM", "abstract", "overall maps: BC same person 0.32-0.57 vs different people 0.04-0.13 (9 models)",
        {"same_lo": 0.32, "same_hi": 0.57, "diff_lo": 0.04, "diff_hi": 0.13}),
    "nose_share": Published(
        "LEAM", "abstract", "nose = 18.9-29.7% of the critical (top 1%) pixels across 9 models",
        {"lo": 0.189, "hi": 0.297}),
    "attention_spread": Published(
        "LEAM", "abstract", "attention still distributed across multiple facial fragments"),
    "layers_differ": Published(
        "LEAM", "abstract", "different layers of a model vary significantly in their focus areas"),
    "models_agree": Published(
        "LEAM", "abstract", "models prioritize similar facial regions across architectures (overall maps)"),
    "occlusion_drop": Published(
        "LEAM", "abstract", "occluding the 1% LEAM pixels lowers cosine by 0.1148 vs 0.0286 for 1% random pixels",
        {"map": 0.1148, "random": 0.0286}),
    "transfer": Published(
        "LEAM", "abstract", "the 1% LEAM pixels are transferable across models"),
    "female_more_affected": Published(
        "LEAM", "abstract", "occlusions are more effective for female images"),
    "gradcampp_only_generalizes": Published(
        "XAI-gen", "issue 6", "Grad-CAM++ is the only technique whose regions generalize"),
    "negligible_impact": Published(
        "XAI-gen", "issue 6", "LayerCAM, S-RISE and CorrRISE mostly pick areas of negligible impact"),
    "fill_minor": Published(
        "XAI-gen", "issue 6", "the occlusion type (fill) has a minor impact"),
    "layer_second_to_last": Published(
        "XAI-gen", "issue 6", "the second-to-last layer is best for Grad-CAM and Grad-CAM++"),
    "loss_cosine_layercam": Published(
        "XAI-gen", "issue 6", "the cosine loss is best for LayerCAM"),
    "loss_margin_gradcam": Published(
        "XAI-gen", "issue 6", "ArcFace margin 0.2-0.3 is best for Grad-CAM and Grad-CAM++", {"lo": 0.2, "hi": 0.3}),
}
