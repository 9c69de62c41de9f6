"""The previous PFML Gram kernel, verbatim from before the sync-free rewrite: the exact
reference of pfml_core.physics.kernel in tests/test_physics_kernel.py, and the "before"
of bench/loss_scaling.py and bench/loss_speed.py (not used in production). It gathered
the same-class pairs with `nonzero()`, a host sync on a GPU. No pytest import, so the
benches run where only torch is installed."""
import contextlib

import torch

from pfml_core.physics import field


def _inv_pow(t, e, reuse=False):
    reuse = reuse and not t.requires_grad
    if e == 1.5:  # alpha = 3, the paper's best
        r = t.rsqrt_() if reuse else t.rsqrt()
        return r.pow(3) if r.requires_grad else r.pow_(3)
    return t.pow_(-e) if reuse else t.pow(-e)


def _reference_pair_terms(x, labels, alpha, delta, delta_rep, eps):
    eps2, rep2, att2 = eps * eps, max(delta_rep, eps) ** 2, max(delta, eps) ** 2
    sq_norm = x.pow(2).sum(1)
    sq = torch.addmm(sq_norm.unsqueeze(1) + sq_norm.unsqueeze(0), x, x.t(), beta=1.0, alpha=-2.0)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    same.diagonal().zero_()
    ii, jj = same.nonzero(as_tuple=True)
    sq_same = sq[ii, jj].clamp(min=eps2)
    moving = (sq > eps2) & (sq < rep2)
    sq.clamp_(min=eps2, max=rep2)
    p = _inv_pow(sq, alpha / 2)
    p.diagonal().zero_()
    energy = p.sum()
    k = torch.div(p, sq, out=sq).mul_(moving)
    del p, moving
    rep_same = _inv_pow(sq_same.clamp(max=rep2), alpha / 2)
    att_c2 = sq_same.clamp(min=att2)
    att = _inv_pow(att_c2, alpha / 2)
    energy = energy - rep_same.sum() - att.sum()
    k[ii, jj] = -(att / att_c2) * (sq_same > att2)
    return energy, k


class _ReferenceGramEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, labels, alpha, delta, delta_rep, eps):
        energy, k = _reference_pair_terms(x, labels, alpha, delta, delta_rep, eps)
        ctx.save_for_backward(x, k)
        ctx.alpha = alpha
        return energy

    @staticmethod
    def backward(ctx, grad_out):
        x, k = ctx.saved_tensors
        grad = torch.addmm(k.sum(1, keepdim=True) * x, k, x, beta=1.0, alpha=-1.0)
        return grad.mul_(-2.0 * ctx.alpha * grad_out), None, None, None, None, None


def reference_gram_energy(x, labels, alpha, delta, delta_rep, eps, shard=None):
    """The previous kernel, same signature as kernel.gram_energy (no shards)."""
    assert shard is None
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    if not x.requires_grad:
        with torch.no_grad():
            return _reference_pair_terms(x, labels, alpha, delta, delta_rep, eps)[0]
    return _ReferenceGramEnergy.apply(x, labels, alpha, delta, delta_rep, eps)


@contextlib.contextmanager
def previous_kernel():
    """total_energy (and so PotentialFieldLoss) with the previous kernel swapped in,
    everything around it the same: the "before" of the benches."""
    current, field.gram_energy = field.gram_energy, reference_gram_energy
    try:
        yield
    finally:
        field.gram_energy = current
