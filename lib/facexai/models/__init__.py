"""Face recognition models: the registry (``registry``) and one converter or loader module per family."""
from facexai.models.registry import MODELS, PACKAGED, FaceModel, ModelSpec, WeightsError, get_spec, load_model

__all__ = ["MODELS", "PACKAGED", "FaceModel", "ModelSpec", "WeightsError", "get_spec", "load_model"]
