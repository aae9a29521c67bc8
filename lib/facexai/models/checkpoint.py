"""Reading user-supplied PyTorch checkpoints (plain state_dicts saved with ``torch.save``) with clear errors;
the shapes-only template the converters check a vendor file against."""
from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def read_state_dict(path: Path, obtain: str) -> dict[str, torch.Tensor]:
    """Load a name -> tensor dict from ``path``; errors name the file, and ``obtain`` says where to get it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}. Obtain '{path.name}' from {obtain}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise ValueError(f"{path} is not a PyTorch checkpoint readable with torch.load: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a plain state_dict (every value a tensor), got a "
                         f"{type(state).__name__}; save one with torch.save(model.state_dict(), path)")
    return state


def shapes_only(build: Callable[[], nn.Module], template: nn.Module | None = None) -> nn.Module:
    """``build()`` on the meta device: the names, shapes and attributes a converter checks a vendor file against,
    or a model whose every tensor a state_dict will set, without initialising weights that would be discarded
    (FN_C: 0.15 s of random initialisation). ``template``, when given, is such a module built already (what
    :func:`~facexai.models.registry.load_model` passes a converter, then fills): returned as it is."""
    if template is not None:
        return template
    with torch.device("meta"):
        return build()


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> nn.Module:
    """``model.load_state_dict(state, strict=True)``; a mismatch becomes a ValueError naming the file."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {what}: {err}") from err
    return model
