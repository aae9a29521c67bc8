"""facexai.feasibility: each notebook's needs, one clear message naming the setting to change."""
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from conftest import NOTEBOOKS
from facexai import data, feasibility, profiles
from facexai.feasibility import NotEnoughData

SMOKE = profiles.resolve("smoke", run_name="own-faces", n_identities=6, min_images=2)


def images(**counts: int) -> pd.DataFrame:
    """Selected images: ``name=n`` gives n images of that person."""
    return pd.DataFrame([(who, f"{who}/{i}.jpg") for who, n in counts.items() for i in range(n)],
                        columns=["identity", "path"])


def test_every_notebook_has_needs():
    for stem in NOTEBOOKS:
        for need in feasibility.needs(stem, SMOKE):
            assert need.people >= 1 and need.images >= 1 and need.why
    with pytest.raises(ValueError, match="no needs recorded"):
        feasibility.needs("99_new", SMOKE)


def test_enough_data_passes_quietly():
    for stem in NOTEBOOKS:
        feasibility.check(stem, images(a=4, b=4, c=3), SMOKE)


def test_one_person_stops_the_comparisons_with_the_settings_to_change():
    with pytest.raises(NotEnoughData) as err:
        feasibility.check("05_bhattacharyya", images(a=3), SMOKE)
    text = str(err.value)
    assert "05_bhattacharyya" in text and "2 people" in text and "this run has 1" in text
    assert "--n-identities (now 6)" in text and "--min-images (now 2)" in text and "--data-root" in text
    assert "a 3" in text  # who was selected, with their images
    feasibility.check("04_region_statistics", images(a=3), SMOKE)  # one person's map is enough there


def test_occlusion_needs_a_held_out_image_and_two_map_images():
    two_each = images(a=2, b=2, c=2)
    feasibility.check("03_leam_layers", two_each, SMOKE)
    with pytest.raises(NotEnoughData, match=r">= 3 aligned image\(s\).*-p n_eval \(held-out images per person, now 1\)"):
        feasibility.check("06_occlusion_validation", two_each, SMOKE)
    feasibility.check("06_occlusion_validation", images(a=3, b=2), SMOKE)
    assert feasibility.occluded_images(replace(SMOKE, occlusion_n_eval=2)) == 4
    assert feasibility.occluded_images(replace(SMOKE, occlusion_n_eval=0.25)) == 3  # a fraction keeps one
    with pytest.raises(NotEnoughData, match=">= 4 aligned"):
        feasibility.check("08_xai_generalizability", images(a=3, b=3), replace(SMOKE, occlusion_n_eval=2))


def test_nobody_selected():
    with pytest.raises(NotEnoughData, match="Selected people \\(aligned images\\): nobody"):
        feasibility.check("00_data", images(), SMOKE)


def dataset_of(tmp_path: Path, counts: dict[str, int], tiny_face) -> data.FaceDataset:
    for who, n in counts.items():
        (tmp_path / who).mkdir()
        for i in range(n):
            tiny_face(tmp_path / who / f"{who}_{i + 1:04d}.jpg")
    return data.load_lfw(tmp_path)


@pytest.fixture
def tiny_face():
    from PIL import Image

    def write(path: Path) -> None:
        Image.new("RGB", (40, 40), (120, 100, 90)).save(path)

    return write


def test_folds_shrink_to_what_the_people_allow(tmp_path, tiny_face, caplog):
    ds = dataset_of(tmp_path, {"A": 3, "B": 2, "C": 2, "D": 4, "E": 2, "F": 2, "G": 1}, tiny_face)
    assert feasibility.pair_folds(ds, 2) == 2
    with caplog.at_level("WARNING"):
        assert feasibility.pair_folds(ds, 10) == 3  # 7 people: 3 folds of >= 2 people
    assert "at most 3 folds" in caplog.text
    pairs = data.make_pairs(ds, feasibility.pair_folds(ds, 10), 10, 0)
    assert sorted(pairs.fold.unique()) == [0, 1, 2]


def test_too_few_people_for_two_folds(tmp_path, tiny_face):
    ds = dataset_of(tmp_path, {"A": 3, "B": 1, "C": 1}, tiny_face)
    with pytest.raises(NotEnoughData, match="cannot make 2 verification folds.*--data-root.*--pairs"):
        feasibility.pair_folds(ds, 10)


def test_people_with_too_few_images_are_listed(tmp_path, tiny_face):
    ds = dataset_of(tmp_path, {"A": 3, "B": 1, "C": 2}, tiny_face)
    left = feasibility.not_eligible(ds, 2)
    assert left.identity.tolist() == ["B"] and left.images.tolist() == [1]
    assert "1 image(s) in the folder < min_images 2" in left.reason.iloc[0]
    assert feasibility.not_eligible(ds, 1).empty
