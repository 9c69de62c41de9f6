"""PFML's physics (docs/method.md, sections 1-5): pair potentials, class potential fields
by superposition, forces, and the total energy the loss minimises. The pair potential is
defined once, in `potentials`; the fast PFML paths here take it from there through
`kernel.pfml_psi` / `pfml_terms`. Everything else (playground, arrows, training) calls
these functions."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pfml_core import guards
from pfml_core.physics.kernel import RowShard, gram_energy, pfml_psi, pfml_slope, pfml_terms
from pfml_core.physics.potentials import Potential, get_potential

Tensor = torch.Tensor
EPS = 1e-6  # distance clamp (docs/method.md, section 4): keeps 1/d^alpha finite at d = 0
REDUCTIONS = ("sum", "mean", "none")


def _settings(alpha, delta, delta_rep, eps, potential):
    """Validate the shared hyperparameters once; delta_rep defaults to delta
    (docs/method.md, section 1)."""
    pot = get_potential(potential)
    alpha = guards.check_positive("alpha", alpha)
    delta = guards.check_positive("delta", delta)
    delta_rep = delta if delta_rep is None else guards.check_positive("delta_rep", delta_rep)
    eps = guards.check_positive("eps", eps)
    return pot, alpha, delta, delta_rep, eps


def safe_eps(eps: float, alpha: float, dtype: torch.dtype) -> float:
    """The distance clamp actually used: eps, raised where eps^-(alpha+2) (the largest
    gradient coefficient) would overflow the dtype, e.g. float32 with alpha > 3."""
    headroom = torch.finfo(dtype).max / 1e8  # room for sums over ~1e8 pairs
    return max(eps, (headroom / max(alpha, 1.0)) ** (-1.0 / (alpha + 2.0)))


def _as_float(d) -> Tensor:
    d = torch.as_tensor(d)
    return d if d.is_floating_point() else d.to(torch.get_default_dtype())


def attraction(d: Tensor, *, alpha: float, delta: float, eps: float = EPS) -> Tensor:
    """Eq. 1: -1/delta^alpha inside delta, -1/d^alpha beyond (force decays with d)."""
    pot, alpha, delta, _, eps = _settings(alpha, delta, None, eps, "pfml")
    d = _as_float(d)
    eps = safe_eps(eps, alpha, d.dtype)
    return pot.attraction(d.clamp(min=eps), alpha, delta, eps)


def repulsion(d: Tensor, *, alpha: float, delta: float, eps: float = EPS) -> Tensor:
    """Eq. 2: 1/d^alpha inside delta (a margin), constant 1/delta^alpha beyond (no force)."""
    pot, alpha, delta, _, eps = _settings(alpha, delta, None, eps, "pfml")
    d = _as_float(d)
    eps = safe_eps(eps, alpha, d.dtype)
    return pot.repulsion(d.clamp(min=eps), alpha, delta, eps)


def _sq_distance(x: Tensor, y: Tensor) -> Tensor:
    """Squared distances (..., P, S). For small D, exact per-coordinate differences (no
    cancellation on the 2-D plane) in one (..., D, P, S) buffer, contiguous per coordinate,
    summed in place: no strided (P, S, D) reduction, no further (P, S) allocation."""
    dim = x.shape[-1]
    if not 0 < dim <= 16:
        return (x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1).unsqueeze(-2)
                - 2 * x @ y.transpose(-1, -2))
    diff = x.mT.contiguous().unsqueeze(-1) - y.mT.contiguous().unsqueeze(-2)
    sq = diff[..., 0, :, :].square_()
    for k in range(1, dim):
        sq += diff[..., k, :, :].square_()
    return sq


def pairwise_distance(x: Tensor, y: Tensor, eps: float = EPS) -> Tensor:
    """Euclidean distances (..., P, S), clamped below by eps so gradients stay finite."""
    return _sq_distance(x, y).clamp(min=eps * eps).sqrt()


def _same_class(cls: Tensor, source_labels: Tensor) -> Tensor:
    return cls.unsqueeze(-1) == source_labels  # (P, S), or (S,) for a 0-d cls


def _field(points, sources, same, pot: Potential, alpha, delta, delta_rep, eps, exclude_self):
    """Psi at each point (..., P): superposition over sources, optional self exclusion.
    same: (P, S) or, for one class for all points, (S,). The PFML branch is
    potentials.POTENTIALS["pfml"] through kernel.pfml_psi; checked against a naive loop
    over that definition in tests/physics/test_physics_kernel.py (test_field_and_forces_...,
    test_energy_on_the_grid_path_equals_the_gram_path)."""
    if pot.name == "pfml":
        other = (~same).to(points.dtype)  # 1.0 repulsion, 0.0 attraction
        psi = pfml_psi(_sq_distance(points, sources), other, alpha, delta, delta_rep, eps)
    else:
        d = pairwise_distance(points, sources, eps)  # (..., P, S)
        psi = torch.where(same, pot.attraction(d, alpha, delta, eps),
                          pot.repulsion(d, alpha, delta_rep, eps))
    if exclude_self:
        psi = psi.masked_fill_(_self_mask(points, sources), 0.0)
    return psi.sum(-1)


def _self_mask(points, sources):
    p, s = points.shape[-2], sources.shape[-2]
    if p > s:
        raise ValueError(f"exclude_self=True needs points[i] to be sources[i]: got {p} points "
                         f"but only {s} sources")
    return torch.eye(p, s, dtype=torch.bool, device=points.device)


def _class_vector(cls, p, device):
    if isinstance(cls, torch.Tensor) and cls.ndim == 1:
        return guards.check_labels("cls", cls, p).to(device)
    guards.check_int("cls", int(cls) if isinstance(cls, torch.Tensor) else cls, 0)
    return torch.tensor(int(cls), device=device)  # one class: a (S,) mask, broadcast


def class_potential(points: Tensor, sources: Tensor, source_labels: Tensor, cls, *,
                    alpha: float, delta: float, delta_rep: float | None = None,
                    eps: float = EPS, exclude_self: bool = False,
                    potential: str = "pfml") -> Tensor:
    """Psi_cls at each point (Eq. 4-5): sum of attraction from sources of class cls and
    repulsion from all others. `cls` is one class id or a (P,) tensor (each point's own
    class). exclude_self=True means points[i] is sources[i], so that pair is skipped.
    Points may carry leading batch dimensions: (..., P, D) -> (..., P)."""
    pot, alpha, delta, delta_rep, eps = _settings(alpha, delta, delta_rep, eps, potential)
    guards.check_points("points", points)
    guards.check_points("sources", sources, dim=points.shape[-1])
    if sources.ndim != 2:
        raise ValueError(f"sources must have shape (S, D), got {tuple(sources.shape)}")
    labels = guards.check_labels("source_labels", source_labels, sources.shape[0]).to(points.device)
    same = _same_class(_class_vector(cls, points.shape[-2], points.device), labels)
    eps = safe_eps(eps, alpha, points.dtype)
    return _field(points, sources, same, pot, alpha, delta, delta_rep, eps, exclude_self)


def _stack(embeddings, labels, proxies, proxy_labels, check=None):
    """Batch embeddings and proxies as one set of sources: (B + P, D) and (B + P,).
    Half precision is computed in float32: 1/d^alpha overflows float16 (gradients flow
    back in the input dtype). Value checks as guards.value_checks(check, embeddings)."""
    values = guards.value_checks(check, embeddings)
    guards.check_points("embeddings", embeddings, values=values)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must have shape (B, D), got {tuple(embeddings.shape)}")
    labels = guards.check_labels("labels", labels, embeddings.shape[0], values=values)
    labels = labels.to(embeddings.device)
    dtype = torch.promote_types(embeddings.dtype, torch.float32)  # float16/bfloat16 -> float32
    if proxies is None:
        return embeddings.to(dtype), labels
    guards.check_points("proxies", proxies, dim=embeddings.shape[1], values=values)
    if proxies.ndim != 2:
        raise ValueError(f"proxies must have shape (P, D), got {tuple(proxies.shape)}")
    if proxy_labels is None:
        raise ValueError("proxy_labels must be given when proxies are given")
    plabels = guards.check_labels("proxy_labels", proxy_labels, proxies.shape[0], values=values)
    points = torch.cat([embeddings.to(dtype), proxies.to(dtype)])  # (B + P, D)
    return points, torch.cat([labels, plabels.to(labels.device)])


def total_energy(embeddings: Tensor, labels: Tensor, proxies: Tensor | None = None,
                 proxy_labels: Tensor | None = None, *, alpha: float, delta: float,
                 delta_rep: float | None = None, normalize: bool = True,
                 reduction: str = "sum", eps: float = EPS, potential: str = "pfml",
                 check: bool | None = None, shard: RowShard | None = None) -> Tensor:
    """Eq. 6: U = sum over batch points and proxies of their own class potential, a raw
    sum over ordered pairs (proxy-proxy pairs included). normalize=True L2-normalises
    (real models); False keeps plane coordinates (2-D toy). reduction: "sum" (paper),
    "mean" (per point) or "none" (each point's Psi, shape (B + P,)).
    check: value checks (finite points, labels >= 0); None runs them for CPU tensors only,
    so on a GPU the energy never waits for the host. shard: this process's block of rows
    (kernel.RowShard, built by pfml_core.training.distributed); PFML, D > 16, sum or mean."""
    pot, alpha, delta, delta_rep, eps = _settings(alpha, delta, delta_rep, eps, potential)
    guards.check_choice("reduction", reduction, REDUCTIONS)
    points, point_labels = _stack(embeddings, labels, proxies, proxy_labels, check)
    if normalize:
        points = F.normalize(points, dim=-1)
    n, eps = points.shape[0], safe_eps(eps, alpha, points.dtype)
    gram = reduction != "none" and pot.name == "pfml" and points.shape[1] > 16
    if shard is not None and not gram:
        raise ValueError("shard needs potential='pfml', more than 16 dimensions and reduction "
                         f"'sum' or 'mean', got {potential!r}, {points.shape[1]}, {reduction!r}")
    if gram:
        energy = gram_energy(points, point_labels, alpha, delta, delta_rep, eps, shard)
    else:
        same = _same_class(point_labels, point_labels)
        per_point = _field(points, points, same, pot, alpha, delta, delta_rep, eps, True)
        if reduction == "none":
            return per_point
        energy = per_point.sum()
    return energy / max(n, 1) if reduction == "mean" else energy


def forces(embeddings: Tensor, labels: Tensor, proxies: Tensor | None = None,
           proxy_labels: Tensor | None = None, *, alpha: float, delta: float,
           delta_rep: float | None = None, eps: float = EPS,
           potential: str = "pfml") -> Tensor:
    """-grad of each point's own class field at that point, the others held fixed:
    the arrows of the playground, in the given (plane) coordinates. Shape (B + P, D),
    embeddings first, then proxies. The PFML branch is potentials.POTENTIALS["pfml"]
    through kernel.pfml_terms / pfml_slope; checked against autograd of a naive loop over
    that definition in tests/physics/test_physics_kernel.py (test_field_and_forces_...)."""
    pot, alpha, delta, delta_rep, eps = _settings(alpha, delta, delta_rep, eps, potential)
    points, point_labels = _stack(embeddings, labels, proxies, proxy_labels)
    same = _same_class(point_labels, point_labels)
    eps = safe_eps(eps, alpha, points.dtype)
    x = points.mT.contiguous()
    diff = x.unsqueeze(-1) - x.unsqueeze(-2)  # (D, N, N): z_i - z_j, one plane per coordinate
    sq = diff.square().sum(0)  # (N, N)
    if pot.name == "pfml":  # psi'/d = -alpha k; none where a clamp holds (self pairs too)
        psi, t = pfml_terms(sq, (~same).to(sq.dtype), alpha, delta, delta_rep, eps)
        coef = pfml_slope(psi, t, sq).mul_(-alpha)
    else:
        d = sq.clamp_(min=eps * eps).sqrt()
        coef = torch.where(same, pot.d_attraction(d, alpha, delta, eps),
                           pot.d_repulsion(d, alpha, delta_rep, eps)) / d
        coef = coef.masked_fill_(sq <= eps * eps, 0.0)  # no self force, none when clamped
    return -(coef * diff).sum(-1).mT.contiguous()  # (N, D)
