"""How much the layers of one model differ: Bhattacharyya coefficients between its layer maps (notebook 03).

The ledger reads the ``first vs last`` column of :data:`LAYER_BC_COLUMNS` (layer_bhattacharyya.csv).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from facexai import metrics
from facexai.person_maps import PersonMaps

FIRST_VS_LAST = "first vs last"  # the column of the BC between the first and the last layer (the ledger's)
#: Columns of :func:`layer_bc_table` (03_leam_layers/layer_bhattacharyya.csv).
LAYER_BC_COLUMNS = ["model", "layers", "adjacent layers (mean BC)", FIRST_VS_LAST, "all pairs (mean BC)",
                    "least similar pair"]
LAYER_BC_NUMERIC = ["layers", "adjacent layers (mean BC)", FIRST_VS_LAST, "all pairs (mean BC)"]


def layer_bc_row(model: str, bc: np.ndarray, layers: list[str]) -> dict:
    """One :data:`LAYER_BC_COLUMNS` row of a layer x layer mean-BC matrix (layers from input to output)."""
    n = len(bc)
    if bc.shape != (n, n) or n != len(layers) or n < 2:
        raise ValueError(f"need a square BC matrix of >= 2 layers matching {len(layers)} names, got {bc.shape}")
    a, b = np.unravel_index(np.argmin(bc), bc.shape)
    return {"model": model, "layers": n,
            "adjacent layers (mean BC)": float(np.mean([bc[i, i + 1] for i in range(n - 1)])),
            FIRST_VS_LAST: float(bc[0, -1]),
            "all pairs (mean BC)": float(bc[np.triu_indices(n, 1)].mean()),
            "least similar pair": f"{layers[a]} vs {layers[b]}"}


def layer_bc_table(person_maps: Mapping[str, PersonMaps]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per model: the mean BC between the person maps of every two layers (averaged over individuals),
    summarised as a :data:`LAYER_BC_COLUMNS` row; also the matrices {model: (L, L)}."""
    matrices = {name: metrics.layer_bhattacharyya(pm.maps) for name, pm in person_maps.items()}
    rows = [layer_bc_row(name, bc, person_maps[name].layers) for name, bc in matrices.items()]
    return pd.DataFrame(rows, columns=LAYER_BC_COLUMNS), matrices
