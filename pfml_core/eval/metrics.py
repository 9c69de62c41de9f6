"""Retrieval metrics through pytorch-metric-learning's AccuracyCalculator (a CustomKNN, so
faiss is not needed) and the Wasserstein-2 distance between proxies and embeddings (POT)."""
from __future__ import annotations

import numpy as np
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

KS = (1, 2, 4, 8)
NAMES = {"r_precision": "R-precision", "mean_average_precision_at_r": "MAP@R", "NMI": "NMI"}


def _kmeans(x: torch.Tensor, k: int) -> torch.Tensor:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(x.cpu().numpy())
    return torch.as_tensor(km.labels_)


def _recall_at(k: int):
    def calc(self, knn_labels, query_labels, not_lone_query_mask, **kwargs):
        """Recall@K (DML sense): share of queries with a same-class item in their top K."""
        hits = (knn_labels[:, :k] == query_labels[:, None]).any(1)  # (Q,)
        mask = not_lone_query_mask
        return float(hits[mask].float().mean()) if mask.any() else float("nan")
    return calc


class RecallCalculator(AccuracyCalculator):
    """AccuracyCalculator plus calculate_recall_at_{1,2,4,8}."""

    locals().update({f"calculate_recall_at_{k}": _recall_at(k) for k in KS})

    def requires_knn(self):
        return super().requires_knn() + [f"recall_at_{k}" for k in KS]


def retrieval_metrics(query_emb, query_labels, nmi: bool = True) -> dict[str, float]:
    """Leave-one-out retrieval within the set: R@1/2/4/8, MAP@R, R-precision, NMI."""
    emb = torch.as_tensor(np.asarray(query_emb), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(query_labels))
    if emb.ndim != 2 or len(emb) != len(labels) or len(emb) < 2:
        raise ValueError(f"query_emb must be (n >= 2, D) with one label per row, got "
                         f"{tuple(emb.shape)} and {tuple(labels.shape)} labels")
    include = [f"recall_at_{k}" for k in KS] + ["mean_average_precision_at_r", "r_precision"]
    include += ["NMI"] if nmi and len(torch.unique(labels)) > 1 else []
    calc = RecallCalculator(include=tuple(include), k="max_bin_count", device=torch.device("cpu"),
                            knn_func=CustomKNN(LpDistance(normalize_embeddings=False)),
                            kmeans_func=_kmeans)
    raw = calc.get_accuracy(emb, labels)
    out = {f"R@{k}": float(raw[f"recall_at_{k}"]) for k in KS}
    out.update({NAMES[k]: float(v) for k, v in raw.items() if k in NAMES})
    return out


def w2_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-2 between two uniform point clouds (n, D) and (m, D)."""
    import ot

    cost = ot.dist(a.astype(np.float64), b.astype(np.float64))  # squared Euclidean (n, m)
    return float(np.sqrt(max(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost), 0.0)))


def proxy_w2(embeddings, labels, proxies, proxy_labels) -> dict:
    """W2 between each class's proxies and its embeddings; key 'mean' averages the classes
    present on both sides (docs/method.md, section 6: decaying losses should give smaller values)."""
    emb, lab = np.asarray(embeddings), np.asarray(labels)
    prox, plab = np.asarray(proxies), np.asarray(proxy_labels)
    out = {int(c): w2_distance(emb[lab == c], prox[plab == c])
           for c in np.intersect1d(np.unique(lab), np.unique(plab))}
    out["mean"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


def neighbours(embeddings, query_row: int, k: int = 8) -> np.ndarray:
    """Rows of the k nearest neighbours (Euclidean) of embeddings[query_row], itself excluded."""
    emb = np.asarray(embeddings)
    if not 0 <= query_row < len(emb):
        raise ValueError(f"query_row must be in [0, {len(emb) - 1}], got {query_row}")
    d = ((emb - emb[query_row]) ** 2).sum(1)
    d[query_row] = np.inf
    return np.argsort(d, kind="stable")[:min(k, len(emb) - 1)]
