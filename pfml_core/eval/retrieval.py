"""Recall@K at benchmark scale (tens of thousands of embeddings): scores are computed in
(chunk, N) blocks on the tensors' own device, never as an N x N matrix. Instead of sorting each
block, we count each query's rank of its best same-class item (#items scoring strictly higher +
#items scoring equal with a lower index; a hit at K when rank < K): what a stable top-K gives,
for every K at once, exact under tied scores (duplicate images). Queries with no same-class
item in the reference are left out, as in metrics.py."""
from __future__ import annotations

import torch

from pfml_core import guards

Tensor = torch.Tensor
METRICS = ("euclidean", "cosine")
MAX_BLOCK = 1 << 25  # scores per block when chunk_size is None (~128 MB in float32)


def _check(query, labels, reference, reference_labels, ks, metric):
    guards.check_points("query", query)
    labels = guards.check_labels("labels", labels, query.shape[0]).to(query.device)
    if reference is None:
        if reference_labels is not None:
            raise ValueError("reference_labels given without reference")
        reference, reference_labels = query, labels
    else:
        guards.check_points("reference", reference, dim=query.shape[1])
        if reference_labels is None:
            raise ValueError("reference_labels must be given with reference")
        reference_labels = guards.check_labels(
            "reference_labels", reference_labels, reference.shape[0]).to(query.device)
    ks = tuple(guards.check_int("k", k, 1) for k in ks)
    guards.check_choice("metric", metric, METRICS)
    return labels, reference.to(query.device, query.dtype), reference_labels, ks


def _scores(q: Tensor, ref: Tensor, ref_sq: Tensor, metric: str) -> Tensor:
    """(c, N), higher = closer: -|q - r|^2 + |q|^2 (row constant dropped), or cosine."""
    if metric == "cosine":
        return q @ ref.T
    return 2 * (q @ ref.T) - ref_sq.unsqueeze(0)


def first_positive_rank(scores: Tensor, same: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of (c, N) scores: the rank of the best same-class item (ties by index) and
    whether the row has one at all."""
    has_pos = same.any(1)  # (c,)
    best = scores.masked_fill(~same, float("-inf")).amax(1, keepdim=True)  # (c, 1)
    at_best = same & (scores == best)
    j_pos = at_best.to(torch.uint8).argmax(1, keepdim=True)  # lowest index among them
    idx = torch.arange(scores.shape[1], device=scores.device).unsqueeze(0)  # (1, N)
    rank = (scores > best).sum(1) + ((scores == best) & (idx < j_pos)).sum(1)
    return rank, has_pos


def chunked_recall_at_k(query: Tensor, labels: Tensor, ks=(1, 2, 4, 8),
                        chunk_size: int | None = None, reference: Tensor | None = None,
                        reference_labels: Tensor | None = None,
                        metric: str = "euclidean") -> dict[str, float]:
    """{"R@k": share of queries with a same-class item among their k nearest}. Without
    reference, leave-one-out within query (self excluded). Runs on query's device."""
    labels, ref, ref_labels, ks = _check(query, labels, reference, reference_labels, ks, metric)
    if metric == "cosine":
        query, ref = (torch.nn.functional.normalize(t, dim=1) for t in (query, ref))
    n_ref = ref.shape[0]
    chunk = max(1, MAX_BLOCK // max(n_ref, 1)) if chunk_size is None \
        else guards.check_int("chunk_size", chunk_size, 1)
    ref_sq = ref.pow(2).sum(1)  # (N,)
    hits = torch.zeros(len(ks), dtype=torch.long, device=query.device)
    counted = 0
    for start in range(0, query.shape[0], chunk):
        stop = min(start + chunk, query.shape[0])
        s = _scores(query[start:stop], ref, ref_sq, metric)  # (c, N)
        same = labels[start:stop].unsqueeze(1) == ref_labels.unsqueeze(0)  # (c, N)
        if reference is None:  # a query is not its own neighbour
            rows = torch.arange(stop - start, device=s.device)
            s[rows, rows + start] = float("-inf")
            same[rows, rows + start] = False
        rank, has_pos = first_positive_rank(s, same)
        hits += torch.stack([((rank < k) & has_pos).sum() for k in ks])
        counted += int(has_pos.sum())
    return {f"R@{k}": (float(h) / counted if counted else float("nan"))
            for k, h in zip(ks, hits.tolist())}
