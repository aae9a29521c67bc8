"""facexai: helper library of the explainable-face-recognition study.

Modules, one job each: ``data`` (datasets, pairs), ``align`` (MTCNN and warps), ``models``
(registry, converters), ``explain`` (LEAM, CAMs, RISE), ``parsing``, ``metrics``,
``occlusion``, ``cache``, ``plots``, ``profiles``.
"""
from facexai.tv_compat import ensure_torchvision

ensure_torchvision()

__version__ = "0.1.0"
