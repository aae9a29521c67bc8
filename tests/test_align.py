"""Alignment: transforms against OpenCV and facenet-pytorch, geometry on real faces, cache, failures."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import map_coordinates

from facexai import align, data
from facexai.cache import file_sha256, save_npz


@pytest.fixture(scope="module")
def faces(sample_dir: Path) -> list[Path]:
    """The first image of 8 sample people."""
    return [files[0] for files in list(data.load_lfw(sample_dir).identities.values())[:8]]


@pytest.fixture(scope="module")
def aligned(faces: list[Path], tmp_path_factory: pytest.TempPathFactory) -> align.AlignmentResult:
    return align.align_paths(faces, cache_dir=tmp_path_factory.mktemp("cache"))


def _forbid_mtcnn(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(batch: np.ndarray, device: str) -> None:
        raise AssertionError("MTCNN ran although its result was cached")

    monkeypatch.setattr(align, "_run_mtcnn", fail)


def test_similarity_transform_matches_opencv() -> None:
    rng = np.random.default_rng(0)
    template = np.array(align.ARCFACE112_TEMPLATE)
    angle, scale = 0.3, 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = template @ rot.T + [40.0, 60.0]
    exact = align.similarity_transform(src, template)
    assert np.allclose(align.transform_points(src, exact), template, atol=1e-9)
    noisy = src + rng.normal(0, 3, src.shape)
    ours = align.similarity_transform(noisy, template)
    ref, inliers = cv2.estimateAffinePartial2D(noisy, template, method=cv2.LMEDS, refineIters=100)
    assert inliers.all() and np.allclose(ours, ref, atol=1e-4)


def test_result_shapes_and_order(aligned: align.AlignmentResult, faces: list[Path]) -> None:
    assert aligned.paths == faces and not aligned.failed
    assert aligned.sha256 == [file_sha256(p) for p in faces]
    for name, geo in align.GEOMETRIES.items():
        assert aligned.crops[name].shape == (8, geo.size, geo.size, 3) and aligned.crops[name].dtype == np.uint8
        assert aligned.matrices[name].shape == (8, 2, 3)
    assert aligned.landmarks.shape == (8, 5, 2) and aligned.boxes.shape == (8, 4)
    assert aligned.index([faces[3], str(faces[0])]).tolist() == [3, 0]
    with pytest.raises(KeyError, match="not aligned"):
        aligned.index(["nowhere.jpg"])


def test_arcface_crop_puts_eyes_on_template(aligned: align.AlignmentResult, faces: list[Path]) -> None:
    template = np.array(align.ARCFACE112_TEMPLATE)
    mapped = np.stack([align.transform_points(lm, m)
                       for lm, m in zip(aligned.landmarks, aligned.matrices["arcface112"])])
    eye_error = np.linalg.norm(mapped[:, :2] - template[:2], axis=-1)
    assert np.median(eye_error) < 2.0 and eye_error.max() < 4.0, eye_error.round(2)
    # the crop's pixels are the source sampled through the inverse matrix (scipy as the independent sampler)
    image = data.load_image(faces[0]).astype(np.float64)
    inverse = np.linalg.inv(np.vstack([aligned.matrices["arcface112"][0], [0, 0, 1]]))[:2]
    grid = np.stack(np.meshgrid(np.arange(112), np.arange(112)), -1).reshape(-1, 2)
    src = align.transform_points(grid, inverse)
    ref = np.stack([map_coordinates(image[..., c], [src[:, 1], src[:, 0]], order=1) for c in range(3)], -1)
    assert np.abs(ref.reshape(112, 112, 3) - aligned.crops["arcface112"][0]).max() <= 1.0


@pytest.mark.parametrize("box", [[61.3, 72.8, 181.9, 203.4], [-12.0, 5.5, 120.2, 262.0]])
def test_facenet160_box_crop_matches_facenet_pytorch(faces: list[Path], box: list[float]) -> None:
    from facenet_pytorch.models.utils.detect_face import extract_face

    image = data.load_image(faces[1])
    crop, matrix = align.crop_face(image, "facenet160", box=np.array(box))
    grown = [box[0] - 16, box[1] - 16, box[2] + 16, box[3] + 16]  # Sandberg: margin 32 source px
    ref = extract_face(Image.fromarray(image), grown, image_size=160, margin=0)
    assert np.array_equal(crop, ref.permute(1, 2, 0).numpy().astype(np.uint8))
    x0, y0 = int(max(box[0] - 16, 0)), int(max(box[1] - 16, 0))
    x1, y1 = int(min(box[2] + 16, 250)), int(min(box[3] + 16, 250))
    corners = align.transform_points([[x0 - 0.5, y0 - 0.5], [x1 - 0.5, y1 - 0.5]], matrix)
    assert np.allclose(corners, [[-0.5, -0.5], [159.5, 159.5]])


def test_warp_between_carries_landmarks(aligned: align.AlignmentResult) -> None:
    for g_from, g_to in [("arcface112", "facenet160"), ("facenet160", "dlib150"), ("dlib150", "arcface112")]:
        m_from, m_to = aligned.matrices[g_from][2], aligned.matrices[g_to][2]
        size_from, size_to = align.GEOMETRIES[g_from].size, align.GEOMETRIES[g_to].size
        for point in aligned.landmarks[2]:
            u, v = align.transform_points(point, m_from)
            yy, xx = np.mgrid[:size_from, :size_from]
            blob = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 2.0 ** 2)).astype(np.float32)
            warped = align.warp_between(blob, m_from, m_to, size_to)
            peak = np.array(np.unravel_index(np.argmax(warped), warped.shape)[::-1])
            assert np.linalg.norm(peak - align.transform_points(point, m_to)) <= 1.0, (g_from, g_to)
    # an image warped between crops matches the other crop where both see the source
    warped = align.warp_between(aligned.crops["dlib150"][2], aligned.matrices["dlib150"][2],
                                aligned.matrices["arcface112"][2], 112)
    inner = np.s_[20:92, 20:92]
    assert np.abs(warped[inner].astype(float) - aligned.crops["arcface112"][2][inner]).mean() < 6.0
    many = align.warp_between(np.ones((150, 150, 7), np.float32), aligned.matrices["dlib150"][2],
                              aligned.matrices["arcface112"][2], 112)
    assert many.shape == (112, 112, 7)


def test_cache_hit_and_resume_without_mtcnn(faces: list[Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = align.align_paths(faces[:3], ["arcface112"], cache_dir=tmp_path)
    _forbid_mtcnn(monkeypatch)
    again = align.align_paths(faces[:3], ["arcface112"], cache_dir=tmp_path)
    assert np.array_equal(first.crops["arcface112"], again.crops["arcface112"])
    assert np.array_equal(first.landmarks, again.landmarks)
    # a new geometry, and a crop lost by a killed run, are made from the cached detections
    next(iter((tmp_path / "aligned").glob("arcface112-*/*/*.npz"))).unlink()
    more = align.align_paths(faces[:3], ["arcface112", "facenet160"], cache_dir=tmp_path)
    assert np.array_equal(first.crops["arcface112"], more.crops["arcface112"])
    assert more.crops["facenet160"].shape == (3, 160, 160, 3)


def test_failures_are_reported_not_dropped(faces: list[Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((250, 250, 3), 128, np.uint8)).save(grey)
    stripes = tmp_path / "stripes.jpg"
    xx = np.arange(250)[None, :, None]
    Image.fromarray(np.broadcast_to(127 + 100 * np.sin(xx / 3.0), (250, 250, 3)).astype(np.uint8)).save(stripes)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(faces[0].read_bytes()[:1500])
    missing = tmp_path / "missing.jpg"
    paths = [grey, faces[0], truncated, stripes, missing, faces[1], faces[0]]
    result = align.align_paths(paths, ["arcface112"], cache_dir=tmp_path / "cache")
    assert result.paths == [faces[0], faces[1]]
    reasons = dict(result.failed)
    assert list(reasons) == [grey, truncated, stripes, missing]
    assert reasons[grey] == reasons[stripes] == "no face detected"
    assert "truncated.jpg" in reasons[truncated] and "unreadable" in reasons[missing]
    _forbid_mtcnn(monkeypatch)  # "no face" is cached too
    assert dict(align.align_paths([grey], ["arcface112"], cache_dir=tmp_path / "cache").failed) == {
        grey: "no face detected"}


def test_pick_face_rule() -> None:
    boxes = np.array([[10, 10, 60, 60], [80, 80, 170, 170], [0, 0, 120, 120]], np.float32)
    # areas 2500, 8100, 14400; centre offsets^2 from (125, 125): 18050, 0, 8450
    assert align.pick_face(boxes, (250, 250, 3)) == 1
    assert align.pick_face(boxes[[0, 2]], (250, 250, 3)) == 1


def test_two_faces_keeps_large_central_one(faces: list[Path]) -> None:
    canvas = np.zeros((250, 420, 3), np.uint8)
    canvas[:, 110:360] = data.load_image(faces[3])
    canvas[60:160, 0:100] = cv2.resize(data.load_image(faces[4]), (100, 100), interpolation=cv2.INTER_AREA)
    (det,) = align.detect_faces([canvas])
    assert det is not None and det.n_faces >= 2
    assert 110 < (det.box[0] + det.box[2]) / 2 < 360 and det.box[2] - det.box[0] > 60


def test_unknown_geometry_names_the_options(faces: list[Path], tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="valid: \\['arcface112', 'dlib150', 'facenet160'\\]"):
        align.align_paths(faces[:1], ["arcface"], cache_dir=tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None
                    or importlib.util.find_spec("face_recognition_models") is None,
                    reason="dlib-bin and face-recognition-models are the oracle for dlib150")
def test_dlib150_close_to_dlibs_own_chip(aligned: align.AlignmentResult, faces: list[Path]) -> None:
    import sys

    import dlib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from derive_dlib_template import chip_matrix

    models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    grid = np.stack(np.meshgrid(np.arange(150), np.arange(150)), -1).reshape(-1, 2)
    to_dlib = []
    for i, path in enumerate(faces):
        image = data.load_image(path)
        (face, *_) = detector(image, 1)
        dlib_m = chip_matrix(dlib.get_face_chip_details(predictor(image, face), 150, 0.25))
        to_dlib.append((np.vstack([dlib_m, [0, 0, 1]]) @ np.linalg.inv(
            np.vstack([aligned.matrices["dlib150"][i], [0, 0, 1]])))[:2])
    shift = [np.linalg.norm(align.transform_points(grid, m) - grid, axis=1).mean() for m in to_dlib]
    bias = np.linalg.norm(align.transform_points(grid, np.mean(to_dlib, axis=0)) - grid, axis=1).mean()
    # per face our chip is off dlib's by ~4 px (dlib's landmarks differ from MTCNN's; median 4.0 px
    # measured here, 10.9 px for a turned head); the average transform is off by 1.0 px. This catches
    # a template that is wrong by ~3 px or more, not finer errors (8 faces are too few for that).
    assert np.median(shift) < 6.0 and bias < 2.0, (np.round(shift, 2), bias)


# ---------------------------------------------------------------- bad input: orientation, size, several faces

def test_landmark_problem_returns_every_verdict() -> None:
    upright = np.array(align.ARCFACE112_TEMPLATE)
    centre = upright.mean(0)

    def rotated(deg: float) -> np.ndarray:
        t = np.radians(deg)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        return (upright - centre) @ rot.T + centre

    assert align.landmark_problem(upright) is None
    assert align.landmark_problem(rotated(45)) is None  # LFW's most tilted upright face rolls 46 degrees
    for deg in (90, -90, 180):
        assert "eye line rolled" in align.landmark_problem(rotated(deg))
    upside_down = upright * [1, -1]  # eye line level, mouth above the eyes
    assert "mouth is not below the eyes" in align.landmark_problem(upside_down)


def test_sample_faces_pass_the_plausibility_rule(aligned: align.AlignmentResult) -> None:
    assert all(align.landmark_problem(lm) is None for lm in aligned.landmarks)


def test_implausible_landmarks_are_counted_failures(faces: list[Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = align.detect_faces

    def sideways(images, device="cpu"):
        out = real(images, device)
        d = out[0]
        flipped = d.landmarks[:, ::-1].copy()  # x <-> y: the eye line becomes vertical
        out[0] = align.Detection(d.box, flipped, d.prob, d.n_faces, d.index)
        return out

    monkeypatch.setattr(align, "detect_faces", sideways)
    result = align.align_paths(faces[:2], ["arcface112"], cache_dir=tmp_path)
    assert result.paths == [faces[1]]
    assert "implausible landmarks" in dict(result.failed)[faces[0]]


def test_large_images_are_detected_downscaled_in_pixel_bounded_batches(faces: list[Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    image = data.load_image(faces[0])
    (small,) = align.detect_faces([image])
    big = cv2.resize(image, (1750, 1750), interpolation=cv2.INTER_CUBIC)  # 3 MP > MAX_DETECT_PIXELS
    seen: list[tuple[int, ...]] = []
    real = align._run_mtcnn

    def spy(batch: np.ndarray, device: str):
        seen.append(batch.shape)
        return real(batch, device)

    monkeypatch.setattr(align, "_run_mtcnn", spy)
    (det,) = align.detect_faces([big])
    assert seen[0][1] * seen[0][2] <= align.MAX_DETECT_PIXELS
    scale = 1750 / 250
    expected = (small.landmarks + 0.5) * scale - 0.5  # the same face, in full-resolution pixels
    assert np.abs(det.landmarks - expected).max() < 2.5 * scale
    seen.clear()
    monkeypatch.setattr(align, "BATCH_PIXELS", 3 * 250 * 250)
    align.detect_faces([data.load_image(f) for f in faces])
    assert [s[0] for s in seen] == [3, 3, 2]


def test_the_kept_face_is_recorded(faces: list[Path], tmp_path: Path) -> None:
    canvas = np.zeros((250, 420, 3), np.uint8)
    canvas[:, 110:360] = data.load_image(faces[3])
    canvas[60:160, 0:100] = cv2.resize(data.load_image(faces[4]), (100, 100), interpolation=cv2.INTER_AREA)
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    result = align.align_paths([path, faces[0]], ["arcface112"], cache_dir=tmp_path / "cache")
    table = result.face_table()
    assert list(table.columns) == ["path", "faces_found", "face_kept", "face_prob", "face_box"]
    two = table.iloc[0]
    assert two.faces_found >= 2 and table.iloc[1].faces_found == 1
    x0, _, x1, _ = map(float, two.face_box.split())
    assert 110 < (x0 + x1) / 2 < 360  # the large central face, not the small one on the left


def test_sideways_and_upside_down_faces_are_rejected(faces: list[Path], tmp_path: Path) -> None:
    turned = []
    for k, face in [(1, f) for f in faces[:4]] + [(2, f) for f in faces[4:8]]:
        path = tmp_path / f"{face.stem}_rot{90 * k}.png"
        Image.fromarray(np.ascontiguousarray(np.rot90(data.load_image(face), k))).save(path)
        turned.append(path)
    result = align.align_paths([*turned, *faces[:2]], ["arcface112"], cache_dir=tmp_path / "cache")
    assert result.paths == faces[:2]  # the upright ones only
    reasons = dict(result.failed)
    assert set(reasons) == set(turned)
    assert all(why == "no face detected" or "not upright" in why or "implausible" in why for why in reasons.values())
    assert sum("not upright" in why for why in reasons.values()) >= 2  # MTCNN did find some turned faces


def test_cache_reads_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    """Crops and detections are read once per process; a rewritten file (new mtime) is read again."""
    path = tmp_path / "crop.npz"
    save_npz(path, crop=np.zeros((2, 2, 3), np.uint8), matrix=np.eye(2, 3))
    reads = []
    real = align.read_npz
    monkeypatch.setattr(align, "read_npz", lambda *a: reads.append(a) or real(*a))
    first = align._read_cached(path, ("crop", "matrix"))
    again = align._read_cached(path, ("crop", "matrix"))
    assert len(reads) == 1 and again is first and not first["crop"].flags.writeable
    save_npz(path, crop=np.ones((2, 2, 3), np.uint8), matrix=np.eye(2, 3))
    os.utime(path, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert align._read_cached(path, ("crop", "matrix"))["crop"].max() == 1 and len(reads) == 2
    assert align._read_cached(tmp_path / "absent.npz", ("crop",)) is None
