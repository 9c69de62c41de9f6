"""2-D maps of embeddings and proxies together: PCA at once, UMAP when it is ready. Maps stay
stable from epoch to epoch through warm starts (UMAP starts from the previous layout) and a
rotation/reflection onto the previous layout (orthogonal Procrustes). They are never rescaled:
each map keeps its own extent, so a small or unrelated earlier map cannot shrink a later one."""
from __future__ import annotations

import functools
import os
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "pfml_studio" / "numba"))

UMAP_EPOCHS = {"cold": 200, "warm": 50}  # optimisation epochs: first map, warm-started map


def _check(points) -> np.ndarray:
    x = np.asarray(points, dtype=np.float32)
    if x.ndim != 2 or len(x) < 3 or not np.isfinite(x).all():
        raise ValueError(f"points must be a finite (n >= 3, D) array, got shape {x.shape}")
    return x


def pca_layout(points) -> np.ndarray:
    """(n, D) -> (n, 2): the two leading principal components."""
    x = _check(points)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))).astype(np.float32)


def align(layout: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """Rotate/reflect `layout` onto `reference` (orthogonal Procrustes, no scaling) and move
    it to the reference's centre. Distances within the layout are kept exactly."""
    from scipy.linalg import orthogonal_procrustes

    layout = np.asarray(layout, dtype=np.float32)
    if reference is None or np.shape(reference) != layout.shape:
        return layout
    reference = np.asarray(reference, dtype=np.float64)
    a, b = layout - layout.mean(0), reference - reference.mean(0)
    r, _ = orthogonal_procrustes(a, b)  # (2, 2), r @ r.T = I
    return (a @ r + reference.mean(0)).astype(np.float32)


def exact_knn(points, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points (itself first), by brute force: (n, k) indices and
    Euclidean distances. UMAP's own small-data path calls a Python distance per pair."""
    from sklearn.neighbors import NearestNeighbors

    x = _check(points)
    dist, idx = NearestNeighbors(n_neighbors=min(k, len(x)), algorithm="brute").fit(x).kneighbors(x)
    return idx, dist.astype(np.float32)


def umap_layout(points, init: np.ndarray | None = None, seed: int = 0,
                n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """(n, D) -> (n, 2) UMAP. init (n, 2) warm-starts from a previous epoch's layout (a short,
    gentle refinement); without it the map starts from the points' PCA."""
    import umap  # lazy: numba compiles on first use (see warm_up)

    x = _check(points)
    warm = init is not None and np.shape(init) == (len(x), 2)
    start = np.asarray(init, np.float32) if warm else _scaled(pca_layout(x))
    k = min(n_neighbors, len(x) - 1)
    reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, random_state=seed, n_jobs=1, init=start,
                        n_epochs=UMAP_EPOCHS["warm" if warm else "cold"],
                        learning_rate=0.3 if warm else 1.0, precomputed_knn=exact_knn(x, k))
    with warnings.catch_warnings():  # no search index kept: we never call transform()
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*n_jobs.*random_state.*")
        out = reducer.fit_transform(x).astype(np.float32)
    if not warm:
        return out
    # umap-learn stretches an init to [0, 10] on each axis before optimising; undo that, so a
    # warm start keeps the previous map's scale and aspect ratio
    lo, hi = start.min(0), start.max(0)
    return lo + out * np.maximum(hi - lo, 1e-12) / 10


def _scaled(layout: np.ndarray) -> np.ndarray:
    """UMAP expects an init within about +-10."""
    c = np.asarray(layout, dtype=np.float64)
    c = c - c.mean(0)
    return (10 * c / max(float(np.abs(c).max()), 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def warm_up() -> float:
    """Compile UMAP's numba kernels once per process (a cold and a warm-started map, the two
    paths the app takes); returns the seconds it took."""
    t0 = time.perf_counter()
    x = np.random.default_rng(0).normal(size=(60, 8))
    umap_layout(x, init=umap_layout(x))
    return time.perf_counter() - t0


def project(points, method: str = "umap", previous: np.ndarray | None = None,
            seed: int = 0) -> np.ndarray:
    """One epoch's map, warm-started from (UMAP) and rotated onto the previous epoch's."""
    if method == "pca":
        return align(pca_layout(points), previous)
    if method == "umap":
        return align(umap_layout(points, init=previous, seed=seed), previous)
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")


def snapshot_points(snapshot, include: str = "both") -> tuple[np.ndarray, dict]:
    """Stack a snapshot's points: train view, held-out eval set, proxies. Returns
    (N, D) and a dict of per-point arrays: label, group ('train'|'held-out'|'proxy'),
    flipped, row (index within its group), source (row of the source data; -1 for proxies)."""
    parts, meta = [], {"label": [], "group": [], "flipped": [], "row": [], "source": []}

    def add(x, labels, group, flipped=None, source=None):
        parts.append(x)
        meta["source"].append(np.full(len(x), -1) if source is None else np.asarray(source))
        meta["label"].append(np.asarray(labels))
        meta["group"].append(np.full(len(x), group))
        meta["flipped"].append(np.zeros(len(x), bool) if flipped is None else flipped)
        meta["row"].append(np.arange(len(x)))

    if include in ("both", "train"):
        add(snapshot.train_embeddings, snapshot.train_labels, "train", snapshot.train_flipped,
            snapshot.train_index)
        if snapshot.proxies is not None:
            add(snapshot.proxies, snapshot.proxy_labels, "proxy")
    if include in ("both", "held-out"):
        add(snapshot.embeddings, snapshot.labels, "held-out", source=snapshot.eval_index)
    return np.concatenate(parts), {k: np.concatenate(v) for k, v in meta.items()}
