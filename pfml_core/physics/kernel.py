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
    """Energy and the scaled gradient coefficients k = c / (-alpha) of PFML on x (n, D).

    Every pair is first treated as repulsive (most pairs are: many classes), then the
    few same-class pairs are gathered and corrected. That keeps the (n, n) work to a
    handful of in-place passes over one buffer."""
    eps2, rep2, att2 = eps * eps, max(delta_rep, eps) ** 2, max(delta, eps) ** 2
    sq_norm = x.pow(2).sum(1)  # (n,)
    sq = torch.addmm(sq_norm.unsqueeze(1) + sq_norm.unsqueeze(0), x, x.t(),
                     beta=1.0, alpha=-2.0)  # (n, n): |x_i - x_j|^2
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    same.diagonal().zero_()  # a point never acts on itself
    ii, jj = same.nonzero(as_tuple=True)  # same-class pairs, i != j
    sq_same = sq[ii, jj].clamp(min=eps2)
    moving = (sq > eps2) & (sq < rep2)  # repulsion acts: eps < d < delta_rep
    sq.clamp_(min=eps2, max=rep2)  # squared repulsion distance min(d, delta_rep)^2
    p = inv_pow(sq, alpha / 2)  # (n, n): psi_rep = min(d, delta_rep)^-alpha
    p.diagonal().zero_()
    energy = p.sum()
    k = torch.div(p, sq, out=sq).mul_(moving)  # psi'/d / (-alpha), repulsive pairs
    del p, moving
    # same-class pairs: replace repulsion by attraction -max(d, delta)^-alpha
    rep_same = inv_pow(sq_same.clamp(max=rep2), alpha / 2)
    att_c2 = sq_same.clamp(min=att2)
    att = inv_pow(att_c2, alpha / 2)
    energy = energy - rep_same.sum() - att.sum()
    k[ii, jj] = -(att / att_c2) * (sq_same > att2)
    return energy, k


def inv_pow(t: Tensor, e: float, reuse: bool = False) -> Tensor:
    """t^-e, with a cheap multiply path for the half-integer exponents of integer alpha.
    reuse=True overwrites t where autograd does not need it (saves an n^2 buffer)."""
    reuse = reuse and not t.requires_grad
    if e == 1.5:  # alpha = 3, the paper's best
        r = t.rsqrt_() if reuse else t.rsqrt()
        return r.pow(3) if r.requires_grad else r.pow_(3)
    return t.pow_(-e) if reuse else t.pow(-e)


class _GramEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, labels, alpha, delta, delta_rep, eps):
        energy, k = _pair_terms(x, labels, alpha, delta, delta_rep, eps)
        ctx.save_for_backward(x, k)
        ctx.alpha = alpha
        return energy

    @staticmethod
    def backward(ctx, grad_out):
        x, k = ctx.saved_tensors
        # dU/dx = 2 (rowsum(c) x - c @ x) with c = -alpha k symmetric
        grad = torch.addmm(k.sum(1, keepdim=True) * x, k, x, beta=1.0, alpha=-1.0)
        return grad.mul_(-2.0 * ctx.alpha * grad_out), None, None, None, None, None


def gram_energy(x: Tensor, labels: Tensor, alpha: float, delta: float,
                delta_rep: float, eps: float) -> Tensor:
    """Sum over ordered pairs i != j of PFML psi(|x_i - x_j|); inputs already validated.
    Half precision is computed in float32 (1/d^alpha overflows float16); the gradient
    flows back in the input dtype."""
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    if not x.requires_grad:
        with torch.no_grad():
            return _pair_terms(x, labels, alpha, delta, delta_rep, eps)[0]
    return _GramEnergy.apply(x, labels, alpha, delta, delta_rep, eps)
