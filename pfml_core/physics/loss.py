"""PotentialFieldLoss: PFML's total energy (Eq. 6) as a pytorch-metric-learning loss,
with M trainable proxies per class. Drops in wherever a PML loss goes."""
from __future__ import annotations

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import common_functions as c_f

from pfml_core import guards
from pfml_core.physics.field import EPS, REDUCTIONS, total_energy


class PotentialFieldLoss(BaseMetricLossFunction):
    """loss(embeddings, labels) -> energy. Embeddings and proxies are L2-normalised."""

    def __init__(self, num_classes: int, embedding_size: int, proxies_per_class: int = 15,
                 alpha: float = 3.0, delta: float = 0.2, delta_rep: float | None = None,
                 reduction: str = "sum", eps: float = EPS, **kwargs):
        # defaults: M = 15 (CUB/Cars), alpha near 3 best, delta in [0.1, 0.3] (spec §3, §6)
        super().__init__(**kwargs)
        self.num_classes = guards.check_int("num_classes", num_classes, 1)
        self.embedding_size = guards.check_int("embedding_size", embedding_size, 1)
        self.proxies_per_class = guards.check_int("proxies_per_class", proxies_per_class, 0)
        self.alpha = guards.check_positive("alpha", alpha)
        self.delta = guards.check_positive("delta", delta)
        self.delta_rep = None if delta_rep is None else guards.check_positive("delta_rep", delta_rep)
        self.reduction = guards.check_choice("reduction", reduction, REDUCTIONS[:2])
        self.eps = guards.check_positive("eps", eps)
        n_proxies = self.num_classes * self.proxies_per_class
        self.proxies = torch.nn.Parameter(torch.empty(n_proxies, self.embedding_size))
        if n_proxies:
            torch.nn.init.kaiming_normal_(self.proxies, mode="fan_out")
        self.register_buffer("proxy_labels",
                             torch.arange(self.num_classes).repeat_interleave(self.proxies_per_class))

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        c_f.labels_required(labels)
        c_f.ref_not_supported(embeddings, labels, ref_emb, ref_labels)
        guards.check_labels("labels", labels, embeddings.shape[0], self.num_classes)
        energy = total_energy(
            embeddings, labels, self.proxies, self.proxy_labels.to(embeddings.device),
            alpha=self.alpha, delta=self.delta, delta_rep=self.delta_rep,
            normalize=True, reduction=self.reduction, eps=self.eps)
        return {"loss": {"losses": energy, "indices": None, "reduction_type": "already_reduced"}}

    def class_proxies(self) -> torch.Tensor:
        """Proxies as (num_classes, proxies_per_class, embedding_size)."""
        return self.proxies.view(self.num_classes, self.proxies_per_class, self.embedding_size)

    def parameter_groups(self, model_parameters, lr: float,
                         proxy_lr_multiplier: float = 100.0) -> list[dict]:
        """Optimizer groups: the model at lr, proxies at lr * multiplier (paper: 100x)."""
        lr = guards.check_positive("lr", lr)
        mult = guards.check_positive("proxy_lr_multiplier", proxy_lr_multiplier)
        groups = [{"params": list(model_parameters), "lr": lr}]
        if self.proxies.numel():
            groups.append({"params": [self.proxies], "lr": lr * mult})
        return groups

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, proxies_per_class={self.proxies_per_class}, "
                f"alpha={self.alpha}, delta={self.delta}, delta_rep={self.delta_rep}, "
                f"reduction={self.reduction!r}")
