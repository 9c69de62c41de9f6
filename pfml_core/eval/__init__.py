"""Evaluation: retrieval metrics (Recall@K, MAP@R, ...), proxy-to-data W2, neighbours,
chunked Recall@K for large sets, and 2-D projections of embeddings (PCA, UMAP)."""
from pfml_core.eval.metrics import KS, NAMES, neighbours, proxy_w2, retrieval_metrics, w2_distance
from pfml_core.eval.retrieval import chunked_recall_at_k
from pfml_core.eval.projection import pca_layout, project, snapshot_points, umap_layout, warm_up

__all__ = ["KS", "NAMES", "chunked_recall_at_k", "neighbours", "pca_layout", "project",
           "proxy_w2", "retrieval_metrics", "snapshot_points", "umap_layout", "w2_distance",
           "warm_up"]
