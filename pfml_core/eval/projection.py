"""2-D maps of embeddings and proxies together: PCA at once, UMAP when it is ready. Maps are
kept stable from epoch to epoch (UMAP warm-started from the previous layout, then every
layout Procrustes-aligned to the previous one) so an animation does not jump."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "pfml_studio" / "numba"))


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
    """Rotate/reflect, scale and shift `layout` onto `reference` (orthogonal Procrustes)."""
    if reference is None or reference.shape != layout.shape:
        return layout
    a, b = layout - layout.mean(0), reference - reference.mean(0)
    u, s, vt = np.linalg.svd(a.T @ b)
    r = u @ vt  # (2, 2) best rotation/reflection
    scale = s.sum() / max(float((a ** 2).sum()), 1e-12)
    return (scale * a @ r + reference.mean(0)).astype(np.float32)


def umap_layout(points, init: np.ndarray | None = None, seed: int = 0,
                n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """(n, D) -> (n, 2) UMAP; init (n, 2) warm-starts from a previous epoch's layout."""
    import umap  # lazy: numba compiles on first use (see warm_up)

    x = _check(points)
    warm = init is not None and init.shape == (len(x), 2)
    start = _scaled(init) if warm else "spectral"
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                        init=start, random_state=seed, n_jobs=1,
                        # warm start: short and gentle, so the map refines instead of jumping
                        n_epochs=50 if warm else None, learning_rate=0.3 if warm else 1.0)
    return reducer.fit_transform(x).astype(np.float32)


def _scaled(layout: np.ndarray) -> np.ndarray:
    """UMAP expects an init within about +-10."""
    c = layout - layout.mean(0)
    return (10 * c / max(float(np.abs(c).max()), 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def warm_up() -> float:
    """Compile UMAP's numba kernels once per process; returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    umap_layout(rng.normal(size=(60, 8)))
    return time.perf_counter() - t0


def project(points, method: str = "umap", previous: np.ndarray | None = None,
            seed: int = 0) -> np.ndarray:
    """One epoch's map, warm-started from and aligned to the previous epoch's."""
    if method == "pca":
        return align(pca_layout(points), previous)
    if method == "umap":
        return align(umap_layout(points, init=previous, seed=seed), previous)
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")


def snapshot_points(snapshot, include: str = "both") -> tuple[np.ndarray, dict]:
    """Stack a snapshot's points: train view, held-out eval set, proxies. Returns
    (N, D) and a dict of per-point arrays: label, group ('train'|'held-out'|'proxy'),
    flipped, row (index within its group)."""
    parts, meta = [], {"label": [], "group": [], "flipped": [], "row": []}

    def add(x, labels, group, flipped=None):
        parts.append(x)
        meta["label"].append(np.asarray(labels))
        meta["group"].append(np.full(len(x), group))
        meta["flipped"].append(np.zeros(len(x), bool) if flipped is None else flipped)
        meta["row"].append(np.arange(len(x)))

    if include in ("both", "train"):
        add(snapshot.train_embeddings, snapshot.train_labels, "train", snapshot.train_flipped)
        if snapshot.proxies is not None:
            add(snapshot.proxies, snapshot.proxy_labels, "proxy")
    if include in ("both", "held-out"):
        add(snapshot.embeddings, snapshot.labels, "held-out")
    return np.concatenate(parts), {k: np.concatenate(v) for k, v in meta.items()}
