"""Fast PFML energy (paper Eq. 6) over all ordered pairs of a point set: one Gram product,
a few elementwise passes, and the gradient computed in the same sweep (math: `gram_energy`,
docs/method.md sections 4-5). No host sync: no `nonzero`, no `.item()`, no data-dependent
shapes, so a GPU never waits for the host."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pfml_core.physics.potentials import pfml_range

Tensor = torch.Tensor
# rows per block x n, which bounds each (rows, n) buffer: 4 MiB of float32 on a CPU (bigger
# blocks take more memory there and no less time), 256 MiB elsewhere
# (one block, so few kernel launches, up to 8,192 points)
BLOCK_ELEMENTS = {"cpu": 1 << 20, "other": 1 << 26}


def inv_pow(t: Tensor, e: float, out: Tensor | None = None) -> Tensor:
    """t^-e; the half-integer and integer exponents of integer alpha use rsqrt / reciprocal
    and a cube or square (a general pow is ~15x slower on a CPU). out: a buffer to write
    into (only where autograd does not track t)."""
    if t.requires_grad:
        out = None
    power = 3 if e in (1.5, 3.0) else 2 if e == 2.0 else 1
    if e in (0.5, 1.5):  # alpha = 1, 3 (the paper's best)
        r = torch.rsqrt(t, out=out)
    elif e in (1.0, 2.0, 3.0):  # alpha = 2, 4, 6
        r = torch.reciprocal(t, out=out)
    else:
        return torch.pow(t, -e) if out is None else torch.pow(t, -e, out=out)
    if power == 1:
        return r
    return r.pow(power) if r.requires_grad else r.pow_(power)


def pfml_psi(sq: Tensor, other: Tensor, alpha, delta, delta_rep, eps) -> Tensor:
    """psi alone (no slopes: the field on a grid) from squared distances sq (..., P, S);
    other is 1.0 for a pair of different classes, 0.0 for the same class (broadcastable,
    e.g. (S,)). psi = max(sign * max(d, eps)^-alpha, floor), floor = psi at the clamp edge
    where |psi| is smallest. Overwrites sq unless autograd tracks it."""
    s_att, att_lo, _ = pfml_range(True, delta, eps)
    s_rep, rep_lo, rep_hi = pfml_range(False, delta_rep, eps)
    sign = torch.lerp(sq.new_tensor(s_att), sq.new_tensor(s_rep), other)  # exact at 0 and 1
    floor = torch.lerp(sq.new_tensor(s_att * att_lo ** -alpha),
                       sq.new_tensor(s_rep * rep_hi ** -alpha), other)
    if sq.requires_grad:
        return torch.maximum(inv_pow(sq.clamp(min=rep_lo * rep_lo), alpha / 2) * sign, floor)
    inv = inv_pow(sq.clamp_(min=rep_lo * rep_lo), alpha / 2, out=sq)
    return torch.maximum(inv.mul_(sign), floor, out=inv)


def pfml_terms(sq: Tensor, other: Tensor, alpha, delta, delta_rep, eps) -> tuple[Tensor, Tensor]:
    """(psi, t) from squared distances sq (..., P, S), t the per-pair clamped sq (for
    `pfml_slope`); other as in `pfml_psi`. Leaves sq and other untouched; differentiable
    by autograd when sq requires grad (then without buffer reuse)."""
    s_att, att_lo, _ = pfml_range(True, delta, eps)
    s_rep, rep_lo, rep_hi = pfml_range(False, delta_rep, eps)
    assert (s_att, s_rep) == (-1.0, 1.0)  # so sign = 2 * other - 1, with no (m, n) buffer
    t = sq.clamp(min=att_lo * att_lo)  # attraction: max(d, delta)^2
    rep = sq.clamp(min=rep_lo * rep_lo, max=rep_hi * rep_hi)  # clamp(d, eps, delta_rep)^2
    if sq.requires_grad:
        t = torch.lerp(t, rep, other)
        mag = inv_pow(t, alpha / 2)
        return 2.0 * mag * other - mag, t
    t = t.lerp_(rep, other)  # exact for weights 0 and 1
    mag = inv_pow(t, alpha / 2, out=rep)  # |psi| = t^(-alpha/2)
    return mag.addcmul_(mag, other, value=-2.0).neg_(), t  # sign: -1 same class, +1 other


def pfml_slope(psi: Tensor, t: Tensor, sq: Tensor) -> Tensor:
    """k = psi / t where the clamp does not hold (t == sq), else 0; consumes t and sq."""
    held = torch.sub(sq, t, out=sq).sign_().abs_()  # 1 where clamped: no force
    k = torch.div(psi, t, out=t)
    return k.addcmul_(k, held, value=-1.0)


def _class_keys(labels: Tensor, dtype) -> Tensor:
    """What `_other_class` compares. On a CPU, where boolean passes are ~5x slower than
    float ones, the labels renumbered 0, 1, ... as exact floats (sort-based: no sync,
    unlike torch.unique); elsewhere the labels themselves."""
    if labels.device.type != "cpu":
        return labels
    ordered, order = labels.sort()
    rank = torch.zeros_like(ordered)
    rank[1:] = (ordered[1:] != ordered[:-1]).cumsum(0)
    return torch.empty_like(rank).scatter_(0, order, rank).to(dtype)


def _other_class(rows: Tensor, cols: Tensor, dtype) -> Tensor:
    """(m, n): 1.0 where the classes differ, 0.0 where they agree."""
    if rows.is_floating_point():  # renumbered ids differ by >= 1 across classes
        return torch.sub(rows[:, None], cols[None, :]).abs_().clamp_(max=1.0)
    return torch.ne(rows[:, None], cols[None, :]).to(dtype)


def _block(x, sq_norm, keys, a, b, alpha, delta, delta_rep, eps, grad: bool):
    """Energy of rows [a, b) against all points, and those rows of dU/dx (or None)."""
    q = x[a:b]  # (m, D)
    sq = torch.addmm(sq_norm.unsqueeze(0), q, x.t(), alpha=-2.0).add_(sq_norm[a:b, None])  # (m, n)
    other = _other_class(keys[a:b], keys, x.dtype)  # (m, n)
    psi, t = pfml_terms(sq, other, alpha, delta, delta_rep, eps)
    psi.diagonal(a).zero_()  # a point never acts on itself
    energy = psi.sum()
    if not grad:
        return energy, None
    k = pfml_slope(psi, t, sq)  # (m, n)
    g = torch.addmm(k.sum(1, keepdim=True) * q, k, x, alpha=-1.0)  # rowsum(k) x_i - k @ x
    return energy, g.mul_(-2.0 * alpha)


def _sweep(x, labels, rows, params, grad: bool):
    """Energy of rows [start, stop) and their gradient rows, block by block."""
    start, stop = rows
    sq_norm, keys = x.pow(2).sum(1), _class_keys(labels, x.dtype)
    budget = BLOCK_ELEMENTS["cpu" if x.device.type == "cpu" else "other"]
    step = max(1, budget // max(x.shape[0], 1))
    energy, grads = x.new_zeros(()), [x.new_zeros(0, x.shape[1])]
    for a in range(start, stop, step):
        e, g = _block(x, sq_norm, keys, a, min(a + step, stop), *params, grad=grad)
        energy = energy + e
        grads.append(g)
    if not grad:
        return energy, None
    return energy, grads[1] if len(grads) == 2 else torch.cat(grads)  # (stop - start, D)


@dataclass(frozen=True)
class RowShard:
    """This process's block of rows of the pair matrix, and the two collectives that make
    the blocks the whole: `sum` all-reduces a 0-d tensor; `gather(rows, sizes)`
    concatenates every process's gradient rows in rank order (sizes: rows per process).
    Every process holds the same points."""

    index: int
    count: int
    sum: Callable[[Tensor], Tensor]
    gather: Callable[[Tensor, list[int]], Tensor]

    def sizes(self, n: int) -> list[int]:
        """Rows per process: contiguous, near-equal blocks (differ by at most one)."""
        size, extra = divmod(n, self.count)
        return [size + (r < extra) for r in range(self.count)]

    def rows(self, n: int) -> tuple[int, int]:
        """[start, stop) of this process's block."""
        sizes = self.sizes(n)
        start = sum(sizes[: self.index])
        return start, start + sizes[self.index]


class _GramEnergy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, labels, params, shard):
        rows = shard.rows(x.shape[0]) if shard is not None else (0, x.shape[0])
        energy, grad = _sweep(x, labels, rows, params, grad=True)
        ctx.save_for_backward(grad)
        ctx.shard, ctx.n = shard, x.shape[0]
        return energy if shard is None else shard.sum(energy)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        if ctx.shard is not None:
            grad = ctx.shard.gather(grad, ctx.shard.sizes(ctx.n))  # (n, D), rank order
        return grad * grad_out, None, None, None


def gram_energy(x: Tensor, labels: Tensor, alpha: float, delta: float, delta_rep: float,
                eps: float, shard: RowShard | None = None) -> Tensor:
    """Sum over ordered pairs i != j of PFML psi(|x_i - x_j|); inputs already validated.
    Half precision is computed in float32 (1/d^alpha overflows float16); the gradient
    flows back in the input dtype. With a shard, this process computes its block of rows
    and the collectives make value and gradient those of the whole set.

    With s_ij = |x_i - x_j|^2 from the Gram product and the clamps and signs of
    `potentials.pfml_range` (THE definition of Eq. 1-2):
        t_ij   = s_ij clamped into [lo^2, hi^2] of the pair's kind (attraction or repulsion)
        psi_ij = sign_ij * t_ij^(-alpha/2)                  (the pair potential)
        k_ij   = psi_ij / t_ij where the clamp does not hold, else 0
        dU/dx_i = 2 * sum_j c_ij (x_i - x_j),   c_ij = psi'(d_ij) / d_ij = -alpha * k_ij
    (the 2: each unordered pair is counted twice). Rows [a, b) of the pair matrix give the
    gradient rows [a, b) exactly, so G processes can each take a block of rows (`RowShard`):
    1/G of the pair work each, an all-reduce of the energy and an all-gather of the gradient.
    Checked against a naive loop over POTENTIALS["pfml"] with autograd, against
    physics.definition, and by a host-sync detector in tests/physics/test_physics_kernel.py; shards in
    tests/physics/test_sharded_energy.py."""
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    params = (alpha, delta, delta_rep, eps)
    if x.requires_grad and torch.is_grad_enabled():
        return _GramEnergy.apply(x, labels, params, shard)
    rows = shard.rows(x.shape[0]) if shard is not None else (0, x.shape[0])
    energy = _sweep(x, labels, rows, params, grad=False)[0]
    return energy if shard is None else shard.sum(energy)
