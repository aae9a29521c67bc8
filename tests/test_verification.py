"""Pair scoring and the k-fold accuracy table of notebook 01, against hand-checked cases."""
from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from facexai import verification
from facexai.profiles import REPO_ROOT


def test_pair_scores_pair_each_row_with_its_own_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each image is embedded once; a pair's score is the cosine of ITS two images' embeddings."""
    vectors = {"/d/a1.jpg": [1.0, 0.0], "/d/a2.jpg": [2.0, 0.0], "/d/b1.jpg": [0.0, 3.0], "/d/c1.jpg": [-1.0, 0.0]}
    seen = {}

    def crops(cfg, paths, geometry):
        seen["paths"], seen["geometry"] = list(paths), geometry
        return np.zeros((len(paths), 4, 4, 3), np.uint8), [f"k:{p}" for p in paths]

    def cached_embed(model, crops, keys, cache_root):
        return np.array([vectors[k.removeprefix("k:")] for k in keys])

    monkeypatch.setattr(verification.study, "crops", crops)
    monkeypatch.setattr(verification.embed, "cached_embed", cached_embed)
    pairs = pd.DataFrame({"path_a": ["/d/a1.jpg", "/d/a1.jpg", "/d/c1.jpg"],
                          "path_b": ["/d/a2.jpg", "/d/b1.jpg", "/d/a2.jpg"]})
    model = SimpleNamespace(spec=SimpleNamespace(geometry="arcface112"))
    scores = verification.pair_scores(SimpleNamespace(cache_root=None), model, pairs)
    np.testing.assert_allclose(scores, [1.0, 0.0, -1.0], atol=1e-12)
    assert sorted(seen["paths"]) == sorted(vectors) and len(seen["paths"]) == 4 and seen["geometry"] == "arcface112"


def _pairs() -> pd.DataFrame:
    """The hand case of tests/test_metrics.py::test_kfold_uses_other_folds_only: fold accuracies 1, 1, 0.5."""
    return pd.DataFrame({"same": [True, False, True, False, True, False], "fold": [0, 0, 1, 1, 2, 2]})


def test_accuracy_table_hand_case() -> None:
    scores = {"M": np.array([0.9, 0.2, 0.7, 0.6, 0.75, 0.65]), "NOPUB": np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])}
    table = verification.accuracy_table(scores, _pairs(), {"M": 0.9, "NOPUB": None}, "built from seed 0")
    assert tuple(table.columns) == verification.LFW_ACCURACY_COLUMNS
    m = table.set_index("model").loc["M"]
    assert m.accuracy == pytest.approx(2.5 / 3) and m["std"] == pytest.approx(np.std([1.0, 1.0, 0.5]))
    assert m["gap (points)"] == pytest.approx(100 * (2.5 / 3 - 0.9))
    assert (m.pairs, m.folds, m["pairs source"]) == (6, 3, "built from seed 0")
    free = table.set_index("model").loc["NOPUB"]
    assert free.accuracy == 1.0 and np.isnan(free.published) and np.isnan(free["gap (points)"])
    assert set(verification.LFW_ACCURACY_NUMERIC) <= set(table.select_dtypes("number").columns)
    with pytest.raises(ValueError, match="5 scores for 6 pairs"):
        verification.accuracy_table({"M": np.ones(5)}, _pairs(), {"M": 0.9}, "x")


def test_pairs_source_has_no_machine_path(tmp_path: Path) -> None:
    root = tmp_path / "lfw"
    (root / "lists").mkdir(parents=True)
    pairs = root / "lists" / "pairs.txt"
    pairs.write_text("10\t300\n")
    digest = hashlib.sha256(pairs.read_bytes()).hexdigest()[:16]
    assert verification.pairs_source_label(str(pairs), root) == f"lists/pairs.txt (sha256 {digest})"
    assert verification.pairs_source_label(str(pairs), tmp_path / "elsewhere") == f"pairs.txt (sha256 {digest})"
    inside_repo = REPO_ROOT / "pyproject.toml"
    assert verification.pairs_source_label(str(inside_repo), tmp_path).startswith("pyproject.toml (sha256 ")
    assert verification.pairs_source_label("built from seed 3", root) == "built from seed 3"
    assert str(tmp_path) not in verification.pairs_source_label(str(pairs), tmp_path / "elsewhere")


def test_score_table_labels_genuine_and_impostor_pairs() -> None:
    table = verification.score_table({"M": np.array([0.9, 0.2])}, pd.DataFrame({"same": [True, False]}))
    assert table.pair.tolist() == ["genuine", "impostor"] and table.cosine.tolist() == [0.9, 0.2]


def test_accuracy_intervals_are_wilson_intervals_over_pairs() -> None:
    """300 of 300 pairs right: the Wilson interval is [300 / (300 + 1.96^2), 1], not the empty interval of
    perfect folds; 0.9 of 600: the textbook Wilson bounds."""
    table = pd.DataFrame({"model": ["A", "B"], "accuracy": [1.0, 0.9], "std": [0.0, 0.02], "published": [0.99, np.nan],
                          "pairs": [300, 600], "folds": [10, 10]})
    rows = verification.accuracy_intervals(table)
    z2 = 1.959964 ** 2
    assert rows.loc[0, "lo"] == pytest.approx(300 / (300 + z2), abs=1e-6) and rows.loc[0, "hi"] == 1.0
    centre, half = (0.9 + z2 / 1200) / (1 + z2 / 600), 1.959964 * np.sqrt(0.09 / 600 + z2 / 4 / 600**2) / (1 + z2 / 600)
    assert (rows.loc[1, "lo"], rows.loc[1, "hi"]) == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert rows.loc[0, "published_lo"] == rows.loc[0, "published_hi"] == 0.99
    assert set(rows.columns) >= {"label", "unit", "estimate", "lo", "hi", "published_lo", "published_hi"}
