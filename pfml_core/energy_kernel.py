"""Fast PFML energy over all ordered pairs of a point set, with a hand-written backward.

Why: Eq. 6 needs (B + N*M)^2 pair terms of high-dimensional vectors. The Gram matrix
X @ X.T is the floor; this kernel adds a few elementwise passes on the (n, n) matrix
and one more matrix product for the gradient, instead of autograd's chain of n^2 buffers.
Math (psi_ij = psi(d_ij), d_ij = |x_i - x_j|, each unordered pair counted twice):
    dU/dx_i = 2 * sum_j c_ij (x_i - x_j),   c_ij = psi'(d_ij) / d_ij
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def _pair_terms(x: Tensor, labels: Tensor, alpha, delta, delta_rep, eps):
    """Energy and the gradient coefficient matrix c (n, n) of PFML on points x (n, D)."""
    sq_norm = x.pow(2).sum(1)  # (n,)
    sq = torch.addmm(sq_norm.unsqueeze(1) + sq_norm.unsqueeze(0), x, x.t(),
                     beta=1.0, alpha=-2.0)  # (n, n): |x_i|^2 + |x_j|^2 - 2 x_i.x_j
    sq.clamp_(min=eps * eps)
    d = sq.sqrt()
    same = labels.unsqueeze(1) == labels.unsqueeze(0)  # (n, n)
    # c_ij = d clamped into the flat part of psi: [delta, inf) for attraction,
    # [eps, delta_rep] for repulsion; psi = -c^-alpha (same class) or +c^-alpha.
    unclamped = torch.where(same, d > delta, d < delta_rep) & (sq > eps * eps)
    clamped = torch.where(same, d.clamp(min=delta), d.clamp_(max=delta_rep))  # reuses d
    p = clamped.pow_(-alpha)  # (n, n) = c^-alpha
    p.diagonal().zero_()  # a point never acts on itself
    sign = 1.0 - 2.0 * same.to(x.dtype)  # -1 same class (attraction), +1 other class
    p.mul_(sign)  # psi_ij
    energy = p.sum()
    # psi'(d)/d = -alpha * psi / d^2 where unclamped (psi = sign*d^-alpha there), else 0
    coef = p.div_(sq).mul_(-alpha).mul_(unclamped)
    return energy, coef


class _GramEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, labels, alpha, delta, delta_rep, eps):
        energy, coef = _pair_terms(x, labels, alpha, delta, delta_rep, eps)
        ctx.save_for_backward(x, coef)
        return energy

    @staticmethod
    def backward(ctx, grad_out):
        x, coef = ctx.saved_tensors
        # 2 * (rowsum(c)_i x_i - (c @ x)_i), c symmetric
        grad = torch.addmm(coef.sum(1, keepdim=True) * x, coef, x, beta=1.0, alpha=-1.0)
        return grad.mul_(2.0 * grad_out), None, None, None, None, None


def gram_energy(x: Tensor, labels: Tensor, alpha: float, delta: float,
                delta_rep: float, eps: float) -> Tensor:
    """Sum over ordered pairs i != j of PFML psi(|x_i - x_j|); inputs already validated."""
    if not x.requires_grad:
        with torch.no_grad():
            return _pair_terms(x, labels, alpha, delta, delta_rep, eps)[0]
    return _GramEnergy.apply(x, labels, alpha, delta, delta_rep, eps)
