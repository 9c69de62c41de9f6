"""Evaluation: retrieval metrics (Recall@K, MAP@R, ...), proxy-to-data W2, neighbours,
chunked Recall@K for large sets, label margins of training samples, and 2-D projections of
embeddings (PCA, UMAP; UMAP in a warm worker process for the app)."""
from pfml_core.eval.label_margin import TrainMargins, class_similarity, margin_and_rival, train_margins
from pfml_core.eval.map_service import MapService
from pfml_core.eval.metrics import KS, NAMES, neighbours, proxy_w2, retrieval_metrics, w2_distance
from pfml_core.eval.projection import align, pca_layout, project, snapshot_points, umap_layout, warm_up
from pfml_core.eval.retrieval import chunked_recall_at_k

__all__ = ["KS", "MapService", "NAMES", "TrainMargins", "align", "class_similarity", "margin_and_rival",
           "train_margins", "chunked_recall_at_k", "neighbours",
           "pca_layout", "project", "proxy_w2", "retrieval_metrics", "snapshot_points", "umap_layout", "w2_distance",
           "warm_up"]
