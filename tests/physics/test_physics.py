"""pfml_core.physics.field against hand-computed values, an independent naive loop, symmetry
properties and PyTorch autograd / finite differences."""
import math

import pytest
import torch

from pfml_core.physics import field as ph
from pfml_core.physics.kernel import gram_energy

F64 = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=F64)


def naive_energy(points, labels, alpha, delta, delta_rep=None):
    """Eq. 6 as a plain double loop over ordered pairs (the reference)."""
    delta_rep = delta if delta_rep is None else delta_rep
    total = 0.0
    for i in range(len(points)):
        for j in range(len(points)):
            if i == j:
                continue
            d = max(math.dist(points[i].tolist(), points[j].tolist()), ph.EPS)
            if labels[i] == labels[j]:
                total += -1 / max(d, delta) ** alpha
            else:
                total += 1 / min(d, delta_rep) ** alpha
    return total


# ---------- hand-computed cases ----------
def test_two_points_same_class_beyond_delta():
    # d = 2, alpha = 2, delta = 1: each ordered pair -1/4 -> U = -0.5
    u = ph.total_energy(t([0, 0], [2, 0]), torch.tensor([0, 0]), alpha=2, delta=1, normalize=False)
    assert u.item() == pytest.approx(-0.5)


def test_two_points_same_class_inside_delta_is_flat():
    # inside delta attraction is the constant -1/delta^alpha: -1/0.5^2 = -4 per pair
    u = ph.total_energy(t([0, 0], [0.1, 0]), torch.tensor([1, 1]), alpha=2, delta=0.5, normalize=False)
    assert u.item() == pytest.approx(-8.0)


def test_two_points_other_class_inside_and_beyond_margin():
    lab = torch.tensor([0, 1])
    inside = ph.total_energy(t([0, 0], [0.5, 0]), lab, alpha=2, delta=1, normalize=False)
    beyond = ph.total_energy(t([0, 0], [3, 0]), lab, alpha=2, delta=1, normalize=False)
    assert inside.item() == pytest.approx(2 * 4.0)  # 1/0.5^2 per ordered pair
    assert beyond.item() == pytest.approx(2 * 1.0)  # 1/delta^2, no force


def test_three_points_with_a_proxy():
    # a (class 0) at origin, b (class 1) at (0.5, 0), proxy p (class 0) at (0, 3); alpha 1, delta 1
    # a-b: 1/0.5 = 2 ; a-p: -1/3 ; b-p: d = sqrt(9.25) > 1 -> 1/1 = 1 ; U = 2 * (2 - 1/3 + 1)
    u = ph.total_energy(t([0, 0], [0.5, 0]), torch.tensor([0, 1]), t([0, 3]), torch.tensor([0]),
                        alpha=1, delta=1, normalize=False)
    assert u.item() == pytest.approx(2 * (2 - 1 / 3 + 1))
    without = ph.total_energy(t([0, 0], [0.5, 0]), torch.tensor([0, 1]), alpha=1, delta=1,
                              normalize=False)
    assert without.item() == pytest.approx(4.0)


def test_class_potential_of_a_proxy_at_a_grid_point():
    # field of class 0 at r = (1, 0): sources a (0) at origin, b (1) at (1, 0.5); alpha 2, delta 1
    src, lab = t([0, 0], [1, 0.5]), torch.tensor([0, 1])
    psi = ph.class_potential(t([1, 0]), src, lab, 0, alpha=2, delta=1)
    assert psi.item() == pytest.approx(-1 / 1 ** 2 + 1 / 0.5 ** 2)


def test_normalize_projects_to_the_unit_sphere():
    # (2, 0) and (0, 5) normalise to distance sqrt(2); same class, delta 0.5, alpha 2 -> -1/2 each
    u = ph.total_energy(t([2, 0], [0, 5]), torch.tensor([0, 0]), alpha=2, delta=0.5)
    assert u.item() == pytest.approx(-1.0)


def test_reductions():
    x, y = torch.randn(7, 2, dtype=F64), torch.tensor([0, 1, 1, 2, 0, 1, 2])
    kw = dict(alpha=2, delta=0.5, normalize=False)
    per_point = ph.total_energy(x, y, reduction="none", **kw)
    assert per_point.shape == (7,)
    assert per_point.sum().item() == pytest.approx(ph.total_energy(x, y, **kw).item())
    assert ph.total_energy(x, y, reduction="mean", **kw).item() == pytest.approx(per_point.mean().item())


# ---------- continuity, superposition, invariances ----------
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0, 6.0])
def test_continuous_at_delta(alpha):
    delta = 0.3
    d = torch.tensor([delta - 1e-9, delta, delta + 1e-9], dtype=F64)
    for fn in (ph.attraction, ph.repulsion):
        v = fn(d, alpha=alpha, delta=delta)
        assert torch.allclose(v, v[1].expand(3), rtol=1e-7)


def test_attraction_force_decays_and_repulsion_is_a_margin():
    d = torch.linspace(0.05, 2, 200, dtype=F64, requires_grad=True)
    (g_att,) = torch.autograd.grad(ph.attraction(d, alpha=3, delta=0.2).sum(), d)
    (g_rep,) = torch.autograd.grad(ph.repulsion(d, alpha=3, delta=0.2).sum(), d)
    beyond, inside = d > 0.2, d < 0.2
    assert torch.all(g_att[inside] == 0) and torch.all(g_rep[beyond] == 0)
    assert torch.all(g_att[beyond].diff() < 0)  # pull shrinks with distance
    assert torch.allclose(g_att[beyond], 3 / d[beyond].detach() ** 4)


def test_superposition():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(6, 2, generator=g, dtype=F64)
    lab = torch.tensor([0, 0, 1, 2, 1, 0])
    grid = torch.randn(30, 2, generator=g, dtype=F64)
    kw = dict(alpha=2.5, delta=0.4, delta_rep=0.6)
    whole = ph.class_potential(grid, src, lab, 1, **kw)
    parts = sum(ph.class_potential(grid, src[i:i + 1], lab[i:i + 1], 1, **kw) for i in range(6))
    assert torch.allclose(whole, parts)


def test_energy_matches_naive_loop_with_delta_rep():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(9, 2, generator=g, dtype=F64) * 0.4, torch.randint(0, 3, (9,), generator=g)
    p, py = torch.randn(3, 2, generator=g, dtype=F64) * 0.4, torch.tensor([0, 1, 2])
    u = ph.total_energy(x, y, p, py, alpha=1.5, delta=0.2, delta_rep=0.35, normalize=False)
    ref = naive_energy(torch.cat([x, p]), torch.cat([y, py]).tolist(), 1.5, 0.2, 0.35)
    assert u.item() == pytest.approx(ref, rel=1e-12)


def test_permutation_rotation_translation_invariance():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(12, 2, generator=g, dtype=F64), torch.randint(0, 3, (12,), generator=g)
    kw = dict(alpha=2, delta=0.3, normalize=False)
    u = ph.total_energy(x, y, **kw)
    perm = torch.randperm(12, generator=g)
    assert ph.total_energy(x[perm], y[perm], **kw).item() == pytest.approx(u.item())
    th = 0.7
    rot = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], dtype=F64)
    moved = x @ rot.T + torch.tensor([3.0, -1.5], dtype=F64)
    assert ph.total_energy(moved, y, **kw).item() == pytest.approx(u.item())


def test_per_point_classes_equal_single_class_calls_and_batch_dims():
    g = torch.Generator().manual_seed(4)
    src, lab = torch.randn(8, 2, generator=g, dtype=F64), torch.randint(0, 3, (8,), generator=g)
    pts = torch.randn(2, 5, 2, generator=g, dtype=F64)  # leading batch dim
    cls = torch.tensor([0, 1, 2, 1, 0])
    out = ph.class_potential(pts, src, lab, cls, alpha=2, delta=0.3)
    assert out.shape == (2, 5)
    for b in range(2):
        for i in range(5):
            one = ph.class_potential(pts[b, i:i + 1], src, lab, int(cls[i]), alpha=2, delta=0.3)
            assert out[b, i].item() == pytest.approx(one.item())


def test_exclude_self_skips_only_the_diagonal():
    x, y = t([0, 0], [1, 0]), torch.tensor([0, 0])
    psi = ph.class_potential(x, x, y, y, alpha=1, delta=0.5, exclude_self=True)
    assert torch.allclose(psi, t(-1.0, -1.0))  # only the partner at d=1 counts


# ---------- gradients ----------
def test_gradcheck_plane_and_sphere():
    g = torch.Generator().manual_seed(5)
    y, py = torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 2])
    for dim, normalize in ((2, False), (24, True)):
        x = torch.randn(5, dim, generator=g, dtype=F64).requires_grad_()
        p = torch.randn(3, dim, generator=g, dtype=F64).requires_grad_()

        def energy(x, p, normalize=normalize):
            return ph.total_energy(x, y, p, py, alpha=2.5, delta=0.3, delta_rep=0.5,
                                   normalize=normalize)
        assert torch.autograd.gradcheck(energy, (x, p), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_fast_kernel_equals_generic_path():
    g = torch.Generator().manual_seed(6)
    for dim, alpha in ((2, 3.0), (64, 3.0), (64, 1.3), (3, 6.0)):
        x = (torch.randn(70, dim, generator=g, dtype=F64) * 0.2)
        y = torch.randint(0, 5, (70,), generator=g)
        x[3], y[3], y[4] = x[4], 0, 1  # coincident points of different classes
        a = x.clone().requires_grad_()
        b = x.clone().requires_grad_()
        e_fast = gram_energy(a, y, alpha, 0.15, 0.25, ph.EPS)
        e_ref = ph._field(b, b, y[:, None] == y[None], ph.get_potential("pfml"),
                          alpha, 0.15, 0.25, ph.EPS, True).sum()
        (e_fast + 0).backward()
        e_ref.backward()
        assert e_fast.item() == pytest.approx(e_ref.item(), rel=1e-9)
        assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-6 * b.grad.abs().max().item())


@pytest.mark.parametrize("potential", ["pfml", "contrastive", "linear"])
def test_forces_equal_autograd_of_own_class_field(potential):
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(15, 2, generator=g, dtype=F64), torch.randint(0, 3, (15,), generator=g)
    p, py = torch.randn(6, 2, generator=g, dtype=F64), torch.arange(3).repeat(2)
    kw = dict(alpha=2, delta=0.4, delta_rep=0.5, potential=potential)
    f = ph.forces(x, y, p, py, **kw)
    pts = torch.cat([x, p]).requires_grad_()
    lab = torch.cat([y, py])
    psi = ph.class_potential(pts, pts.detach(), lab, lab, exclude_self=True, **kw)
    (grad,) = torch.autograd.grad(psi.sum(), pts)
    assert torch.allclose(f, -grad, atol=1e-12)


def test_energy_gradient_is_twice_the_force_when_symmetric():
    # each unordered pair is counted twice in Eq. 6, so dU/dz_i = -2 F_i (delta_rep = delta)
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(10, 2, generator=g, dtype=F64).requires_grad_(), torch.randint(0, 2, (10,), generator=g)
    (grad,) = torch.autograd.grad(ph.total_energy(x, y, alpha=3, delta=0.3, normalize=False), x)
    assert torch.allclose(grad, -2 * ph.forces(x.detach(), y, alpha=3, delta=0.3))


def test_float32_and_float64_agree():
    g = torch.Generator().manual_seed(9)
    x, y = torch.randn(40, 32, generator=g, dtype=F64), torch.randint(0, 4, (40,), generator=g)
    u64 = ph.total_energy(x, y, alpha=3, delta=0.2)
    u32 = ph.total_energy(x.float(), y, alpha=3, delta=0.2)
    assert u32.dtype == torch.float32
    assert u32.item() == pytest.approx(u64.item(), rel=1e-4)
