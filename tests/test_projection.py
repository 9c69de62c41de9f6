"""pfml_core.eval.projection: PCA against sklearn, Procrustes alignment recovering a known
rotation, UMAP warm start keeping consecutive maps close."""
import numpy as np
import pytest

from pfml_core.eval import projection


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(0).normal(size=(50, 6)) * np.arange(1, 7)
    ours = projection.pca_layout(x)
    ref = PCA(2).fit_transform(x)
    for j in range(2):
        assert np.allclose(np.abs(ours[:, j]), np.abs(ref[:, j]), atol=1e-3)


def test_align_undoes_rotation_scale_shift():
    ref = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    t = np.pi / 3
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    moved = 3 * ref @ rot + 5
    assert np.allclose(projection.align(moved, ref), ref, atol=1e-4)


@pytest.mark.slow
def test_umap_warm_start_is_stable():
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(4, 16)) * 4
    y = np.repeat(np.arange(4), 40)
    x = centers[y] + rng.normal(size=(160, 16))
    first = projection.project(x, "umap")
    second = projection.project(x + 0.01 * rng.normal(size=x.shape), "umap", previous=first)
    cold = projection.project(x + 0.01 * rng.normal(size=x.shape), "umap", seed=7)
    spread = np.abs(first - first.mean(0)).mean()
    # warm-started and aligned: points barely move; a cold start would land elsewhere
    moved = np.abs(second - first).mean()
    assert moved < 0.35 * spread and moved < 0.5 * np.abs(cold - first).mean()
    # the classes stay separated in the map
    means = np.stack([second[y == c].mean(0) for c in range(4)])
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i)) > spread


def test_bad_points():
    with pytest.raises(ValueError, match="finite"):
        projection.pca_layout(np.array([[np.nan, 1.0]] * 5))
    with pytest.raises(ValueError, match="method"):
        projection.project(np.zeros((5, 2)), "tsne")
