"""facexai: helper library of the explainable-face-recognition study.

Modules, one job each, in the order the data flows:

- inputs: ``data`` (datasets, pairs), ``align`` (MTCNN and the crop geometries), ``study`` (the
  selected people, images, pairs and crops), ``models`` (registry, converters, user checkpoints),
  ``embed`` (cached embeddings), ``verification`` (pair scores, k-fold accuracy), ``thresholds``
  (operating points), ``metrics``.
- explanations: ``explain`` (LEAM, the Grad-CAM family, the RISE family, targets),
  ``techniques`` (the registry of techniques and their settings), ``saliency`` (cached image maps),
  ``person_maps`` (one map per individual, in any crop geometry,
  including notebook 05's cross-model maps), ``channel_patterns`` (channel-level activation patterns),
  ``lattice`` (the stride artefact), ``lattice_effect`` (its treatment's effect on the study's numbers).
- analyses: ``parsing`` / ``parsing_bisenet`` and ``regions`` (region shares), ``bhattacharyya``
  and ``layer_similarity`` (BC of maps), ``occlusion`` (masks and fills), ``occlusion_protocol`` /
  ``occlusion_runner`` / ``occlusion_summary`` (validation and transfer), ``controls`` (control
  masks), ``generalizability`` (technique comparison), ``floor_differences`` (technique minus
  random floor with paired intervals), ``sanity`` and ``faithfulness`` (sanity
  checks), ``map_definitions`` / ``occlusion_sweep`` / ``protocol`` / ``protocol_plots`` (the declared
  protocol sweep), ``feasibility`` (what each notebook needs of the selection, and which setting to change).
- the ledger: ``published`` (the works' numbers), ``claims`` (rules and verdicts), ``runstamp``
  (which run made a table).
- running: ``profiles`` (profiles and the [method] table), ``cli`` and ``runner`` (``run_all.sh``),
  ``provenance`` (the run manifest), ``passes`` (face-model pass counts and their floor),
  ``executor`` (where cache shards run: in-process, a Dask LocalCluster or a cluster), ``cache`` (verified, atomic, content-addressed store),
  ``plots`` (one figure and table style), ``tv_compat`` (torchvision on CPU-only torch), ``allocator``
  (glibc thresholds that spare the forwards' page faults), ``collector`` (the garbage collector kept off
  the imports' long-lived objects).
"""
from facexai import collector

with collector.frozen_imports():
    from facexai import allocator
    from facexai.tv_compat import ensure_torchvision

    TUNED_ALLOCATOR = allocator.tune()
    ensure_torchvision()

__version__ = "0.1.0"
