"""Face detection (MTCNN) and crops in the geometries the recognition models were trained on.

Every crop comes with the 2x3 affine matrix from source-image pixels to crop pixels (pixel
centres at integer coordinates, OpenCV's convention), so saliency maps computed on one crop can be
carried into another geometry's crop through the source image (:func:`warp_between`).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from facexai import executor
from facexai.cache import cache_dir as default_cache_dir
from facexai.cache import file_sha256, key, read_npz, save_npz
from facexai.data import load_image

log = logging.getLogger(__name__)

ARCFACE112_TEMPLATE = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
                       (41.5493, 92.3655), (70.7299, 92.2041))
# Where dlib's get_face_chip(size=150, padding=0.25) puts MTCNN's 5 landmarks (left eye, right eye,
# nose, mouth left, mouth right), in chip pixels. Derived by tools/derive_dlib_template.py: on 50
# LFW deep-funneled faces (one per person, seed 0) dlib's frontal detector + 5-point predictor gave
# each chip's source->chip matrix (checked against dlib's own chip pixel by pixel), MTCNN's
# landmarks of the same face were mapped through it and averaged (per-point spread across faces,
# std: eyes 1.4-2.6 px, nose 4-8 px, mouth 5-7 px: pose moves MTCNN's points relative to dlib's).
DLIB150_TEMPLATE = ((48.0712, 46.1170), (102.1129, 45.6460), (74.5301, 77.7142),
                    (51.5489, 106.7735), (98.9646, 106.3566))


@dataclass(frozen=True)
class Geometry:
    """A crop convention: a similarity warp of 5 landmarks onto ``template``, or a box crop."""

    name: str
    size: int
    kind: Literal["similarity", "box"]
    template: tuple[tuple[float, float], ...] | None = None
    margin: float = 0.0  # box crops: total margin in source pixels (half on each side)
    description: str = ""


GEOMETRIES: dict[str, Geometry] = {g.name: g for g in (
    Geometry("arcface112", 112, "similarity", ARCFACE112_TEMPLATE,
             description="5-point similarity onto the ArcFace template (insightface, SFace)"),
    Geometry("facenet160", 160, "box", margin=32.0,
             description="MTCNN box + 16 source px each side, clipped, bilinear to 160 (Sandberg's facenet)"),
    Geometry("dlib150", 150, "similarity", DLIB150_TEMPLATE,
             description="5-point similarity onto dlib's get_face_chip(size=150, padding=0.25) layout"),
)}


def _geometry(name: str) -> Geometry:
    if name not in GEOMETRIES:
        raise KeyError(f"unknown geometry {name!r}; valid: {sorted(GEOMETRIES)}")
    return GEOMETRIES[name]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; Umeyama 1991) taking src to dst, 2x3."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(d_c.T @ s_c / len(src))
    sign = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ np.diag(sign) @ vt
    scale = (sv * sign).sum() / (s_c ** 2).sum(1).mean()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _as3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def box_matrix(box: np.ndarray, image_shape: tuple[int, ...], margin: float, size: int
               ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Sandberg's integer crop box (box +- margin/2, clipped) and the matrix of its resize to ``size``."""
    h, w = image_shape[:2]
    x0, y0 = int(max(box[0] - margin / 2, 0)), int(max(box[1] - margin / 2, 0))
    x1, y1 = int(min(box[2] + margin / 2, w)), int(min(box[3] + margin / 2, h))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {np.round(box, 1).tolist()} lies outside the {w}x{h} image")
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    # a resize maps pixel-centre u of the crop to x0 + (u + 0.5) / s - 0.5 in the source
    matrix = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])
    return matrix, (x0, y0, x1, y1)


def crop_face(image: np.ndarray, geometry: str, landmarks: np.ndarray | None = None,
              box: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crop one face (uint8 RGB) in ``geometry`` from its 5 landmarks or its box; return (crop, 2x3 matrix)."""
    geo = _geometry(geometry)
    if geo.kind == "box":
        if box is None:
            raise ValueError(f"geometry {geometry} needs the face box")
        matrix, (x0, y0, x1, y1) = box_matrix(box, image.shape, geo.margin, geo.size)
        crop = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1])).resize((geo.size, geo.size),
                                                                                 Image.BILINEAR)
        return np.asarray(crop), matrix
    if landmarks is None:
        raise ValueError(f"geometry {geometry} needs the 5 landmarks")
    matrix = similarity_transform(landmarks, np.array(geo.template))
    crop = cv2.warpAffine(image, matrix, (geo.size, geo.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, matrix


def warp_between(map_or_image: np.ndarray, m_from: np.ndarray, m_to: np.ndarray, out_size: int,
                 border_value: float = 0.0) -> np.ndarray:
    """Carry an (H, W) or (H, W, C) map from one crop into another crop of the same source image."""
    composite = (_as3x3(m_to) @ np.linalg.inv(_as3x3(m_from)))[:2]
    src = np.asarray(map_or_image)
    if src.dtype == np.float16 or src.dtype == bool:
        src = src.astype(np.float32)
    channels = [src] if src.ndim == 2 or src.shape[2] <= 4 else [src[..., c] for c in range(src.shape[2])]
    out = [cv2.warpAffine(c, composite, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value) for c in channels]
    if len(out) == 1:
        return out[0].reshape(out_size, out_size, *src.shape[2:])
    return np.stack(out, axis=-1)


#: Bump when detection, the face choice, the plausibility rules or cropping change: cache keys carry it.
ALIGN_VERSION = 3
#: Images above this many pixels are downscaled for detection (landmarks mapped back to full resolution).
MAX_DETECT_PIXELS = 1600 * 1600
#: One MTCNN batch holds at most this many (detection-size) pixels, so memory does not grow with photo size.
BATCH_PIXELS = 8_000_000
#: At most this many full-resolution pixels are decoded at once by :func:`align_paths`.
LOAD_PIXELS = 64_000_000
#: A face whose eye line is rolled beyond this is rejected as implausible (LFW's upright faces: <= 47 degrees).
MAX_ROLL_DEGREES = 60.0
#: Orientation check: half-side of the square re-detection crop around a face box, in box sides.
ORIENTATION_CROP = 0.8


@dataclass(frozen=True)
class Detection:
    """The chosen face of one image: box (x0, y0, x1, y1), 5 landmarks, score, how many faces were found
    and which one was kept (its index in MTCNN's output, largest box first)."""

    box: np.ndarray
    landmarks: np.ndarray
    prob: float
    n_faces: int
    index: int = 0
    orientation: str = ""  # why the face is not upright ("" when it is): see orientation_problems


def pick_face(boxes: np.ndarray, image_shape: tuple[int, ...]) -> int:
    """Index of the face to keep: largest box area minus 2x squared offset from the image centre (Sandberg's rule)."""
    h, w = image_shape[:2]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    offset = ((boxes[:, 0] + boxes[:, 2]) / 2 - w / 2) ** 2 + ((boxes[:, 1] + boxes[:, 3]) / 2 - h / 2) ** 2
    return int(np.argmax(area - 2.0 * offset))


def landmark_problem(landmarks: np.ndarray, max_roll: float = MAX_ROLL_DEGREES) -> str | None:
    """Why 5 landmarks (eyes, nose, mouth corners) cannot be an upright face, or None when plausible.

    Rejected: an eye line rolled beyond ``max_roll`` degrees, or a mouth that is not below the eyes
    (upside-down or mirrored point order). Such faces are counted as alignment failures, not corrected.
    """
    left_eye, right_eye, _, mouth_left, mouth_right = np.asarray(landmarks, np.float64)
    eyes = right_eye - left_eye
    mouth = (mouth_left + mouth_right) / 2 - (left_eye + right_eye) / 2
    roll = float(np.degrees(np.arctan2(eyes[1], eyes[0])))
    if abs(roll) > max_roll:
        return f"implausible landmarks: eye line rolled {roll:.0f} degrees (limit {max_roll:.0f}): face sideways?"
    if eyes[0] * mouth[1] - eyes[1] * mouth[0] <= 0:
        return "implausible landmarks: the mouth is not below the eyes: face upside down?"
    return None


@functools.lru_cache(maxsize=2)
def _mtcnn(device: str):
    from facenet_pytorch import MTCNN  # heavy import, only when detecting

    return MTCNN(keep_all=True, device=device)


def _run_mtcnn(batch: np.ndarray, device: str) -> tuple[Sequence, Sequence, Sequence]:
    """facenet-pytorch's batched detect on (N, H, W, 3) uint8: per image boxes, probs, landmarks (or None)."""
    return _mtcnn(device).detect(batch, landmarks=True)


def _detection_scale(shape: tuple[int, ...], max_pixels: int = MAX_DETECT_PIXELS) -> float:
    """Factor (<= 1) that brings an image to at most ``max_pixels`` for detection."""
    return min(1.0, float(np.sqrt(max_pixels / (shape[0] * shape[1]))))


def _for_detection(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image MTCNN sees (area-downscaled when large) and the per-axis factors (sx, sy) it was scaled by."""
    scale = _detection_scale(image.shape)
    if scale == 1.0:
        return image, np.ones(2)
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.array([size[0] / w, size[1] / h])


def _pixel_batches(indices: list[int], pixels_each: int, max_pixels: int, max_count: int | None = None
                   ) -> list[list[int]]:
    """``indices`` cut into consecutive batches of at most ``max_pixels`` pixels (and ``max_count`` items)."""
    per = max(1, max_pixels // max(pixels_each, 1))
    per = min(per, max_count) if max_count else per
    return [indices[k:k + per] for k in range(0, len(indices), per)]


def _turned_crops(image: np.ndarray, box: np.ndarray, size: int, half: float) -> np.ndarray:
    """(4, size, size, 3): a square crop centred on ``box`` (half-side ``half`` box sides), turned 0/90/180/270 degrees."""
    x0, y0, x1, y1 = box
    scale = size / (2 * half * max(x1 - x0, y1 - y0))
    matrix = np.array([[scale, 0, size / 2 - scale * (x0 + x1) / 2], [0, scale, size / 2 - scale * (y0 + y1) / 2]])
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    return np.stack([np.rot90(crop, k) for k in range(4)])


def _onet_scores(crops: np.ndarray, device: str) -> np.ndarray:
    """MTCNN's last stage (ONet) face probability of (N, 48, 48, 3) uint8 crops."""
    net = _mtcnn(device).onet
    x = (torch.from_numpy(crops.astype(np.float32)).permute(0, 3, 1, 2).to(device) - 127.5) * 0.0078125
    with torch.no_grad():
        return net(x)[2][:, 1].cpu().numpy()


def _best_probs(crops: np.ndarray, device: str) -> np.ndarray:
    """Full MTCNN on equal-size crops: the best face probability of each (0 where none is found)."""
    out = []
    for batch in _pixel_batches(list(range(len(crops))), crops.shape[1] * crops.shape[2], BATCH_PIXELS):
        _, probs, _ = _run_mtcnn(np.ascontiguousarray(crops[batch]), device)
        out += [0.0 if p is None or p[0] is None else float(np.max(p)) for p in probs]
    return np.array(out)


def orientation_problems(images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], device: str = "cpu") -> list[str]:
    """Why each detected face is not upright ("" when it is): sideways and upside-down photos are rejected.

    MTCNN regresses upright-looking landmarks even on turned faces, so orientation is tested on
    the face itself: its box turned by 0/90/180/270 degrees is scored by MTCNN's ONet (cheap); only
    when a turned version beats the upright one is it confirmed by full MTCNN on a wider crop.
    Measured with tools/measure_orientation.py: none of the 301 shipped LFW images is rejected;
    of 183 turned copies (61 of them x 90/180/270 degrees) MTCNN finds a face in 65, and 64 of
    those are rejected (58 by this check, 2 of them because no face is found again in the box, and
    6 by :func:`landmark_problem`).
    """
    if not images:
        return []
    quick = _onet_scores(np.concatenate([_turned_crops(im, b, 48, 0.5) for im, b in zip(images, boxes)]), device)
    suspects = [i for i in range(len(images)) if quick[4 * i:4 * i + 4].argmax() != 0]
    out = [""] * len(images)
    if suspects:
        crops = np.concatenate([_turned_crops(images[i], boxes[i], 160, ORIENTATION_CROP) for i in suspects])
        probs = _best_probs(crops, device).reshape(-1, 4)
        for i, p in zip(suspects, probs):
            k = int(np.argmax(p))
            if p.max() == 0:
                out[i] = "face not found again in a crop of its own box at any orientation: not upright?"
            elif k:
                out[i] = (f"face not upright: its box scores {p[k]:.2f} turned {90 * k} degrees counter-clockwise "
                          f"vs {p[0]:.2f} as is (rejected, not rotated)")
    return out


def detect_faces(images: Sequence[np.ndarray], device: str = "cpu") -> list[Detection | None]:
    """MTCNN on RGB uint8 images; None where no face is found; each face's orientation checked.

    Equal sizes are batched together, each batch bounded by :data:`BATCH_PIXELS`; images above
    :data:`MAX_DETECT_PIXELS` are detected downscaled and their boxes and landmarks mapped back.
    """
    small, factors = zip(*(_for_detection(img) for img in images)) if images else ((), ())
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(small):
        groups.setdefault(img.shape, []).append(i)
    out: list[Detection | None] = [None] * len(images)
    for shape, idx in groups.items():
        for batch in _pixel_batches(idx, shape[0] * shape[1], BATCH_PIXELS):
            boxes, probs, points = _run_mtcnn(np.stack([small[i] for i in batch]), device)
            for i, b, p, pts in zip(batch, boxes, probs, points):
                if b is None:
                    continue
                b, p, pts = (np.asarray(a).astype(np.float32) for a in (b, p, pts))
                k = pick_face(b, shape)
                sx, sy = factors[i]
                # pixel centres: x_full = (x_small + 0.5) / s - 0.5 (identity when not scaled)
                box = ((b[k].reshape(2, 2) + 0.5) / [sx, sy] - 0.5).reshape(4).astype(np.float32)
                landmarks = ((pts[k] + 0.5) / [sx, sy] - 0.5).astype(np.float32)
                out[i] = Detection(box, landmarks, float(p[k]), len(b), k)
    found = [i for i, d in enumerate(out) if d is not None]
    problems = orientation_problems([small[i] for i in found],
                                    [out[i].box * np.tile(factors[i], 2) for i in found], device)
    for i, problem in zip(found, problems):
        out[i] = dataclasses.replace(out[i], orientation=problem)
    return out


@dataclass
class AlignmentResult:
    """Aligned faces in input order (failed images excluded and listed in ``failed``).

    ``n_faces`` and ``face_index`` say how many faces MTCNN found in each image and which one
    (index in MTCNN's output, largest box first) was kept by :func:`pick_face`.
    """

    paths: list[Path]
    sha256: list[str]
    crops: dict[str, np.ndarray]
    matrices: dict[str, np.ndarray]
    landmarks: np.ndarray
    boxes: np.ndarray
    failed: list[tuple[Path, str]] = field(default_factory=list)
    n_faces: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    face_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def index(self, paths: Iterable[str | os.PathLike]) -> np.ndarray:
        """Row of each path in this result (KeyError naming the paths that were not aligned)."""
        rows = {str(p): i for i, p in enumerate(self.paths)}
        paths = [str(p) for p in paths]
        missing = [p for p in paths if p not in rows]
        if missing:
            raise KeyError(f"{len(missing)} paths were not aligned, e.g. {missing[:3]}")
        return np.array([rows[p] for p in paths], dtype=np.int64)

    def face_table(self) -> pd.DataFrame:
        """One row per aligned image: faces found, the one kept (index, box, probability)."""
        return pd.DataFrame({
            "path": list(map(str, self.paths)), "faces_found": self.n_faces.astype(int),
            "face_kept": self.face_index.astype(int), "face_prob": np.round(self.probs.astype(float), 4),
            "face_box": [" ".join(f"{v:.1f}" for v in b) for b in self.boxes]})


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; (0, 0) when unreadable (reported later)."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return (0, 0)


def _shard(root: Path, sha: str) -> Path:
    return root / sha[:2] / f"{sha}.npz"


def geometry_key(geometry: str | Geometry) -> str:
    """Key of a crop geometry's definition (template, size, margin) and the cropping code's version.

    Everything derived from crops (embeddings, maps, label maps) keys on it, not on the name, so
    an edited template invalidates what was made from the old crops.
    """
    return _definition_key(_geometry(geometry) if isinstance(geometry, str) else geometry, ALIGN_VERSION)


@functools.lru_cache(maxsize=64)
def _definition_key(geo: Geometry, version: int) -> str:
    """:func:`geometry_key` of a (frozen, hashable) definition and code version, computed once per process:
    every crop key has it."""
    definition = {k: v for k, v in asdict(geo).items() if k != "description"}
    return key("crop", definition, version)[:12]


def crop_key(sha256: str, geometry: str) -> str:
    """Cache key of one aligned crop: the source file's content digest and the geometry's definition."""
    return f"{sha256}:{geometry}-{geometry_key(geometry)}"


def _crop_file(root: Path, key_: str) -> Path | None:
    """The aligned-crop cache file a :func:`crop_key` names, or None when the key names no crop."""
    sha, _, rest = key_.partition(":")
    name = rest.rsplit("-", 1)[0]
    if name not in GEOMETRIES or crop_key(sha, name) != key_:
        return None
    return _shard(_geometry_dir(root, GEOMETRIES[name]), sha)


def cached_crop_keys(keys: Sequence[str], cache_dir: str | os.PathLike | None = None) -> bool:
    """Are all ``keys`` crop keys whose crops are in the aligned-crop cache (so a worker can read them)?"""
    root = default_cache_dir(cache_dir)
    files = [_crop_file(root, k) for k in keys]
    return all(f is not None and f.is_file() for f in files)


def cached_crops(keys: Sequence[str], cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The aligned uint8 crops (N, S, S, 3) named by ``keys`` (:func:`crop_key`), read from the cache."""
    root = default_cache_dir(cache_dir)
    crops = []
    for k in keys:
        path = _crop_file(root, k)
        entry = _read_cached(path, _CROP_ARRAYS) if path is not None else None
        if entry is None:
            raise FileNotFoundError(f"no cached crop for key {k} under {root} (align the image first)")
        crops.append(entry["crop"])
    return np.stack(crops)


def _geometry_dir(root: Path, geo: Geometry) -> Path:
    """Cache folder of one geometry; its name carries a hash of the definition, so edits invalidate it."""
    return root / "aligned" / f"{geo.name}-{geometry_key(geo)[:8]}"


def _detection_dir(root: Path) -> Path:
    """Cache folder of the detections; keyed by the detection code's version and downscaling limit."""
    return root / "detections" / f"mtcnn-{key('mtcnn', ALIGN_VERSION, MAX_DETECT_PIXELS)[:8]}"


_DETECTION_ARRAYS = ("found",)
_FOUND_ARRAYS = ("box", "landmarks", "prob", "n_faces", "index", "orientation")
_CROP_ARRAYS = ("crop", "matrix")


def _face_problem(det: dict[str, np.ndarray]) -> str | None:
    """Why a cached detection's face is rejected (implausible landmarks, not upright), or None."""
    return landmark_problem(det["landmarks"]) or str(det["orientation"].item()) or None


#: Cache files (detections, crops) a process keeps read: a crop is 77 KB at 160 x 160, so at most ~630 MB.
READ_MEMO_ENTRIES = 8192


def _read_cached(path: Path, required: Sequence[str]) -> dict[str, np.ndarray] | None:
    """:func:`read_npz` of a detection or crop file, remembered per process by (path, mtime, size): every
    notebook step reads the same crops again, and a rewritten file has a new stamp. Arrays are read-only."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _read_stamped(str(path), (stat.st_mtime_ns, stat.st_size), tuple(required))


@functools.lru_cache(maxsize=READ_MEMO_ENTRIES)
def _read_stamped(path: str, stamp: tuple[int, int], required: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    entry = read_npz(path, required)
    for array in (entry or {}).values():
        array.setflags(write=False)
    return entry


def _read_detection(path: Path) -> dict[str, np.ndarray] | None:
    """A cached detection (verified), or None to detect again."""
    det = _read_cached(path, _DETECTION_ARRAYS)
    if det is not None and det["found"] and any(k not in det for k in _FOUND_ARRAYS):
        log.warning("corrupt cache file %s: arrays missing: recomputing", path)
        return None
    return det


def align_paths(paths: Iterable[str | os.PathLike], geometries: Sequence[str] = tuple(GEOMETRIES),
                cache_dir: str | os.PathLike | None = None, device: str = "cpu",
                batch_size: int = 32) -> AlignmentResult:
    """Detect, choose and crop the face of each image in every geometry, cached per (file sha256, geometry).

    Every cache file is verified on read (a damaged one is logged and recomputed); faces with
    implausible landmarks (:func:`landmark_problem`) or not upright (:func:`orientation_problems`)
    are failures with the reason. At most
    ``batch_size`` images and :data:`LOAD_PIXELS` pixels are decoded at once.
    """
    geos = [_geometry(g) for g in geometries]
    root = default_cache_dir(cache_dir)
    det_root, geo_roots = _detection_dir(root), {g.name: _geometry_dir(root, g) for g in geos}
    unique = list(dict.fromkeys(Path(p) for p in paths))
    failed: dict[Path, str] = {}
    shas: dict[Path, str] = {}
    for p in tqdm(unique, desc="hash", unit="img", disable=len(unique) < 2000):
        try:
            shas[p] = file_sha256(p)
        except OSError as err:
            failed[p] = f"unreadable: {err}"
    dets: dict[Path, dict] = {}
    entries: dict[Path, dict[str, dict]] = {p: {} for p in shas}
    for p in shas:
        det = _read_detection(_shard(det_root, shas[p]))
        if det is None:
            continue
        dets[p] = det
        if det["found"] and not _face_problem(det):
            for g in geos:
                entry = _read_cached(_shard(geo_roots[g.name], shas[p]), _CROP_ARRAYS)
                if entry is not None:
                    entries[p][g.name] = entry
    todo = [p for p in shas if p not in dets or (dets[p]["found"] and not _face_problem(dets[p])
                                                 and len(entries[p]) < len(geos))]
    todo.sort(key=_image_size)  # equal sizes end up in the same MTCNN batch
    sizes = {p: max(1, int(np.prod(_image_size(p)))) for p in todo}
    ex = executor.current()
    if ex.distributed and todo:  # each in-process batch becomes a task; then read everything back here
        ex.run([functools.partial(_align_batch, [str(p) for p in chunk], list(geometries), str(root), device,
                                  batch_size) for chunk in _batches(todo, sizes, batch_size)], desc="align")
        with executor.in_process():
            return align_paths(paths, geometries, root, device, batch_size)
    with tqdm(total=len(todo), desc="align", unit="img", disable=not todo) as bar:
        for chunk in _batches(todo, sizes, batch_size):
            images = {}
            for q in chunk:
                try:
                    images[q] = load_image(q)
                except ValueError as err:
                    failed[q] = str(err)
            _detect_and_crop(images, shas, det_root, geos, geo_roots, device, dets, entries)
            bar.update(len(chunk))
    kept, rows = [], []
    for p in shas:
        if p in failed:
            continue
        det = dets[p]
        if not det["found"]:
            failed[p] = "no face detected"
            continue
        if problem := _face_problem(det):
            failed[p] = problem
            continue
        kept.append(p)
        rows.append(det)
    failures = [(p, failed[p]) for p in unique if p in failed]
    if failures:
        log.warning("alignment failed for %d of %d images: %s", len(failures), len(unique),
                    "; ".join(f"{p.name} ({why})" for p, why in failures[:5]))
    stack = {g.name: (g.size, g.size, 3) for g in geos}
    crops = {g.name: [entries[p][g.name]["crop"] for p in kept] for g in geos}
    mats = {g.name: [entries[p][g.name]["matrix"] for p in kept] for g in geos}
    return AlignmentResult(
        kept, [shas[p] for p in kept],
        {g: np.stack(c) if c else np.zeros((0, *stack[g]), np.uint8) for g, c in crops.items()},
        {g: np.stack(m) if m else np.zeros((0, 2, 3)) for g, m in mats.items()},
        np.stack([d["landmarks"] for d in rows]) if rows else np.zeros((0, 5, 2), np.float32),
        np.stack([d["box"] for d in rows]) if rows else np.zeros((0, 4), np.float32),
        failures,
        np.array([int(d["n_faces"]) for d in rows], np.int64),
        np.array([int(d["index"]) for d in rows], np.int64),
        np.array([float(d["prob"]) for d in rows], np.float32))


def _batches(todo: list[Path], sizes: dict[Path, int], batch_size: int) -> list[list[Path]]:
    """Consecutive batches of ``todo``: at most ``batch_size`` images and :data:`LOAD_PIXELS` pixels each
    (a larger image alone). The same batches in-process and on Dask workers: MTCNN sees the same inputs."""
    batches: list[list[Path]] = []
    for p in todo:
        if batches and len(batches[-1]) < batch_size and sum(sizes[q] for q in batches[-1]) + sizes[p] <= LOAD_PIXELS:
            batches[-1].append(p)
        else:
            batches.append([p])
    return batches


def _align_batch(paths: list[str], geometries: list[str], cache_dir: str, device: str, batch_size: int) -> None:
    """On a Dask worker: align one batch into the shared cache (:func:`align_paths` in that process)."""
    align_paths(paths, geometries, cache_dir, device, batch_size)


def _detect_and_crop(images: dict[Path, np.ndarray], shas: dict[Path, str], det_root: Path,
                     geos: Sequence[Geometry], geo_roots: dict[str, Path], device: str,
                     dets: dict[Path, dict], entries: dict[Path, dict[str, dict]]) -> None:
    """Detect (where not cached) and crop one batch of loaded images, filling the caches and ``dets``/``entries``."""
    need = [p for p in images if p not in dets]
    for p, det in zip(need, detect_faces([images[p] for p in need], device) if need else []):
        if det is None:
            dets[p] = {"found": np.array(False)}
        else:
            dets[p] = {"found": np.array(True), "box": det.box, "landmarks": det.landmarks,
                       "prob": np.array(det.prob), "n_faces": np.array(det.n_faces), "index": np.array(det.index),
                       "orientation": np.array(det.orientation)}
        save_npz(_shard(det_root, shas[p]), **dets[p])
    for p, image in images.items():
        det = dets[p]
        if not det["found"] or _face_problem(det):
            continue
        for g in geos:
            if g.name not in entries[p]:
                crop, matrix = crop_face(image, g.name, det["landmarks"], det["box"])
                save_npz(_shard(geo_roots[g.name], shas[p]), crop=crop, matrix=matrix)
                entries[p][g.name] = {"crop": crop, "matrix": matrix}
