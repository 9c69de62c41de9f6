"""pfml_core.eval.metrics against naive references: Recall@K and MAP@R by explicit loops, W2 by
an optimal assignment (scipy) for equal-size clouds."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from pfml_core.eval import metrics


def _naive(x, y):
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")
    rec = {k: np.mean([(y[order[i, :k]] == y[i]).any() for i in range(len(y))]) for k in (1, 2, 4, 8)}
    aps = []
    for i in range(len(y)):
        r = (y == y[i]).sum() - 1
        hits = y[order[i, :r]] == y[i]
        aps.append(sum(hits[:j + 1].sum() / (j + 1) for j in range(r) if hits[j]) / r)
    return rec, float(np.mean(aps))


def test_recall_and_map_at_r_match_loops():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    x = rng.normal(size=(60, 6)) + 1.5 * np.eye(6)[y]
    got = metrics.retrieval_metrics(x, y)
    rec, map_r = _naive(x, y)
    for k in (1, 2, 4, 8):
        assert got[f"R@{k}"] == pytest.approx(rec[k], abs=1e-6)
    assert got["MAP@R"] == pytest.approx(map_r, abs=1e-5)
    assert 0 <= got["NMI"] <= 1 and 0 <= got["R-precision"] <= 1


def test_perfect_clusters_score_one():
    y = np.repeat(np.arange(3), 10)
    x = np.eye(3)[y] + 1e-3 * np.random.default_rng(1).normal(size=(30, 3))
    got = metrics.retrieval_metrics(x, y)
    assert got["R@1"] == 1 and got["MAP@R"] == pytest.approx(1) and got["NMI"] == pytest.approx(1)


def test_w2_equals_optimal_matching():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 1
    cost = ((a[:, None] - b[None]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    assert metrics.w2_distance(a, b) == pytest.approx(np.sqrt(cost[r, c].mean()), rel=1e-6)


def test_proxy_w2_per_class_and_mean():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(20, 3))
    labels = np.repeat([0, 1], 10)
    out = metrics.proxy_w2(emb, labels, emb[[0, 10]], np.array([0, 1]))
    assert set(out) == {0, 1, "mean"}
    assert out["mean"] == pytest.approx((out[0] + out[1]) / 2)
    assert metrics.proxy_w2(emb, labels, emb, labels)[0] == pytest.approx(0, abs=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="query_emb"):
        metrics.retrieval_metrics(np.zeros((3, 2)), np.zeros(2))
