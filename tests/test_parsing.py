"""Face parsing on real aligned LFW faces: region geometry, sides, parser agreement, failures, cache, BiSeNet."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facexai import align, cache, data, parsing, parsing_bisenet
from facexai.models.registry import WeightsError

GEOMETRY_NAMES = list(align.GEOMETRIES)
NOSE_TIP = {"mediapipe": 1, "dlib": 30}
EYE_CENTRES = {"mediapipe": {"right_eye": [33, 133], "left_eye": [263, 362]},  # eye corners
               "dlib": {"right_eye": list(range(36, 42)), "left_eye": list(range(42, 48))}}


@pytest.fixture(scope="module")
def aligned(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> align.AlignmentResult:
    """The first image of 8 sample people, aligned in every geometry."""
    faces = [files[0] for files in list(data.load_lfw(sample_dir).identities.values())[:8]]
    result = align.align_paths(faces, cache_dir=tmp_path_factory.mktemp("cache"))
    assert not result.failed
    return result


@pytest.fixture(scope="module")
def parsed(aligned: align.AlignmentResult) -> dict[tuple[str, str], parsing.ParseResult]:
    return {(m, g): parsing.parse(aligned.crops[g], m, progress=False)
            for m in parsing.METHODS for g in GEOMETRY_NAMES}


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _edges(cycle: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset(e) for e in zip(cycle, cycle[1:] + cycle[:1])}


def test_mediapipe_regions_follow_mediapipe_contours() -> None:
    """The polygons are mediapipe's own contour definitions (face_mesh_connections), closed."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    regions = {k: v.indices for k, v in parsing.MEDIAPIPE_REGIONS.items()}

    def conn(edges: frozenset) -> set[frozenset[int]]:
        return {frozenset(e) for e in edges}

    assert _edges(regions["skin"]) == conn(fmc.FACEMESH_FACE_OVAL)
    assert _edges(regions["left_eye"]) == conn(fmc.FACEMESH_LEFT_EYE)
    assert _edges(regions["right_eye"]) == conn(fmc.FACEMESH_RIGHT_EYE)
    assert conn(fmc.FACEMESH_LEFT_EYEBROW) <= _edges(regions["left_brow"])
    assert conn(fmc.FACEMESH_RIGHT_EYEBROW) <= _edges(regions["right_brow"])
    lips = _edges(regions["upper_lip"]) | _edges(regions["lower_lip"]) | _edges(regions["inner_mouth"])
    assert conn(fmc.FACEMESH_LIPS) <= lips
    assert set(regions["nose"]) == {i for e in fmc.FACEMESH_NOSE for i in e}


@pytest.mark.parametrize("geometry", GEOMETRY_NAMES)
@pytest.mark.parametrize("method", parsing.METHODS)
def test_label_maps_are_partitions(parsed: dict, method: str, geometry: str) -> None:
    result = parsed[(method, geometry)]
    size = align.GEOMETRIES[geometry].size
    assert result.ok.all() and result.failed == []
    assert result.labels.shape == (8, size, size) and result.labels.dtype == np.uint8
    assert result.landmarks.shape == (8, parsing.N_LANDMARKS[method], 2)
    assert set(np.unique(result.labels)) <= set(parsing.CLASS_IDS.values())
    shares = result.area_shares()
    assert np.allclose(shares.sum(axis=1), 1.0)
    manual = (result.labels[3] == parsing.CLASS_IDS["nose"]).mean()
    assert shares.loc[3, "nose"] == pytest.approx(manual)
    # every facial region except the (possibly closed) inner mouth shows in every face
    visible = shares.drop(columns=["other", "inner_mouth"])
    assert (visible > 0).all().all(), visible
    assert (shares["skin"] > 0.2).all()


@pytest.mark.parametrize("geometry", GEOMETRY_NAMES)
@pytest.mark.parametrize("method", parsing.METHODS)
def test_eyes_below_brows_and_apart_from_them(parsed: dict, method: str, geometry: str) -> None:
    result = parsed[(method, geometry)]
    size = align.GEOMETRIES[geometry].size
    for points in result.landmarks:
        masks = parsing.region_masks(points, (size, size), method)
        brows = masks["left_brow"] | masks["right_brow"]
        assert not (brows & (masks["left_eye"] | masks["right_eye"])).any()  # even before painting
        for side in ("left", "right"):
            eye, brow = _centroid(masks[f"{side}_eye"]), _centroid(masks[f"{side}_brow"])
            assert eye[1] > brow[1] + 2  # image y grows downwards
            assert abs(eye[0] - brow[0]) < 0.15 * size


@pytest.mark.parametrize("geometry", GEOMETRY_NAMES)
@pytest.mark.parametrize("method", parsing.METHODS)
def test_sides_are_the_subjects(parsed: dict, aligned: align.AlignmentResult, method: str, geometry: str) -> None:
    """MTCNN's first eye point is the image-left eye, i.e. the subject's right eye (independent detector)."""
    result = parsed[(method, geometry)]
    for i, labels in enumerate(result.labels):
        mtcnn = align.transform_points(aligned.landmarks[i], aligned.matrices[geometry][i])
        ocular = np.linalg.norm(mtcnn[1] - mtcnn[0])
        right = _centroid(labels == parsing.CLASS_IDS["right_eye"])
        left = _centroid(labels == parsing.CLASS_IDS["left_eye"])
        assert left[0] > right[0]
        assert np.linalg.norm(right - mtcnn[0]) < 0.2 * ocular
        assert np.linalg.norm(left - mtcnn[1]) < 0.2 * ocular
        for side, idx in EYE_CENTRES[method].items():  # the landmark groups the tables use agree
            assert np.linalg.norm(result.landmarks[i, idx].mean(0) - (right if side == "right_eye" else left)) \
                < 0.15 * ocular


@pytest.mark.parametrize("geometry", GEOMETRY_NAMES)
def test_nose_region_holds_both_nose_tips(parsed: dict, geometry: str) -> None:
    """Each parser's nose contains its own nose-tip landmark and the other parser's."""
    nose = parsing.CLASS_IDS["nose"]
    for method in parsing.METHODS:
        labels = parsed[(method, geometry)].labels
        for other in parsing.METHODS:
            tips = np.round(parsed[(other, geometry)].landmarks[:, NOSE_TIP[other]]).astype(int)
            hits = [labels[i, y, x] == nose for i, (x, y) in enumerate(tips)]
            assert all(hits), (method, other, hits)


@pytest.mark.parametrize("geometry", GEOMETRY_NAMES)
def test_mediapipe_and_dlib_agree(parsed: dict, geometry: str) -> None:
    a, b = parsed[("mediapipe", geometry)], parsed[("dlib", geometry)]
    table = parsing.compare_parsers(a.labels, b.labels, ("mediapipe", "dlib"))
    print(f"\n{geometry}\n{table.round(3)}")
    assert table.loc["skin", "iou"] > 0.6
    assert table.loc["nose", "iou"] > 0.4
    assert table.loc[["left_eye", "right_eye"], "iou"].min() > 0.3
    assert np.allclose(table["share_mediapipe"].sum(), 1.0) and np.allclose(table["share_dlib"].sum(), 1.0)
    # a parser agrees with itself, and disagreement is visible: mirrored maps swap the sides
    assert np.allclose(parsing.compare_parsers(a.labels, a.labels)["iou"].dropna(), 1.0)
    mirrored = parsing.compare_parsers(a.labels, a.labels[:, :, ::-1])
    assert mirrored.loc["left_eye", "iou"] < 0.2


@pytest.mark.parametrize("method", parsing.METHODS)
def test_crop_landmarks_match_the_full_image(aligned: align.AlignmentResult, method: str) -> None:
    """Landmarks found on the crop equal those found on the 250x250 source image, carried by the crop matrix."""
    full = parsing.parse(np.stack([data.load_image(p) for p in aligned.paths]), method, progress=False)
    assert full.ok.all()
    for geometry in GEOMETRY_NAMES:
        crop = parsing.parse(aligned.crops[geometry], method, progress=False)
        size = align.GEOMETRIES[geometry].size
        for i in range(len(aligned.paths)):
            carried = align.transform_points(full.landmarks[i], aligned.matrices[geometry][i])
            error = np.median(np.linalg.norm(crop.landmarks[i] - carried, axis=1))
            assert error < 0.025 * size, (geometry, i, error)


@pytest.mark.parametrize("method", parsing.METHODS)
def test_non_faces_are_reported_not_raised(aligned: align.AlignmentResult, method: str) -> None:
    rng = np.random.default_rng(0)
    face = aligned.crops["arcface112"][0]
    grey = np.full_like(face, 128)
    noise = rng.integers(0, 256, face.shape, dtype=np.uint8)
    result = parsing.parse(np.stack([face, grey, noise]), method, progress=False)
    assert result.ok.tolist() == [True, False, False] and result.failed == [1, 2]
    assert set(result.reasons) == {1, 2} and all("no face" in r for r in result.reasons.values())
    assert not result.labels[1:].any() and np.isnan(result.landmarks[1:]).all()
    assert result.area_shares().index.tolist() == [0]


def test_dlib_fixed_boxes_and_fallback(aligned: align.AlignmentResult, parsed: dict,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixed boxes sit where the detector finds faces, and the fallback gives the detector's landmarks."""
    detector, predictor = parsing._dlib_models()
    for geometry in GEOMETRY_NAMES:
        boxes = []
        for crop in aligned.crops[geometry]:
            image, pad = parsing._pad(crop)
            found, _, _ = detector.run(image, 1, 0.0)
            r = max(found, key=lambda b: b.area())
            boxes.append(np.array([r.left(), r.top(), r.right(), r.bottom()]) - pad)
        size = align.GEOMETRIES[geometry].size
        # 8 faces against the 301-face medians; facenet160 box crops vary most (sd ~0.06 of the side)
        assert np.abs(np.median(boxes, 0) / size - parsing.DLIB_FIXED_BOXES[geometry]).max() < 0.1

    class MissesAtNormalThreshold:
        def run(self, image: np.ndarray, upsample: int, threshold: float):
            return detector.run(image, upsample, threshold) if threshold < 0 else ([], [], [])

    monkeypatch.setattr(parsing, "_dlib_models", lambda: (MissesAtNormalThreshold(), predictor))
    for geometry in GEOMETRY_NAMES:
        crops = aligned.crops[geometry][:3]
        result = parsing.parse(crops, "dlib", progress=False)
        assert result.ok.all() and set(result.notes) == {0, 1, 2}
        error = np.median(np.linalg.norm(result.landmarks - parsed[("dlib", geometry)].landmarks[:3], axis=2))
        assert error < 0.02 * crops.shape[1], (geometry, error)
    odd = parsing.parse(np.ascontiguousarray(aligned.crops["facenet160"][:1, :128, :128]), "dlib", progress=False)
    assert odd.failed == [0] and "no fixed box for 128x128" in odd.reasons[0]


def test_cached_parse_roundtrip(aligned: align.AlignmentResult, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    crops = aligned.crops["arcface112"][:3].copy()
    crops[2] = 128  # a non-face: its failure is cached too
    keys = [f"{sha}:arcface112" for sha in aligned.sha256[:3]]
    first = parsing.cached_parse(crops, keys, "mediapipe", cache_root=tmp_path, progress=False)
    assert first.failed == [2] and 2 in first.reasons
    files = sorted((tmp_path / "parsing").rglob("*.npz"))
    assert len(files) == 3 and not list((tmp_path / "parsing").rglob("*" + cache.TMP_SUFFIX))

    def no_landmarking(crop: np.ndarray):
        raise AssertionError("parsed again although cached")

    monkeypatch.setitem(parsing._LANDMARKERS, "mediapipe", no_landmarking)
    again = parsing.cached_parse(crops[[1, 0, 2]], [keys[1], keys[0], keys[2]], "mediapipe", cache_root=tmp_path)
    assert np.array_equal(again.labels, first.labels[[1, 0, 2]])
    assert np.array_equal(again.landmarks[:2], first.landmarks[[1, 0]])
    assert again.failed == [2] and again.reasons[2] == first.reasons[2]
    other = parsing.cached_parse(crops[:2], keys[:2], "dlib", cache_root=tmp_path, progress=False)
    assert other.method == "dlib" and other.landmarks.shape == (2, 68, 2)  # its own folder, not mediapipe's
    assert len(list((tmp_path / "parsing").rglob("*.npz"))) == 5
    with pytest.raises(ValueError, match="another size"):
        parsing.cached_parse(aligned.crops["dlib150"][:1], keys[:1], "mediapipe", cache_root=tmp_path)
    with pytest.raises(ValueError, match="2 keys for 3 crops"):
        parsing.cached_parse(crops, keys[:2], "mediapipe", cache_root=tmp_path)


def test_bad_inputs_get_clear_errors(aligned: align.AlignmentResult) -> None:
    crops = aligned.crops["arcface112"][:1]
    with pytest.raises(ValueError, match="valid: \\['mediapipe', 'dlib'\\]"):
        parsing.parse(crops, "bisenet")
    with pytest.raises(ValueError, match="uint8 RGB array"):
        parsing.parse(crops.astype(np.float32))
    with pytest.raises(ValueError, match="uint8 RGB array"):
        parsing.parse(crops[0])
    with pytest.raises(ValueError, match="class ids 0..9"):
        parsing.region_area_shares(np.full((1, 4, 4), 10))
    with pytest.raises(ValueError, match="differ in shape"):
        parsing.compare_parsers(np.zeros((1, 4, 4), int), np.zeros((1, 5, 5), int))
    with pytest.raises(ValueError, match="478, 2"):
        parsing.region_masks(np.zeros((68, 2)), (112, 112), "mediapipe")


def test_colorize_uses_the_class_table() -> None:
    labels = np.arange(len(parsing.CLASSES), dtype=np.uint8).reshape(1, -1)
    rgb = parsing.colorize(labels)
    assert rgb.shape == (1, len(parsing.CLASSES), 3) and rgb.dtype == np.uint8
    assert [tuple(c) for c in rgb[0]] == [c.color for c in parsing.CLASSES]
    assert len({c.color for c in parsing.CLASSES}) == len(parsing.CLASSES)
    assert [c.id for c in parsing.CLASSES] == list(range(len(parsing.CLASSES)))


# --- BiSeNet (weights not obtainable here: architecture and file format with random weights) ---

def test_bisenet_state_dict_layout_and_strict_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = parsing_bisenet.BiSeNet()
    for m in model.modules():  # non-trivial batch-norm statistics, so a dropped buffer would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = model.state_dict()
    for name in ("cp.resnet.conv1.weight", "cp.resnet.bn1.running_var", "cp.resnet.layer1.0.conv1.weight",
                 "cp.resnet.layer2.0.downsample.0.weight", "cp.resnet.layer4.1.bn2.bias",
                 "cp.arm16.conv.conv.weight", "cp.arm16.conv_atten.weight", "cp.arm32.bn_atten.running_mean",
                 "cp.conv_head32.conv.weight", "cp.conv_head16.bn.weight", "cp.conv_avg.conv.weight",
                 "ffm.convblk.conv.weight", "ffm.conv1.weight", "ffm.conv2.weight",
                 "conv_out.conv.conv.weight", "conv_out.conv_out.weight", "conv_out16.conv_out.weight",
                 "conv_out32.conv.bn.weight"):
        assert name in state, name
    assert state["conv_out.conv_out.weight"].shape == (19, 256, 1, 1)
    assert not any(k.startswith("sp.") or ".fc." in k for k in state)
    path = tmp_path / "79999_iter.pth"
    torch.save(state, path)
    loaded = parsing_bisenet.load_bisenet(path)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert loaded(x).shape == (1, 19, 128, 128)
    state.pop("ffm.conv1.weight")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="(?s)partial.pth.*ffm.conv1.weight"):
        parsing_bisenet.load_bisenet(tmp_path / "partial.pth")


def test_bisenet_missing_file_names_file_and_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsError, match="nowhere.pth.*zllrunning/face-parsing.PyTorch"):
        parsing_bisenet.load_bisenet(tmp_path / "nowhere.pth")
    monkeypatch.setenv("FACEXAI_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match="79999_iter.pth.*zllrunning/face-parsing.PyTorch"):
        parsing_bisenet.load_bisenet()


def test_bisenet_classes_map_onto_the_table(aligned: align.AlignmentResult) -> None:
    """Each of the 19 outputs lands on its documented class; crops of any size come back at their size."""

    class Constant(torch.nn.Module):
        def __init__(self, k: int):
            super().__init__()
            self.k = k

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[2:] == (512, 512)
            logits = torch.zeros(x.shape[0], 19, *x.shape[2:])
            logits[:, self.k] = 1.0
            return logits

    crops = aligned.crops["facenet160"][:2]
    for k, name in enumerate(parsing_bisenet.BISENET_CLASSES):
        result = parsing_bisenet.parse_bisenet(crops, Constant(k), progress=False)
        assert result.labels.shape == (2, 160, 160) and result.ok.all()
        assert (result.labels == parsing.CLASS_IDS[parsing_bisenet.BISENET_TO_CLASS[name]]).all()
    torch.manual_seed(0)
    random = parsing_bisenet.parse_bisenet(crops, parsing_bisenet.BiSeNet().eval(), progress=False)
    assert set(np.unique(random.labels)) <= set(parsing.CLASS_IDS.values())
