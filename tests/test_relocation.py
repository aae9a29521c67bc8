"""Results do not depend on where the repository or the data set sits: seeds and keys derived from a
file use its path relative to the data root or its content digest, never the absolute path."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from facexai import occlusion_protocol


def _images(root: Path) -> pd.DataFrame:
    rows = [(f"Person_{p}", str(root / f"Person_{p}" / f"Person_{p}_{i:04d}.jpg")) for p in "ABCDEF" for i in (1, 2, 3)]
    return pd.DataFrame(rows, columns=["identity", "path"])


def _relative(pairs: pd.DataFrame, root: Path) -> pd.DataFrame:
    return pairs.assign(path=[Path(p).relative_to(root).as_posix() for p in pairs.path],
                        partner=[Path(p).relative_to(root).as_posix() for p in pairs.partner])


def test_built_pairs_are_the_same_from_two_folders(tmp_path: Path) -> None:
    here, there = tmp_path / "clone" / "data" / "lfw_sample", tmp_path / "elsewhere" / "deeper" / "x" / "lfw_sample"
    made = []
    for root in (here, there):
        images = _images(root)
        occluded = {person: paths[:1] for person, paths in images.groupby("identity").path.apply(list).items()}
        pairs = occlusion_protocol._built_pairs(images, occluded, n_impostors=3, seed=0)
        assert (~pairs.same).sum() == 6 * 3
        made.append(_relative(pairs, root))
    pd.testing.assert_frame_equal(made[0], made[1])
