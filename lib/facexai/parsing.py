"""Face parsing: a region label per pixel of an aligned face crop, with CelebAMask-HQ class names.

Two landmark parsers turn facial landmarks into region polygons (defined once, below) that are
rasterised in one fixed order, skin first and the parts on top, so every pixel gets exactly one
class: ``mediapipe`` (FaceMesh, 478 landmarks; the default) and ``dlib`` (68-point predictor).
Landmarks cover skin, brows, eyes, nose, lips and the inner mouth only; background, hair, ears
and neck all stay ``other``. :mod:`facexai.parsing_bisenet` loads the CelebAMask-HQ BiSeNet for
users who have its weights.

Left and right are the SUBJECT's sides everywhere in this package: ``left_eye`` is the person's
own left eye, which an unmirrored photo shows on the image's right (larger x). This is how
CelebAMask-HQ's ``l_eye``/``r_eye`` are read by face-crop-plus, whose BiSeNet documentation says
the 19 labels are "indicated from a person's face perspective, meaning, for instance, left eye is
the eye on the right hand-side of the picture, however, sides are not always accurate"
(mantasu.github.io/face-crop-plus, face_crop_plus.models.bise). The dataset's own pages do not
state it and at least one downstream project relabels index 2/4 as right brow/eye, so treat the
CelebAMask-HQ side as this documented reading, not as a checked fact. MediaPipe names its
landmark groups the same way (FACEMESH_LEFT_EYE lies at larger x); dlib's 68-point scheme lists
the image-left eye, the subject's right, first (points 36-41). tests/test_parsing.py checks the
sides on real crops against MTCNN's eye points.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facexai.align import GEOMETRIES
from facexai.cache import cache_dir, key, read_npz, save_npz
from facexai.models.registry import PackagedWeights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceClass:
    """One label: integer id, name, display colour (RGB) and the CelebAMask-HQ label(s) it stands for."""

    id: int
    name: str
    color: tuple[int, int, int]
    celebamask: str


# Colours follow CelebAMask-HQ's own colour table for the corresponding labels.
CLASSES: tuple[FaceClass, ...] = (
    FaceClass(0, "other", (0, 0, 0), "background, hair, hat, ears, earring, eye_g, neck, necklace, cloth"),
    FaceClass(1, "skin", (204, 0, 0), "skin"),
    FaceClass(2, "left_brow", (0, 255, 255), "l_brow"),
    FaceClass(3, "right_brow", (255, 204, 204), "r_brow"),
    FaceClass(4, "left_eye", (51, 51, 255), "l_eye"),
    FaceClass(5, "right_eye", (204, 0, 204), "r_eye"),
    FaceClass(6, "nose", (76, 153, 0), "nose"),
    FaceClass(7, "upper_lip", (255, 255, 0), "u_lip"),
    FaceClass(8, "lower_lip", (0, 0, 153), "l_lip"),
    FaceClass(9, "inner_mouth", (102, 204, 0), "mouth"),
)
CLASS_NAMES: list[str] = [c.name for c in CLASSES]
CLASS_IDS: dict[str, int] = {c.name: c.id for c in CLASSES}
PALETTE = np.array([c.color for c in CLASSES], dtype=np.uint8)
# Later regions are painted over earlier ones; "other" is whatever no region covers.
PAINT_ORDER = ("skin", "right_brow", "left_brow", "right_eye", "left_eye", "nose",
               "upper_lip", "lower_lip", "inner_mouth")


@dataclass(frozen=True)
class Region:
    """Landmark indices of one region's polygon, in drawing order (or as a point set whose hull is filled)."""

    indices: tuple[int, ...]
    hull: bool = False


# MediaPipe FaceMesh indices (the contours of mediapipe's face_mesh_connections, closed into
# polygons). The iris points (468-477) are not used: the eyes are the eyelid contours.
MEDIAPIPE_REGIONS: dict[str, Region] = {
    "skin": Region((10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                    400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                    54, 103, 67, 109)),  # FACEMESH_FACE_OVAL
    "right_brow": Region((70, 63, 105, 66, 107, 55, 65, 52, 53, 46)),  # upper edge, then lower edge back
    "left_brow": Region((300, 293, 334, 296, 336, 285, 295, 282, 283, 276)),
    "right_eye": Region((33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)),
    "left_eye": Region((263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)),
    # FACEMESH_NOSE: bridge from between the eyes (168) down the midline, plus the alar outline
    "nose": Region((168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440,
                    275, 45, 220, 115, 48, 64), hull=True),
    "upper_lip": Region((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,  # outer, left to right
                         308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78)),  # inner, back
    "lower_lip": Region((61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291,
                         308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)),
    "inner_mouth": Region((78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
                           324, 318, 402, 317, 14, 87, 178, 88, 95)),
}

# dlib's 68 points have no brow thickness and stop at the brows, so polygons use 30 derived points:
# 68-77 / 78-87 = brow points 17-26 moved up / down by DLIB_BROW_HALF_WIDTH, 88-97 = brow points
# moved up by DLIB_FOREHEAD (both x the distance between the eye centres, along the face's vertical,
# perpendicular to the eye line). Derived on 100 aligned data/lfw_sample crops: MediaPipe's brow
# contours lie 0.030-0.035 above and 0.037-0.050 below dlib's brow points, and MediaPipe's top of
# the face oval (point 10) 0.50-0.56 above their mean.
DLIB_BROW_HALF_WIDTH = 0.04
DLIB_FOREHEAD = 0.5
DLIB_REGIONS: dict[str, Region] = {
    "skin": Region((*range(0, 17), *range(97, 87, -1))),  # jaw line, then the raised brows back
    "right_brow": Region((*range(68, 73), *range(82, 77, -1))),  # points 17-21: image left
    "left_brow": Region((*range(73, 78), *range(87, 82, -1))),  # points 22-26
    "right_eye": Region(tuple(range(36, 42))),
    "left_eye": Region(tuple(range(42, 48))),
    "nose": Region(tuple(range(27, 36)), hull=True),  # bridge 27-30 and nostrils 31-35
    "upper_lip": Region((48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)),
    "lower_lip": Region((54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64)),
    "inner_mouth": Region(tuple(range(60, 68))),
}
REGIONS: dict[str, dict[str, Region]] = {"mediapipe": MEDIAPIPE_REGIONS, "dlib": DLIB_REGIONS}
METHODS: tuple[str, ...] = tuple(REGIONS)
N_LANDMARKS = {"mediapipe": 478, "dlib": 68}

# Landmarkers see the crop inside a black border of PAD x its side: the face detectors in front of
# both landmark models want context around the face (without it MediaPipe missed 1 of the 903
# sample crops, with it none). MediaPipe's input is then upscaled to at least MIN_SIDE, its
# landmark model's input size; on the sample this changed nothing measurable (crop landmarks agree
# with those found on the full 250x250 image to ~0.5% of the crop side either way).
PAD = 0.25
MIN_SIDE = 192
# Where dlib's frontal detector puts the face (x0, y0, x1, y1 as fractions of the crop side):
# medians over the 301 aligned faces of data/lfw_sample. Used only when the detector finds no face
# at its normal threshold (2 of those 903 crops) but a weak detection (score >= DLIB_WEAK_SCORE)
# overlaps this box with IoU >= 0.5: a weak box itself can sit on one eye, and requiring the overlap
# keeps noise images out (the best overlap of 60 noise / flat images was 0.44).
DLIB_FIXED_BOXES = {"arcface112": (0.0714, 0.25, 0.875, 0.9821),
                    "facenet160": (0.1688, 0.175, 0.8875, 0.9188),
                    "dlib150": (0.1067, 0.1067, 0.9667, 0.8733)}
DLIB_WEAK_SCORE = -1.0
SHAPE_PREDICTOR = PackagedWeights("face_recognition_models", "face-recognition-models==0.3.0",
                                  "models/shape_predictor_68_face_landmarks.dat",
                                  "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f")


@dataclass
class ParseResult:
    """Label maps of N crops; images whose face was not found are all ``other`` and ``ok`` False."""

    labels: np.ndarray  # (N, H, W) uint8 class ids
    landmarks: np.ndarray  # (N, K, 2) float32 crop pixels (pixel centres at integers), NaN where failed
    ok: np.ndarray  # (N,) bool
    method: str
    reasons: dict[int, str] = field(default_factory=dict)  # why each failed image failed
    notes: dict[int, str] = field(default_factory=dict)  # remarks on parsed images (e.g. dlib's fixed box)

    @property
    def failed(self) -> list[int]:
        """Indices of the images whose face the parser could not find."""
        return [int(i) for i in np.flatnonzero(~self.ok)]

    def area_shares(self) -> pd.DataFrame:
        """:func:`region_area_shares` of the parsed images (row index = image index)."""
        return region_area_shares(self.labels, self.ok)


def _pad(crop: np.ndarray) -> tuple[np.ndarray, int]:
    pad = int(round(PAD * max(crop.shape[:2])))
    return cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), pad


@functools.lru_cache(maxsize=1)
def _face_mesh():
    import mediapipe as mp  # heavy import, only when parsing with it

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1)


def _mediapipe_landmarks(crop: np.ndarray) -> tuple[np.ndarray | None, str]:
    """478 FaceMesh landmarks in crop pixels, or None and the reason."""
    image, pad = _pad(crop)
    h, w = image.shape[:2]
    scale = MIN_SIDE / min(h, w)
    if scale > 1:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    found = _face_mesh().process(np.ascontiguousarray(image)).multi_face_landmarks
    if not found:
        return None, "MediaPipe FaceMesh found no face"
    norm = np.array([(p.x, p.y) for p in found[0].landmark], dtype=np.float64)
    # normalised coordinates do not depend on the upscaling; -0.5 puts pixel centres at integers
    return norm * [w, h] - 0.5 - pad, ""


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib  # only when parsing with it

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(SHAPE_PREDICTOR.verified()))


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _dlib_fixed_box(detector, image: np.ndarray, pad: int, crop_shape: tuple[int, ...]
                    ) -> tuple[tuple[int, int, int, int] | None, str]:
    """The geometry's fixed face box (padded-image pixels) when a weak detection confirms it, else None and why."""
    h, w = crop_shape[:2]
    geometry = next((g.name for g in GEOMETRIES.values() if (g.size, g.size) == (h, w)), None)
    if geometry is None:
        return None, (f"dlib frontal detector found no face (and no fixed box for {h}x{w} crops; "
                      f"known: {sorted(DLIB_FIXED_BOXES)})")
    box = tuple(int(round(v)) for v in np.array(DLIB_FIXED_BOXES[geometry]) * [w, h, w, h] + pad)
    for upsample in (0, 1):
        weak, _, _ = detector.run(image, upsample, DLIB_WEAK_SCORE)
        if any(_box_iou(box, (r.left(), r.top(), r.right(), r.bottom())) >= 0.5 for r in weak):
            return box, ""
    return None, "dlib frontal detector found no face"


def _dlib_landmarks(crop: np.ndarray) -> tuple[np.ndarray | None, str]:
    """68 dlib landmarks in crop pixels (message notes a fixed-box fallback), or None and the reason."""
    import dlib

    detector, predictor = _dlib_models()
    image, pad = _pad(crop)
    boxes, _, _ = detector.run(image, 1, 0.0)
    note = ""
    if boxes:
        rect = max(boxes, key=lambda r: r.area())
    else:
        box, reason = _dlib_fixed_box(detector, image, pad, crop.shape)
        if box is None:
            return None, reason
        rect, note = dlib.rectangle(*box), "dlib detector missed; fixed geometry box used"
    shape = predictor(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) - pad, note


_LANDMARKERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray | None, str]]] = {
    "mediapipe": _mediapipe_landmarks, "dlib": _dlib_landmarks}


def _dlib_polygon_points(points: np.ndarray) -> np.ndarray:
    """The 68 points plus the 30 derived brow-band and forehead points that DLIB_REGIONS index."""
    left, right = points[36:42].mean(0), points[42:48].mean(0)  # image-left and image-right eye
    span = np.linalg.norm(right - left)
    axis = (right - left) / span
    down = np.array([-axis[1], axis[0]]) * span
    brows = points[17:27]
    return np.vstack([points, brows - DLIB_BROW_HALF_WIDTH * down, brows + DLIB_BROW_HALF_WIDTH * down,
                      brows - DLIB_FOREHEAD * down])


def _check_method(method: str) -> None:
    if method not in REGIONS:
        raise ValueError(f"unknown parsing method {method!r}; valid: {list(METHODS)} "
                         "(BiSeNet: facexai.parsing_bisenet)")


def region_polygons(landmarks: np.ndarray, method: str = "mediapipe") -> dict[str, np.ndarray]:
    """Each region's polygon (K, 2) float32 in crop pixels (hull regions as their convex hull)."""
    _check_method(method)
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (N_LANDMARKS[method], 2):
        raise ValueError(f"{method} needs ({N_LANDMARKS[method]}, 2) landmarks, got {points.shape}")
    if method == "dlib":
        points = _dlib_polygon_points(points)
    polygons = {}
    for name, region in REGIONS[method].items():
        poly = points[list(region.indices)].astype(np.float32)
        polygons[name] = cv2.convexHull(poly)[:, 0, :] if region.hull else poly
    return polygons


def region_masks(landmarks: np.ndarray, shape: tuple[int, int], method: str = "mediapipe") -> dict[str, np.ndarray]:
    """Each region's filled polygon as an (H, W) bool mask, before painting (regions may overlap here)."""
    masks = {}
    for name, poly in region_polygons(landmarks, method).items():
        canvas = np.zeros(shape, np.uint8)
        # 4 fractional bits keep sub-pixel landmark positions; vertices use pixel-centre coordinates
        cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        masks[name] = canvas.astype(bool)
    return masks


def labels_from_landmarks(landmarks: np.ndarray, shape: tuple[int, int], method: str = "mediapipe") -> np.ndarray:
    """(H, W) uint8 label map: the region masks painted in PAINT_ORDER over ``other``."""
    labels = np.zeros(shape, np.uint8)
    masks = region_masks(landmarks, shape, method)
    for name in PAINT_ORDER:
        labels[masks[name]] = CLASS_IDS[name]
    return labels


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"crops must be a uint8 RGB array (N, H, W, 3), got {crops.dtype} {crops.shape}")
    return crops


def parse(crops: np.ndarray, method: str = "mediapipe", progress: bool = True) -> ParseResult:
    """Label maps of aligned face crops (N, H, W, 3) uint8 RGB; faces not found are reported, not raised."""
    crops = _check_crops(crops)
    _check_method(method)
    n, h, w = crops.shape[:3]
    labels = np.zeros((n, h, w), np.uint8)
    landmarks = np.full((n, N_LANDMARKS[method], 2), np.nan, np.float32)
    ok = np.zeros(n, bool)
    reasons, notes = {}, {}
    for i in tqdm(range(n), desc=f"parse ({method})", unit="face", disable=not progress):
        points, message = _LANDMARKERS[method](crops[i])
        if points is None:
            reasons[i] = message
            continue
        ok[i], landmarks[i] = True, points
        labels[i] = labels_from_landmarks(points, (h, w), method)
        if message:
            notes[i] = message
    if reasons:
        log.warning("%s parsing failed for %d of %d crops: %s", method, len(reasons), n,
                    "; ".join(f"#{i} ({why})" for i, why in list(reasons.items())[:5]))
    return ParseResult(labels, landmarks, ok, method, reasons, notes)


def definition_key(method: str) -> str:
    """Hash of everything that shapes a method's label maps (cache folders carry it, so edits invalidate)."""
    _check_method(method)
    settings = {"regions": {k: asdict(v) for k, v in REGIONS[method].items()}, "order": PAINT_ORDER,
                "pad": PAD, "min_side": MIN_SIDE, "n": N_LANDMARKS[method]}
    if method == "dlib":
        settings.update(brow=DLIB_BROW_HALF_WIDTH, forehead=DLIB_FOREHEAD, boxes=DLIB_FIXED_BOXES,
                        weak=DLIB_WEAK_SCORE, predictor=SHAPE_PREDICTOR.sha256)
    return key(method, settings)


def cached_parse(crops: np.ndarray, keys: Sequence[str], method: str = "mediapipe",
                 cache_root: str | Path | None = None, progress: bool = True) -> ParseResult:
    """:func:`parse` with one atomically written cache file per crop key (e.g. ``"<sha256>:<geometry>"``)."""
    crops = _check_crops(crops)
    keys = [str(k) for k in keys]
    if len(keys) != len(crops):
        raise ValueError(f"{len(keys)} keys for {len(crops)} crops")
    folder = cache_dir(cache_root) / "parsing" / f"{method}-{definition_key(method)[:8]}"
    paths = [folder / h[:2] / f"{h}.npz" for h in (key(k) for k in keys)]
    entries = [read_npz(p, ("labels", "landmarks", "ok", "message")) for p in paths]  # None: absent or corrupt
    todo = [i for i, e in enumerate(entries) if e is None]
    if todo:
        fresh = parse(crops[todo], method, progress)
        for j, i in enumerate(todo):
            entries[i] = dict(labels=fresh.labels[j], landmarks=fresh.landmarks[j], ok=np.array(fresh.ok[j]),
                              message=np.array(fresh.reasons.get(j) or fresh.notes.get(j, "")))
            save_npz(paths[i], **entries[i])
    for k, entry in zip(keys, entries):
        if entry["labels"].shape != crops.shape[1:3]:
            raise ValueError(f"cached labels for key {k!r} are {entry['labels'].shape}, the crop is "
                             f"{crops.shape[1:3]}: the same key was used for crops of another size")
    ok = np.array([bool(e["ok"]) for e in entries])
    messages = {i: str(e["message"]) for i, e in enumerate(entries) if str(e["message"])}
    return ParseResult(np.stack([e["labels"] for e in entries]), np.stack([e["landmarks"] for e in entries]),
                       ok, method, {i: m for i, m in messages.items() if not ok[i]},
                       {i: m for i, m in messages.items() if ok[i]})


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    out_of_range = labels.size > 0 and (labels.min() < 0 or labels.max() >= len(CLASSES))
    if not np.issubdtype(labels.dtype, np.integer) or out_of_range:
        raise ValueError(f"labels must be integer class ids 0..{len(CLASSES) - 1} ({CLASS_NAMES})")
    return labels


def region_area_shares(labels: np.ndarray, ok: np.ndarray | None = None) -> pd.DataFrame:
    """Fraction of each image's pixels in each class (rows sum to 1); rows where ``ok`` is False are dropped."""
    labels = _check_labels(labels)
    labels = labels.reshape(-1, *labels.shape[-2:])
    counts = np.zeros((len(labels), len(CLASSES)))
    for i, lab in enumerate(labels):
        counts[i] = np.bincount(lab.ravel(), minlength=len(CLASSES))
    shares = pd.DataFrame(counts / (labels.shape[1] * labels.shape[2]), columns=CLASS_NAMES)
    shares.index.name = "image"
    return shares if ok is None else shares[np.asarray(ok, bool)]


def colorize(labels: np.ndarray) -> np.ndarray:
    """RGB uint8 picture (..., 3) of label maps, in the CLASSES colours."""
    return PALETTE[_check_labels(labels)]


def compare_parsers(labels_a: np.ndarray, labels_b: np.ndarray, names: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """Per-class agreement of two parsers on the same crops: pooled IoU, mean per-image IoU, mean area shares."""
    a, b = _check_labels(labels_a), _check_labels(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    rows = {}
    for c in CLASSES:
        ma, mb = a == c.id, b == c.id
        inter, union = (ma & mb).sum((1, 2)), (ma | mb).sum((1, 2))
        per_image = inter[union > 0] / union[union > 0]
        rows[c.name] = {"iou": inter.sum() / union.sum() if union.sum() else np.nan,
                        "iou_image_mean": per_image.mean() if len(per_image) else np.nan,
                        f"share_{names[0]}": ma.mean(), f"share_{names[1]}": mb.mean()}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "class"
    return frame
