"""Notebook 03's layer-BC table on constructed person maps whose Bhattacharyya coefficients are known."""
import numpy as np
import pandas as pd
import pytest

from facexai import layer_similarity
from facexai.person_maps import PersonMaps


def _maps(layers: list[np.ndarray], people: int = 2) -> PersonMaps:
    stack = np.stack([np.stack(layers)] * people).astype(np.float32)
    return PersonMaps("M", "arcface112", "leam", [f"l{i}" for i in range(len(layers))],
                      [f"p{i}" for i in range(people)], {}, stack / stack.sum((-2, -1), keepdims=True))


def test_first_vs_last_adjacent_and_least_similar():
    a = np.zeros((2, 2)); a[0, 0] = 1  # all mass top-left
    b = np.zeros((2, 2)); b[0, 0] = b[0, 1] = 0.5  # half of it there: BC(a, b) = sqrt(0.5)
    c = np.zeros((2, 2)); c[1, 1] = 1  # disjoint from a and b: BC 0
    table, bc = layer_similarity.layer_bc_table({"M": _maps([a, b, c])})
    assert list(table.columns) == layer_similarity.LAYER_BC_COLUMNS
    row = table.iloc[0]
    assert row["first vs last"] == pytest.approx(0.0) and row["layers"] == 3
    assert row["adjacent layers (mean BC)"] == pytest.approx(np.sqrt(0.5) / 2)  # (sqrt(.5) + 0) / 2
    assert row["all pairs (mean BC)"] == pytest.approx(np.sqrt(0.5) / 3)
    assert row["least similar pair"] == "l0 vs l2"
    np.testing.assert_allclose(np.diag(bc["M"]), 1.0, rtol=1e-6)
    same, _ = layer_similarity.layer_bc_table({"N": _maps([a, a])})
    assert same.iloc[0]["first vs last"] == pytest.approx(1.0)  # identical layers: the other end of the scale
    assert pd.api.types.is_numeric_dtype(table[layer_similarity.LAYER_BC_NUMERIC].stack())


def test_one_layer_has_no_comparison():
    with pytest.raises(ValueError, match=">= 2 layers"):
        layer_similarity.layer_bc_row("M", np.ones((1, 1)), ["l0"])
