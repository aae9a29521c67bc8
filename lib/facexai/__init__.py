"""facexai: helper library of the explainable-face-recognition study.

Modules, one job each, in the order the data flows:

- inputs: ``data`` (datasets, pairs), ``align`` (MTCNN and the crop geometries), ``study`` (the
  selected people, images, pairs and crops), ``models`` (registry, converters, user checkpoints),
  ``embed`` (cached embeddings), ``verification`` (pair scores, k-fold accuracy), ``thresholds``
  (operating points), ``metrics``.
- explanations: ``explain`` (LEAM, the Grad-CAM family, the RISE family, targets),
  ``techniques`` (the registry of techniques and their settings), ``saliency`` (cached image maps),
  ``person_maps`` (one map per individual), ``lattice`` (the stride artefact).
- analyses: ``parsing`` / ``parsing_bisenet`` and ``regions`` (region shares), ``bhattacharyya``
  and ``layer_similarity`` (BC of maps), ``occlusion`` (masks and fills), ``occlusion_protocol`` /
  ``occlusion_runner`` / ``occlusion_summary`` (validation and transfer), ``controls`` (control
  masks), ``generalizability`` (technique comparison), ``sanity`` and ``faithfulness`` (sanity
  checks), ``map_definitions`` / ``occlusion_sweep`` / ``protocol`` (the declared protocol sweep).
- the ledger: ``published`` (the works' numbers), ``claims`` (rules and verdicts), ``runstamp``
  (which run made a table).
- running: ``profiles`` (profiles and the [method] table), ``cli`` and ``runner`` (``run_all.sh``),
  ``provenance`` (the run manifest), ``cache`` (verified, atomic, content-addressed store),
  ``plots`` (one figure and table style), ``tv_compat`` (torchvision on CPU-only torch).
"""
from facexai.tv_compat import ensure_torchvision

ensure_torchvision()

__version__ = "0.1.0"
