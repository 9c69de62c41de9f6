"""Registry of the losses PFML is compared with (docs/method.md, section 6 noise table), behind one interface:
LOSSES[name].make(num_classes, embedding_size, **params) -> LossBundle."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses, miners

from pfml_core import guards
from pfml_core.physics.loss import MAX_ALPHA, MAX_PROXIES_PER_CLASS, PotentialFieldLoss, ProxyGroups


class LossBundle(ProxyGroups, torch.nn.Module):
    """A loss, its optional miner, and its proxies (if any) under one roof."""

    def __init__(self, name: str, loss: torch.nn.Module, miner=None):
        super().__init__()
        self.name, self.loss, self.miner = name, loss, miner

    @property
    def has_proxies(self) -> bool:
        p = getattr(self.loss, "proxies", None)
        return isinstance(p, torch.nn.Parameter) and p.numel() > 0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        tuples = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, tuples)

    def proxies(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(P, D) L2-normalised proxies and their (P,) class labels, or None."""
        if not self.has_proxies:
            return None
        p = self.loss.proxies.detach()
        labels = getattr(self.loss, "proxy_labels", None)
        if labels is None:  # PML proxy losses: one proxy per class
            labels = torch.arange(p.shape[0], device=p.device)
        return F.normalize(p, dim=-1), labels.detach()


@dataclass(frozen=True)
class LossSpec:
    name: str
    label: str
    build: Callable  # (num_classes, embedding_size, **params) -> (loss, miner)
    has_proxies: bool
    default_params: dict = field(default_factory=dict)
    maxima: dict = field(default_factory=dict)  # upper bounds the loss checks (page widgets)

    def make(self, num_classes: int, embedding_size: int, **params) -> LossBundle:
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise ValueError(f"loss {self.name!r} does not take {sorted(unknown)}; "
                             f"its parameters are {sorted(self.default_params)}")
        guards.check_int("num_classes", num_classes, 1)
        guards.check_int("embedding_size", embedding_size, 1)
        loss, miner = self.build(num_classes, embedding_size, **{**self.default_params, **params})
        return LossBundle(self.name, loss, miner)


def _pfml(n, d, **p):
    return PotentialFieldLoss(n, d, **p), None


def _proxy_anchor(n, d, margin, alpha):
    return losses.ProxyAnchorLoss(n, d, margin=margin, alpha=alpha), None


def _proxy_nca(n, d, softmax_scale):
    return losses.ProxyNCALoss(n, d, softmax_scale=softmax_scale), None


def _multi_similarity(n, d, alpha, beta, base, epsilon):
    return (losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base),
            miners.MultiSimilarityMiner(epsilon=epsilon))


def _triplet(n, d, margin, type_of_triplets):
    return (losses.TripletMarginLoss(margin=margin),
            miners.TripletMarginMiner(margin=margin, type_of_triplets=type_of_triplets))


def _contrastive(n, d, pos_margin, neg_margin):
    return losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin), None


LOSSES = {s.name: s for s in [
    # docs/method.md, sections 1 and 3: alpha near 3, delta in [0.1, 0.3], M = 15 (CUB/Cars); 5 keeps small runs light
    LossSpec("pfml", "PFML (potential field)", _pfml, True,
             {"alpha": 3.0, "delta": 0.2, "delta_rep": None, "proxies_per_class": 5},
             {"alpha": MAX_ALPHA, "proxies_per_class": MAX_PROXIES_PER_CLASS}),
    LossSpec("proxy_anchor", "Proxy Anchor", _proxy_anchor, True, {"margin": 0.1, "alpha": 32.0}),
    LossSpec("proxy_nca", "ProxyNCA", _proxy_nca, True, {"softmax_scale": 1.0}),
    LossSpec("multi_similarity", "Multi-Similarity", _multi_similarity, False,
             {"alpha": 2.0, "beta": 50.0, "base": 0.5, "epsilon": 0.1}),
    LossSpec("triplet", "Triplet (semi-hard)", _triplet, False,
             {"margin": 0.05, "type_of_triplets": "semihard"}),
    LossSpec("contrastive", "Contrastive", _contrastive, False,
             {"pos_margin": 0.0, "neg_margin": 1.0}),
]}


def make(name: str, num_classes: int, embedding_size: int, **params) -> LossBundle:
    guards.check_choice("loss", name, LOSSES)
    return LOSSES[name].make(num_classes, embedding_size, **params)
