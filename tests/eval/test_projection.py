"""pfml_core.eval.projection and MapService: PCA against sklearn, alignment that rotates and
reflects but never rescales (the map must not shrink onto an unrelated earlier map), exact
neighbours against a naive loop, UMAP warm starts keeping consecutive maps close, and the
map worker process giving the same maps as this process."""
import numpy as np
import pytest

from pfml_core.eval import MapService, projection


def _rotation(t):
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _distances(xy):
    return np.linalg.norm(xy[:, None] - xy[None], axis=-1)


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(0).normal(size=(50, 6)) * np.arange(1, 7)
    ours = projection.pca_layout(x)
    ref = PCA(2).fit_transform(x)
    for j in range(2):
        assert np.allclose(np.abs(ours[:, j]), np.abs(ref[:, j]), atol=1e-3)


@pytest.mark.parametrize("reflect", [False, True])
def test_align_undoes_rotation_reflection_and_shift(reflect):
    ref = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    flip = np.diag([1.0, -1.0]) if reflect else np.eye(2)
    moved = ref @ flip @ _rotation(np.pi / 3) + 5
    assert np.allclose(projection.align(moved, ref), ref, atol=1e-4)


def test_align_keeps_the_layout_size_whatever_the_reference():
    """Hand case: a triangle aligned onto a tiny, unrelated reference keeps every distance
    (a least-squares scale would shrink it about 100x, which hid the embeddings)."""
    layout = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [0.0, -1.0]], np.float32)
    tiny = 0.01 * np.random.default_rng(3).normal(size=(4, 2))
    out = projection.align(layout, tiny)
    assert np.allclose(_distances(out), _distances(layout), atol=1e-5)
    assert np.allclose(out.mean(0), tiny.mean(0), atol=1e-6)  # moved to the reference centre
    # and the rotation found is the best one: no other angle/reflection fits closer
    best = ((out - tiny) ** 2).sum()
    for t in np.linspace(0, 2 * np.pi, 73):
        for flip in (np.eye(2), np.diag([1.0, -1.0])):
            other = (layout - layout.mean(0)) @ flip @ _rotation(t) + tiny.mean(0)
            assert best <= ((other - tiny) ** 2).sum() + 1e-6


def test_align_without_a_matching_reference_changes_nothing():
    layout = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert np.array_equal(projection.align(layout, None), layout)
    assert np.array_equal(projection.align(layout, np.zeros((4, 2))), layout)


def test_exact_knn_against_a_naive_loop():
    x = np.random.default_rng(4).normal(size=(30, 5)).astype(np.float32)
    idx, dist = projection.exact_knn(x, 4)
    for i in range(len(x)):
        d = [float(np.sqrt(((x[i] - x[j]) ** 2).sum())) for j in range(len(x))]
        want = sorted(range(len(x)), key=lambda j: d[j])[:4]
        assert idx[i].tolist() == want and want[0] == i
        assert np.allclose(dist[i], [d[j] for j in want], atol=1e-4)


@pytest.mark.slow
def test_umap_warm_start_is_stable():
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(4, 16)) * 4
    y = np.repeat(np.arange(4), 40)
    x = centers[y] + rng.normal(size=(160, 16))
    first = projection.project(x, "umap")
    second = projection.project(x + 0.01 * rng.normal(size=x.shape), "umap", previous=first)
    spread = np.abs(first - first.mean(0)).mean()
    assert np.abs(second - first).mean() < 0.5 * spread
    means = np.stack([second[y == c].mean(0) for c in range(4)])
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(4) for j in range(i)) > spread
    assert 0.5 < np.abs(second - second.mean(0)).mean() / spread < 2
    # A cold start lands wherever its PCA init puts the classes, on some machines right on
    # the first map; only a warm start keeps a layout that a cold one cannot produce: class 0
    # pushed far from the others stays far (a cold start, rotated onto it, keeps < 0.5 of it)
    means = np.stack([first[y == c].mean(0) for c in range(4)])
    away = means[0] - means[1:].mean(0)
    previous = first + np.where(y[:, None] == 0, 3 * away, 0).astype(np.float32)
    warm = projection.project(x + 0.01 * rng.normal(size=x.shape), "umap", previous=previous)

    def distance_of_class_0(layout):
        m = np.stack([layout[y == c].mean(0) for c in range(4)])
        return np.linalg.norm(m[0] - m[1:].mean(0))

    assert distance_of_class_0(warm) > 0.75 * distance_of_class_0(previous)


@pytest.mark.slow
def test_map_worker_gives_this_process_maps_and_survives_its_death():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 8)) * 3)[np.repeat(np.arange(3), 30)] + rng.normal(size=(90, 8))
    maps = MapService().start()
    try:
        assert maps.state == "warming"
        first = maps.submit(x).result(timeout=600)
        assert maps.state == "ready" and maps.warm_seconds > 0
        assert np.allclose(first, projection.project(x, "umap"), atol=1e-3)
        second = maps.submit(x, previous=first).result(timeout=120)
        assert np.allclose(second, projection.project(x, "umap", first), atol=1e-3)
        pending = maps.submit(np.tile(x, (30, 1)) + rng.normal(size=(2700, 8)))
        maps._proc.kill()  # a worker that dies fails what it owed, then is replaced
        with pytest.raises(RuntimeError, match="map worker"):
            pending.result(timeout=60)
        assert maps.start().state == "warming"
    finally:
        maps.close()
    assert maps.state == "off"


@pytest.mark.slow
def test_a_failed_map_worker_is_replaced_even_while_it_is_still_exiting():
    """The reader marks the worker failed when its channel closes, which can come before the
    process has exited (CI caught start() then keeping the dying worker)."""
    maps = MapService().start()
    try:
        old = maps._proc
        maps._state = "failed: the map worker stopped"  # old is still alive here
        assert maps.start().state == "warming"
        assert maps._proc is not old and old.poll() is not None
    finally:
        maps.close()


def test_bad_points():
    with pytest.raises(ValueError, match="finite"):
        projection.pca_layout(np.array([[np.nan, 1.0]] * 5))
    with pytest.raises(ValueError, match="method"):
        projection.project(np.zeros((5, 2)), "tsne")
