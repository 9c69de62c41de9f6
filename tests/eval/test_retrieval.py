"""Chunked Recall@K (pfml_core/eval/retrieval.py) against a dense stable sort, PML's
AccuracyCalculator (pfml_core/eval/metrics.py) and a hand-checked example."""
import numpy as np
import pytest
import torch

from pfml_core.eval.metrics import retrieval_metrics
from pfml_core.eval.retrieval import _check, _scores, chunked_recall_at_k


def dense_recall_at_k(query, labels, ks=(1, 2, 4, 8), reference=None, reference_labels=None,
                      metric: str = "euclidean") -> dict[str, float]:
    """Independent reference (N x N in memory): full stable sort of every row."""
    labels, ref, ref_labels, ks = _check(query, labels, reference, reference_labels, ks, metric)
    if metric == "cosine":
        query, ref = (torch.nn.functional.normalize(t, dim=1) for t in (query, ref))
    s = _scores(query, ref, ref.pow(2).sum(1), metric)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices  # ties: lower index first
    if reference is None:
        order = torch.stack([row[row != i] for i, row in enumerate(order)])
    match = ref_labels[order] == labels.unsqueeze(1)  # (Q, N or N - 1) in neighbour order
    valid = match.any(1)
    n_valid = int(valid.sum())
    return {f"R@{k}": int(match[:, :k].any(1)[valid].sum()) / n_valid if n_valid
            else float("nan") for k in ks}


def _random(n=300, d=16, classes=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_chunked_equals_dense_random(chunk, metric):
    x, y = _random()
    assert chunked_recall_at_k(x, y, chunk_size=chunk, metric=metric) == \
        dense_recall_at_k(x, y, metric=metric)


def test_chunked_equals_dense_with_ties():
    # integer coordinates in {-1, 0, 1}^3 in float64: exact scores, many ties and duplicates
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-1, 2, (400, 3), generator=g).double()
    y = torch.randint(0, 6, (400,), generator=g)
    ks = (1, 2, 4, 8, 16, 32)
    dense = dense_recall_at_k(x, y, ks=ks)
    for chunk in (1, 13, 400):
        assert chunked_recall_at_k(x, y, ks=ks, chunk_size=chunk) == dense
    assert len(set(dense.values())) > 2  # the ties matter: recall grows with K


def test_separate_reference_set():
    x, y = _random(seed=2)
    q, qy, ref, ref_y = x[:100], y[:100], x[100:], y[100:]
    got = chunked_recall_at_k(q, qy, reference=ref, reference_labels=ref_y, chunk_size=9)
    assert got == dense_recall_at_k(q, qy, reference=ref, reference_labels=ref_y)


def test_matches_pml_accuracy_calculator():
    x, y = _random(n=200, d=8, classes=10, seed=3)
    ours = chunked_recall_at_k(x.float(), y, chunk_size=32)
    pml = retrieval_metrics(x.float().numpy(), y.numpy(), nmi=False)
    for k in (1, 2, 4, 8):
        assert ours[f"R@{k}"] == pytest.approx(pml[f"R@{k}"], abs=1e-6)  # PML: float32 mean


def test_hand_checked_example():
    # 1-D points 0, 1, 3, 10 with labels a, b, a, b
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    y = torch.tensor([0, 1, 0, 1])
    # nearest of 0 is 1 (b), then 3 (a): hit at K=2; of 1: 0 (a), 3 (a), 10 (b): hit at K=3;
    # of 3: 1 (b), 0 (a): K=2; of 10: 3 (a), 1 (b): K=2
    got = chunked_recall_at_k(x, y, ks=(1, 2, 4), chunk_size=3)
    assert got == {"R@1": 0.0, "R@2": 0.75, "R@4": 1.0}


def test_lone_queries_are_left_out():
    x = torch.tensor([[0.0], [0.1], [5.0]])
    y = torch.tensor([0, 0, 1])  # class 1 has a single item: no positive to find
    assert chunked_recall_at_k(x, y, ks=(1,)) == {"R@1": 1.0}


@pytest.mark.parametrize("kwargs, match", [
    ({"ks": (0,)}, "k must be"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"metric": "manhattan"}, "metric"),
    ({"reference": torch.zeros(3, 4)}, "reference_labels"),
])
def test_bad_arguments(kwargs, match):
    x, y = _random(n=10, d=4)
    with pytest.raises(ValueError, match=match):
        chunked_recall_at_k(x, y, **kwargs)


def test_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        chunked_recall_at_k(torch.zeros(5, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        chunked_recall_at_k(torch.full((5, 2), float("nan")), torch.zeros(5, dtype=torch.long))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    x, y = _random(n=2000, d=32, classes=50, seed=4)
    assert chunked_recall_at_k(x.cuda(), y.cuda(), chunk_size=300) == \
        chunked_recall_at_k(x, y, chunk_size=300)


def test_never_builds_the_full_matrix(monkeypatch):
    import pfml_core.eval.retrieval as r

    seen = []
    real = r._scores
    monkeypatch.setattr(r, "_scores", lambda q, *a: seen.append(q.shape[0]) or real(q, *a))
    x, y = _random(n=250)
    r.chunked_recall_at_k(x, y, chunk_size=60)
    assert seen == [60, 60, 60, 60, 10]
    assert np.isfinite(list(r.chunked_recall_at_k(x, y).values())).all()
