"""dlib's face recognition ResNet-29 (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The network is ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7/2 stem, residual
levels of 32, 64, 128, 256 and 256 channels, a global average pool and a 256->128 linear map
without bias. Its frozen batch norms are dlib ``affine_`` layers (per-channel scale + shift),
kept here as :class:`Affine` modules. ``convert`` reads dlib's own binary serialisation.

dlib conventions kept on purpose: strided convolutions and pools have no padding, and a residual
sum of two tensors of different shapes is zero-padded to the larger one (dlib's ``add_prev``),
which happens in the down-sampling blocks of ``level1`` (3x3 + 4x4) and ``level0`` (1x1 + 2x2).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facexai.models.checkpoint import shapes_only

INPUT_SIZE = 150
EMBEDDING_DIM = 128
# input_rgb_image_sized<150>: per-channel means (R, G, B) subtracted before dividing by 256.
MEAN_RGB = (122.782, 117.001, 104.298)
SCALE = 256.0

# (channels, blocks) per level, input to output; the first block of every level but level4
# down-samples (stride-2 convolution, 2x2 average pool on the shortcut).
LEVELS = (("level4", 32, 3), ("level3", 64, 4), ("level2", 128, 3), ("level1", 256, 3),
          ("level0", 256, 1))

#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {"stem": "relu1", "pool": "pool"}
LAYERS.update({f"{name}_{i}": f"{name}.{i}" for name, _, blocks in LEVELS for i in range(blocks)})


class Affine(nn.Module):
    """dlib ``affine_`` in conv mode: per-channel ``x * weight + bias`` (a frozen batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum of two NCHW tensors, each zero-padded (at the end) to the larger shape."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - n for s, n in zip(shape, t.shape[1:]))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a) + pad(b)


class ResBlock(nn.Module):
    """dlib ``ares`` / ``ares_down``: relu(block(x) + shortcut(x)), block = conv-affine-relu-conv-affine."""

    def __init__(self, in_channels: int, channels: int, down: bool) -> None:
        super().__init__()
        stride, padding = (2, 0) if down else (1, 1)
        self.conv_a = nn.Conv2d(in_channels, channels, 3, stride, padding)
        self.affine_a = Affine(channels)
        self.relu_a = nn.ReLU()
        self.conv_b = nn.Conv2d(channels, channels, 3, 1, 1)
        self.affine_b = Affine(channels)
        self.shortcut = nn.AvgPool2d(2, 2) if down else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine_b(self.conv_b(self.relu_a(self.affine_a(self.conv_a(x)))))
        return self.relu(padded_add(y, self.shortcut(x)))


class DlibResNet(nn.Module):
    """ResNet-29 backbone: preprocessed (N,3,150,150) -> raw 128-d embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 0)
        self.affine1 = Affine(32)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2)
        in_channels = 32
        for name, channels, blocks in LEVELS:
            down = name != "level4"
            level = [ResBlock(in_channels if i == 0 else channels, channels, down and i == 0)
                     for i in range(blocks)]
            self.add_module(name, nn.Sequential(*level))
            in_channels = channels
        self.fc = nn.Linear(in_channels, EMBEDDING_DIM, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu1(self.affine1(self.conv1(x))))
        for name, _, _ in LEVELS:
            x = getattr(self, name)(x)
        return self.fc(x.mean(dim=(2, 3)))


def build() -> DlibResNet:
    """The randomly initialised float32 backbone."""
    return DlibResNet()


class Preprocess(nn.Module):
    """RGB [0,255] NCHW -> (x - mean_rgb) / 256, as dlib's ``input_rgb_image_sized`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / SCALE


# ---------------------------------------------------------------- dlib serialisation reader

class _Reader:
    """Cursor over dlib's ``serialize()`` stream (ints, float_details, strings, bools, tensors)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated: needed {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def read_int(self) -> int:
        """dlib pack_int: a header byte (low 4 bits = byte count, 0x80 = negative), then LE bytes."""
        head = self.take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise ValueError(f"bad integer header 0x{head:02x} at offset {self.pos - 1}")
        value = int.from_bytes(self.take(size), "little")
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        """dlib float_details: int64 mantissa and int16 exponent, value = mantissa * 2**exponent."""
        mantissa, exponent = self.read_int(), self.read_int()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(mantissa, exponent)

    def read_str(self) -> str:
        n = self.read_int()
        if not 0 <= n <= 256:
            raise ValueError(f"implausible string length {n} at offset {self.pos}")
        return self.take(n).decode("ascii", errors="replace")

    def read_bool(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise ValueError(f"bad bool byte {c!r} at offset {self.pos - 1}")
        return c == b"1"

    def read_tensor(self) -> np.ndarray:
        """resizable_tensor, version 2: (n, k, nr, nc) then little-endian float32 data."""
        self.expect(self.read_int(), 2, "tensor version")
        shape = tuple(self.read_int() for _ in range(4))
        count = math.prod(shape)
        if min(shape) < 0 or count * 4 > len(self.data) - self.pos:
            raise ValueError(f"truncated or bad tensor {shape} at offset {self.pos}")
        return np.frombuffer(self.take(count * 4), "<f4").reshape(shape)

    def read_alias(self) -> tuple[int, ...]:
        """alias_tensor, version 1: just its (n, k, nr, nc)."""
        self.expect(self.read_int(), 1, "alias_tensor version")
        return tuple(self.read_int() for _ in range(4))

    def expect(self, got: object, want: object, what: str) -> None:
        if got != want:
            raise ValueError(f"expected {what} {want!r}, found {got!r} (offset {self.pos})")


def _read_details(r: _Reader) -> tuple[tuple, list[np.ndarray]]:
    """One layer's details: (kind and config, [weight arrays]) for the layer kinds this net uses."""
    name = r.read_str()
    if name == "con_4":  # params, num_filters, nr, nc, stride y/x, padding y/x, filters, biases, 4 lr/wd
        params = r.read_tensor().ravel()
        cfg = tuple(r.read_int() for _ in range(7))
        filters, biases = r.read_alias(), r.read_alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.read_float()
        n_w = math.prod(filters)
        if params.size != n_w + math.prod(biases):
            raise ValueError(f"con_ params size {params.size} != filters {filters} + biases {biases}")
        return ("con", *cfg), [params[:n_w].reshape(filters), params[n_w:]]
    if name == "affine_":  # params = [gamma | beta], gamma alias, beta alias, mode (0 = conv)
        params = r.read_tensor().ravel()
        gamma, _, mode = r.read_alias(), r.read_alias(), r.read_int()
        c = math.prod(gamma)
        return ("affine", c, mode), [params[:c], params[c:]]
    if name in ("relu_", "add_prev_"):
        return (name.rstrip("_"),), []
    if name in ("max_pool_2", "avg_pool_2"):  # nr, nc, stride y/x, padding y/x (nr = 0: everything)
        return (name[:-2], *(r.read_int() for _ in range(6))), []
    if name == "fc_2":  # num_outputs, num_inputs, params, weights, biases, bias mode, 4 lr/wd
        outputs, inputs = r.read_int(), r.read_int()
        params = r.read_tensor().ravel()
        _, _, bias_mode = r.read_alias(), r.read_alias(), r.read_int()  # weights, biases aliases
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.read_float()
        if bias_mode != 1 or params.size != inputs * outputs:
            raise ValueError(f"fc_ with bias or wrong size ({bias_mode}, {params.size})")
        # dlib computes out = x @ W with W of shape (num_inputs, num_outputs)
        return ("fc", outputs, inputs), [params.reshape(inputs, outputs).T]
    raise ValueError(f"unexpected layer {name!r} at offset {r.pos}")


def _read_layers(data: bytes) -> list[tuple[tuple, list[np.ndarray]]]:
    """All layer details of a serialised ``loss_metric`` net, from input to output."""
    r = _Reader(data)
    r.expect(r.read_int(), 1, "add_loss_layer version")
    r.expect(r.read_str(), "loss_metric_2", "loss layer")
    for _ in range(2):  # margin, distance threshold
        r.read_float()
    # add_layer (2), add_tag_layer / add_skip_layer (1) serialise their version, then the subnet
    # first, so all versions come first, down to the input add_layer (3).
    n_layers = 0
    while (version := r.read_int()) != 3:
        if version not in (1, 2):
            raise ValueError(f"unexpected layer version {version} at offset {r.pos}")
        n_layers += version == 2
    r.expect(r.read_str(), "input_rgb_image_sized", "input layer")
    mean, size = tuple(r.read_float() for _ in range(3)), (r.read_int(), r.read_int())
    if not np.allclose(mean, MEAN_RGB, atol=1e-4) or size != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"input layer mean {mean} / size {size}, expected {MEAN_RGB} / 150")
    layers = []
    for i in range(n_layers + 1):  # details then setup flags and (cleared) cached tensors
        layers.append(_read_details(r))
        for _ in range(3):
            r.read_bool()
        for _ in range(3):
            r.read_tensor()
        if i == 0:
            r.read_int()  # sample expansion factor of the input add_layer
    if r.pos != len(data):
        raise ValueError(f"{len(data) - r.pos} unexpected trailing bytes")
    return layers


def _expected_kinds() -> list[tuple]:
    """The (kind, config) sequence dlib stores for anet_type, input to output."""
    kinds: list[tuple] = [("con", 32, 7, 7, 2, 2, 0, 0), ("affine", 32, 0), ("relu",),
                          ("max_pool", 3, 3, 2, 2, 0, 0)]
    for name, channels, blocks in LEVELS:
        for i in range(blocks):
            down = name != "level4" and i == 0
            s, p = (2, 0) if down else (1, 1)
            kinds += [("con", channels, 3, 3, s, s, p, p), ("affine", channels, 0), ("relu",),
                      ("con", channels, 3, 3, 1, 1, 1, 1), ("affine", channels, 0)]
            kinds += [("avg_pool", 2, 2, 2, 2, 0, 0)] if down else []
            kinds += [("add_prev",), ("relu",)]
    return kinds + [("avg_pool", 0, 0, 1, 1, 0, 0), ("fc", EMBEDDING_DIM, 256)]


def convert(source: Path, template: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Parse dlib's ``.dat`` and return a state_dict for :func:`build` (strict load succeeds).

    ``template``: the architecture to check against (:func:`~facexai.models.checkpoint.shapes_only`).
    """
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"dlib face recognition model not found: {source}")
    try:
        layers = _read_layers(source.read_bytes())
        expected = _expected_kinds()
        for i, ((kind, _), want) in enumerate(zip(layers, expected)):
            if kind != want:
                raise ValueError(f"layer {i} is {kind}, expected {want}")
        if len(layers) != len(expected):
            raise ValueError(f"{len(layers)} layers, expected {len(expected)}")
    except ValueError as err:
        raise ValueError(f"{source}: not dlib's face recognition ResNet-29 .dat ({err})") from err
    arrays = [a for _, weights in layers for a in weights]
    template = shapes_only(build, template)
    params = template.named_parameters()  # registration order = file order (input to output)
    return {name: torch.from_numpy(np.array(a, dtype=np.float32)) for (name, _), a in zip(params, arrays)}
