"""physics.definition, the loss on one screen, against a case worked by hand and finite
differences; then field.total_energy (the Gram kernel for D > 16, the grid path below)
against the definition over sizes, dtypes and proxies."""
import math

import pytest
import torch

from pfml_core.physics import definition, total_energy

F64 = torch.float64


def test_three_points_worked_by_hand():
    # unit circle: a at 0, b at 90 degrees (same class), c at 180 degrees (other class)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=F64)
    y = torch.tensor([0, 0, 1])
    # a-b: d = sqrt 2 > delta  -> -1/2 per ordered pair
    # a-c: d = 2 > delta_rep 1.5 -> 1/1.5^2 ; b-c: d = sqrt 2 < 1.5 -> 1/2
    expected = 2 * (-1 / 2) + 2 * (1 / 1.5**2) + 2 * (1 / 2)
    u = definition.total_energy(x, y, alpha=2.0, delta=0.2, delta_rep=1.5)
    assert u.item() == pytest.approx(expected, rel=1e-12)
    # inside delta the pull is flat: two same-class points closer than delta give -1/delta^a
    close = torch.tensor([[1.0, 0.0], [math.cos(0.05), math.sin(0.05)]], dtype=F64)
    u = definition.total_energy(close, torch.tensor([3, 3]), alpha=3.0, delta=0.2)
    assert u.item() == pytest.approx(-2 / 0.2**3, rel=1e-12)


def test_proxies_are_sources_like_the_batch():
    g = torch.Generator().manual_seed(0)
    x, p = torch.randn(6, 4, generator=g, dtype=F64), torch.randn(3, 4, generator=g, dtype=F64)
    y, py = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2])
    joined = definition.total_energy(torch.cat([x, p]), torch.cat([y, py]), alpha=3.0, delta=0.3)
    assert definition.total_energy(x, y, p, py, alpha=3.0, delta=0.3).item() == joined.item()


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, generator=g, dtype=F64).requires_grad_()
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    assert torch.autograd.gradcheck(
        lambda z: definition.total_energy(z, y, alpha=2.5, delta=0.3, delta_rep=0.9), (x,))


@pytest.mark.parametrize("dim", [2, 8, 64])
@pytest.mark.parametrize("n", [5, 40, 300])
@pytest.mark.parametrize("proxies_per_class", [0, 3])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_fast_total_energy_equals_the_definition(dim, n, proxies_per_class, dtype):
    g = torch.Generator().manual_seed(n + dim)
    classes = 4
    x = torch.randn(n, dim, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    p = torch.randn(classes * proxies_per_class, dim, generator=g, dtype=dtype)
    py = torch.arange(classes).repeat_interleave(proxies_per_class)
    p, py = (p, py) if proxies_per_class else (None, None)
    settings = dict(alpha=3.0, delta=0.4, delta_rep=0.6)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = total_energy(a, y, p, py, **settings)
    ref = definition.total_energy(b, y, p, py, **settings)
    fast.backward()
    ref.backward()
    tol = 1e-10 if dtype == F64 else 2e-5
    torch.testing.assert_close(fast, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(a.grad, b.grad, rtol=tol * 10, atol=tol * 10 * b.grad.abs().max().item())
