"""Pair potentials: PFML's decaying one (paper Eq. 1-2) and named non-decaying ones kept
for side-by-side teaching. Each maps a distance d (>= eps) to psi(d) and psi'(d)."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
PairFn = Callable[[Tensor, float, float, float], Tensor]  # (d, alpha, radius, eps) -> tensor


@dataclass(frozen=True)
class Potential:
    """One attraction/repulsion pair and its derivatives with respect to d."""

    name: str
    label: str
    attraction: PairFn
    repulsion: PairFn
    d_attraction: PairFn
    d_repulsion: PairFn
    decaying: bool  # True: attraction force shrinks with distance (PFML's key idea)
    uses_alpha: bool


# --- PFML (Eq. 1-2), THE definition: one clamped inverse power per pair kind ---
#   psi(d) = sign * clamp(d, lo, hi)^-alpha,  psi'(d) = -sign * alpha * d^-(alpha+1), lo < d < hi
#   attraction (same class):  sign -1, d in [max(delta, eps), inf)   (flat inside delta)
#   repulsion (other class):  sign +1, d in [eps, max(delta_rep, eps)] (a margin)
# Every fast path (field._field, field.forces, kernel.gram_energy) takes its clamps and
# signs from `pfml_range`; tests/physics/test_physics_kernel.py checks each one against a naive
# loop over pairs built from the functions below and autograd.
def pfml_range(attract: bool, radius: float, eps: float) -> tuple[float, float, float]:
    """(sign, lo, hi): PFML's pair potential is sign * clamp(d, lo, hi)^-alpha."""
    if attract:
        return -1.0, max(radius, eps), math.inf
    return 1.0, eps, max(radius, eps)


def _clamped_power(attract):
    def psi(d, alpha, radius, eps):
        sign, lo, hi = pfml_range(attract, radius, eps)
        return sign * d.clamp(min=lo, max=hi).pow(-alpha)
    return psi


def _clamped_power_slope(attract):
    def dpsi(d, alpha, radius, eps):
        sign, lo, hi = pfml_range(attract, radius, eps)
        acts = (d > lo) & (d < hi)  # no force where the clamp holds: no collapse, a margin
        slope = -sign * alpha * d.clamp(min=eps).pow(-alpha - 1)
        return torch.where(acts, slope, torch.zeros_like(d))
    return dpsi


_pfml_att, _pfml_rep = _clamped_power(True), _clamped_power(False)
_pfml_datt, _pfml_drep = _clamped_power_slope(True), _clamped_power_slope(False)


# --- contrastive-style: d^2 attraction (force 2d grows with distance), hinged repulsion ---
def _con_att(d, alpha, delta, eps):
    return d * d


def _con_rep(d, alpha, delta, eps):
    return (delta - d).clamp(min=0).pow(2)


def _con_datt(d, alpha, delta, eps):
    return 2 * d


def _con_drep(d, alpha, delta, eps):
    return -2 * (delta - d).clamp(min=0)


# --- linear: constant-size attraction (like triplet / proxy losses), hinged repulsion ---
def _lin_att(d, alpha, delta, eps):
    return d.clone()


def _lin_rep(d, alpha, delta, eps):
    return (delta - d).clamp(min=0)


def _lin_datt(d, alpha, delta, eps):
    return torch.ones_like(d)


def _lin_drep(d, alpha, delta, eps):
    return -(d < delta).to(d.dtype)


POTENTIALS: dict[str, Potential] = {
    "pfml": Potential("pfml", "PFML (decaying, Eq. 1-2)", _pfml_att, _pfml_rep,
                      _pfml_datt, _pfml_drep, decaying=True, uses_alpha=True),
    "contrastive": Potential("contrastive", "Contrastive-style (d² pull, hinge push)",
                             _con_att, _con_rep, _con_datt, _con_drep,
                             decaying=False, uses_alpha=False),
    "linear": Potential("linear", "Constant pull (triplet/proxy-like), hinge push",
                        _lin_att, _lin_rep, _lin_datt, _lin_drep,
                        decaying=False, uses_alpha=False),
}


def get_potential(name: str) -> Potential:
    """Look a potential up by name; ValueError lists the known names."""
    if name not in POTENTIALS:
        raise ValueError(f"potential must be one of {sorted(POTENTIALS)}, got {name!r}")
    return POTENTIALS[name]
