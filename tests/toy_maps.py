"""Small synthetic MapSets for the region and Bhattacharyya tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from facexai.saliency import MapSet


def mapset(maps: np.ndarray, identities: list[str], model: str = "TOY") -> MapSet:
    """A MapSet of ``maps`` [image, layer, H, W] (stored float16, as the study stores them), one identity per image."""
    images = pd.DataFrame({"identity": identities, "path": [f"/x/{who}_{i}.jpg" for i, who in enumerate(identities)]})
    return MapSet(model, "leam", [f"l{k}" for k in range(maps.shape[1])], images, maps.astype(np.float16))
