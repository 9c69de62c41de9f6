"""PotentialFieldLoss: PFML's total energy (Eq. 6) as a pytorch-metric-learning loss,
with M trainable proxies per class. Drops in wherever a PML loss goes.

On a GPU the value checks that would read data back to the host (a sync per step) are
kept as on-device flags instead, looked at by `verify()` every VERIFY_EVERY calls: bad
input still raises a clear ValueError, a few steps late. check=True checks every call."""
from __future__ import annotations

import math

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import common_functions as c_f

from pfml_core import guards
from pfml_core.physics.field import EPS, REDUCTIONS, total_energy
from pfml_core.physics.kernel import RowShard

MAX_PROXIES_PER_CLASS = 1000  # the paper uses 15, the lab sweeps up to 100
MAX_ALPHA = 16.0  # the paper's best is near 3; the lab sweeps 0 to 6
# the largest attraction term, delta^-alpha, stays under this: float32 (3.4e38) keeps room
# for sums over 1e8 pairs, the headroom field.safe_eps keeps for repulsion
MAX_PAIR_TERM = 1e30


def check_power(alpha: float, delta: float) -> tuple[float, float]:
    """alpha in (0, MAX_ALPHA] and delta > 0 with delta^-alpha <= MAX_PAIR_TERM: the loss
    stays finite in float32 (alpha = 1e6 gave losses of 1e28, then inf)."""
    alpha, delta = guards.check_positive("alpha", alpha), guards.check_positive("delta", delta)
    if alpha > MAX_ALPHA:
        raise ValueError(f"alpha must be at most {MAX_ALPHA:g} (the paper's best is near 3), "
                         f"got {alpha:g}: larger powers overflow float32")
    if alpha * -math.log10(min(delta, 1.0)) > math.log10(MAX_PAIR_TERM):
        raise ValueError(f"delta={delta:g} with alpha={alpha:g} makes pair terms of "
                         f"delta^-alpha over {MAX_PAIR_TERM:g}, past float32's range for a "
                         f"sum of pairs: raise delta or lower alpha")
    return alpha, delta


class ProxyGroups:
    """For a loss module whose own parameters are its proxies (PFML's, PML's proxy losses)."""

    def parameter_groups(self, model_parameters, lr: float,
                         proxy_lr_multiplier: float = 100.0) -> list[dict]:
        """Adam/SGD groups: the model at lr, the proxies (if any) at lr * multiplier (the
        paper's proxies learn 100x faster: docs/method.md, section 3)."""
        lr = guards.check_positive("lr", lr)
        mult = guards.check_positive("proxy_lr_multiplier", proxy_lr_multiplier)
        groups = [{"params": list(model_parameters), "lr": lr}]
        proxies = [p for p in self.parameters() if p.numel()]
        if proxies:
            groups.append({"params": proxies, "lr": lr * mult})
        return groups


class PotentialFieldLoss(ProxyGroups, BaseMetricLossFunction):
    """loss(embeddings, labels) -> energy. Embeddings and proxies are L2-normalised.
    check: value checks every call (True), never (False), or on CPU tensors only, with
    on-device flags verified every VERIFY_EVERY calls on a GPU (None, the default)."""

    VERIFY_EVERY = 100

    def __init__(self, num_classes: int, embedding_size: int, proxies_per_class: int = 15,
                 alpha: float = 3.0, delta: float = 0.2, delta_rep: float | None = None,
                 reduction: str = "sum", eps: float = EPS, check: bool | None = None,
                 **kwargs):
        # defaults: M = 15 (CUB/Cars), alpha near 3 best, delta in [0.1, 0.3]
        # (docs/method.md, sections 3 and 6.1)
        super().__init__(**kwargs)
        d = self.distance  # Eq. 1-6 are Euclidean distances of L2-normalised embeddings
        if not (type(d) is LpDistance and d.p == 2 and d.power == 1 and d.normalize_embeddings):
            got = ", ".join(f"{k}={getattr(d, k, None)}" for k in ("p", "power", "normalize_embeddings"))
            raise ValueError(f"PotentialFieldLoss takes only the default distance, LpDistance(p=2, "
                             f"power=1, normalize_embeddings=True); got {type(d).__name__}({got})")
        self.check, self._seen, self._calls = check, None, 0
        self.num_classes = guards.check_int("num_classes", num_classes, 1)
        self.embedding_size = guards.check_int("embedding_size", embedding_size, 1)
        self.proxies_per_class = guards.check_int("proxies_per_class", proxies_per_class, 0)
        if self.proxies_per_class > MAX_PROXIES_PER_CLASS:  # before the (n, D) proxies exist
            raise ValueError(f"proxies_per_class must be at most {MAX_PROXIES_PER_CLASS}, "
                             f"got {self.proxies_per_class}")
        self.alpha, self.delta = check_power(alpha, delta)
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
        if indices_tuple is not None:  # the energy sums every sample-proxy pair: nothing to mine
            raise ValueError("indices_tuple (a miner's output) is not supported by "
                             "PotentialFieldLoss: use it without a miner")
        energy = self.energy(embeddings, labels)
        return {"loss": {"losses": energy, "indices": None, "reduction_type": "already_reduced"}}

    def energy(self, embeddings, labels, shard: RowShard | None = None) -> torch.Tensor:
        """Eq. 6 of these embeddings and the proxies (what the loss returns). shard: this
        process's block of rows under torch.distributed (see training.distributed)."""
        if isinstance(embeddings, torch.Tensor) and embeddings.ndim and not embeddings.shape[0]:
            raise ValueError(f"embeddings is an empty batch (shape {tuple(embeddings.shape)}); "
                             "the loss needs at least one sample, else it is the proxies' alone")
        values = guards.value_checks(self.check, embeddings)
        guards.check_labels("labels", labels, embeddings.shape[0], self.num_classes, values=values)
        energy = total_energy(
            embeddings, labels, self.proxies, self.proxy_labels.to(embeddings.device),
            alpha=self.alpha, delta=self.delta, delta_rep=self.delta_rep, normalize=True,
            reduction=self.reduction, eps=self.eps, check=values, shard=shard)
        if not values and self.check is None and labels.numel():
            self._watch(energy.detach(), labels)
        return energy

    def _watch(self, energy, labels) -> None:
        """Accumulate [energy not finite, -min label, max label] on the device (no sync)."""
        low, high = torch.aminmax(labels)
        seen = torch.stack([(~torch.isfinite(energy)).long(), -low.long(), high.long()])
        self._seen = seen if self._seen is None else torch.maximum(self._seen, seen)
        self._calls += 1
        if self._calls % self.VERIFY_EVERY == 0:
            self.verify()

    def verify(self) -> None:
        """Raise the ValueError of value checks skipped on a GPU since the last verify()
        (one host sync); a no-op where nothing was skipped."""
        if self._seen is None:
            return
        bad, neg_low, high = (int(v) for v in self._seen.tolist())
        self._seen = None
        if bad:
            raise ValueError("embeddings or proxies contain NaN or inf values: the energy "
                             "was not finite in a call since the last check")
        if neg_low > 0:
            raise ValueError(f"labels must be >= 0, got min {-neg_low}")
        if high >= self.num_classes:
            raise ValueError(f"labels must be in [0, {self.num_classes - 1}] "
                             f"(num_classes={self.num_classes}), got max {high}")

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, proxies_per_class={self.proxies_per_class}, "
                f"alpha={self.alpha}, delta={self.delta}, delta_rep={self.delta_rep}, "
                f"reduction={self.reduction!r}")
