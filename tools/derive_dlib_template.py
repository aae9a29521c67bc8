"""Derive facexai.align.DLIB150_TEMPLATE: where dlib's 150x150 face chip puts MTCNN's 5 landmarks.

Usage: python tools/derive_dlib_template.py [--lfw ../shared/data/lfw/lfw-deepfunneled] [--n 50]
For one image of each of n LFW people (seed 0): dlib's frontal detector + 5-point shape predictor
(face_recognition_models) give get_face_chip_details(size=150, padding=0.25); its rectangle and angle
give the source->chip matrix, checked against dlib.get_face_chip pixel by pixel; MTCNN's landmarks of
the same face are mapped through that matrix; the template is their mean (printed with its spread).
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import cv2
import dlib
import numpy as np

from facexai.align import detect_faces
from facexai.data import load_image, load_lfw, select_identities

REPO = Path(__file__).resolve().parents[1]
SIZE, PADDING = 150, 0.25


def chip_matrix(details: dlib.chip_details) -> np.ndarray:
    """Source->chip 2x3 matrix of dlib chip details: the rectangle rotated by ``angle`` about its centre."""
    r = details.rect
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]])
    centre = corners[[0, 2]].mean(0)
    c, s = np.cos(details.angle), np.sin(details.angle)
    src = (corners - centre) @ np.array([[c, s], [-s, c]]) + centre
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]])
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared/data/lfw/lfw-deepfunneled")
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    dataset = load_lfw(args.lfw, verify=False)
    names = select_identities(dataset, args.n, min_images=1, seed=0)
    images = [load_image(dataset.identities[n][0]) for n in names]
    points, errors = [], []
    for name, image, det in zip(names, images, detect_faces(images)):
        faces = detector(image, 1)
        if det is None or not faces:
            print(f"skip {name}: {'MTCNN' if det is None else 'dlib'} found no face")
            continue
        centre = (det.box[:2] + det.box[2:]) / 2
        face = min(faces, key=lambda f: np.hypot(f.center().x - centre[0], f.center().y - centre[1]))
        details = dlib.get_face_chip_details(predictor(image, face), SIZE, PADDING)
        matrix = chip_matrix(details)
        ours = cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        errors.append(np.abs(ours.astype(float) - dlib.get_face_chip(image, predictor(image, face), SIZE, PADDING)).mean())
        points.append(det.landmarks @ matrix[:, :2].T + matrix[:, 2])
    points = np.array(points)
    print(f"{len(points)} faces; our warp vs dlib's chip: mean |diff| {np.mean(errors):.2f} grey levels "
          f"(max {np.max(errors):.2f})")
    print("template (mean):\n", np.round(points.mean(0), 4).tolist())
    print("spread (std, px):\n", np.round(points.std(0), 2).tolist())


if __name__ == "__main__":
    main()
