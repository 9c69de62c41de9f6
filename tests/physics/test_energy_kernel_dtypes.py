"""Half-precision embeddings (AMP): the energy is computed in float32, because 1/d^alpha
overflows float16, and the gradient flows back in the input dtype."""
import pytest
import torch

from pfml_core.physics import field as ph
from pfml_core.physics.kernel import gram_energy

HALF = [torch.float16, torch.bfloat16]
KW = dict(alpha=3.0, delta=0.2)


def _batch(dtype, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, dim, generator=g).to(dtype)
    y = torch.randint(0, 5, (40,), generator=g)
    p = torch.randn(10, dim, generator=g).to(dtype)
    return x, y, p, torch.arange(5).repeat(2)


@pytest.mark.parametrize("dim", [64, 8])  # the Gram kernel (D > 16) and the exact path
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_half_energy_equals_float32_of_the_same_values(dtype, dim, reduction):
    x, y, p, py = _batch(dtype, dim)
    u = ph.total_energy(x, y, p, py, reduction=reduction, **KW)
    ref = ph.total_energy(x.float(), y, p.float(), py, reduction=reduction, **KW)
    assert torch.isfinite(u) and u.dtype == torch.float32
    assert torch.allclose(u, ref, rtol=1e-5)


@pytest.mark.parametrize("dim", [64, 8])
@pytest.mark.parametrize("dtype", HALF)
def test_half_backward_gives_finite_gradients_of_the_input_dtype(dtype, dim):
    x, y, p, py = _batch(dtype, dim)
    x, p = x.requires_grad_(), p.requires_grad_()
    ph.total_energy(x, y, p, py, **KW).backward()
    xf, pf = x.detach().float().requires_grad_(), p.detach().float().requires_grad_()
    ph.total_energy(xf, y, pf, py, **KW).backward()
    for half, full in ((x.grad, xf.grad), (p.grad, pf.grad)):
        assert half.dtype == dtype and torch.isfinite(half).all()
        assert torch.allclose(half.float(), full.to(dtype).float(), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("dtype", HALF)
def test_gram_energy_accepts_half_inputs(dtype):
    x, y, _, _ = _batch(dtype, 64)
    x = torch.nn.functional.normalize(x.float(), dim=-1).to(dtype).requires_grad_()
    e = gram_energy(x, y, 3.0, 0.2, 0.2, ph.EPS)
    assert torch.isfinite(e) and e.dtype == torch.float32
    assert torch.allclose(e, gram_energy(x.detach().float(), y, 3.0, 0.2, 0.2, ph.EPS))
    e.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", HALF)
def test_gram_energy_in_blocks_of_rows_matches_one_block(dtype, monkeypatch):
    """Half inputs through several blocks of rows (the CPU default above ~1,000 points):
    same energy and same half-precision gradient as one block."""
    from pfml_core.physics import kernel

    x, y, _, _ = _batch(dtype, 64)
    x = torch.nn.functional.normalize(x.float(), dim=-1).to(dtype)
    whole, blocked = x.clone().requires_grad_(), x.clone().requires_grad_()
    e_whole = gram_energy(whole, y, 3.0, 0.2, 0.2, ph.EPS)
    monkeypatch.setitem(kernel.BLOCK_ELEMENTS, "cpu", 40 * 7)  # blocks of 7 rows
    e_blocked = gram_energy(blocked, y, 3.0, 0.2, 0.2, ph.EPS)
    (e_whole + e_blocked).backward()
    torch.testing.assert_close(e_blocked, e_whole, rtol=1e-6, atol=0)
    assert blocked.grad.dtype == dtype
    torch.testing.assert_close(blocked.grad, whole.grad)
