"""PFML Studio's library: Potential Field based Deep Metric Learning (Bhatnagar & Ahuja,
CVPR 2025, arXiv 2405.18560) and the tools around it. Each subpackage imports only the ones
listed before it below (import-linter's layers in pyproject.toml)."""
# physics     the pair potential (defined once), class fields, forces, energy, the loss
# data        datasets: bundled, user files, benchmarks, transforms
# eval        Recall@K and friends, retrieval, projections (PCA / UMAP)
# training    config, models, loss registry, engine, run folders, jobs, torchrun
# lab         label-noise and sweep grids, their store and workers, the paper's tables
# viz         Plotly figure builders: data in, figure out
# playground  2-D toy scenes, descent, URL state, exports
from pfml_core.physics import PotentialFieldLoss, forces, total_energy

__all__ = ["PotentialFieldLoss", "forces", "total_energy"]
