"""Property-based: loss and gradients stay finite on the inputs label noise produces."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pfml_core.physics import field as ph

settings.register_profile("pfml", max_examples=60, deadline=None)
settings.load_profile("pfml")


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 12))
    dim = draw(st.sampled_from([2, 3, 20]))
    n_cls = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = torch.randint(0, n_cls, (n,), generator=g)
    if n >= 2 and draw(st.booleans()):  # coincident points of different classes
        x[1] = x[0]
        y[1] = (y[0] + 1) % max(n_cls, 2)
    m = draw(st.integers(0, 2))  # proxies per class, M = 0 allowed
    p = torch.randn(n_cls * m, dim, generator=g, dtype=torch.float64)
    py = torch.arange(n_cls).repeat_interleave(m)
    if m and n and draw(st.booleans()):  # a proxy sitting exactly on a sample
        p[0] = x[0]
    return x, y, p, py


@given(scenes(),
       st.floats(0.01, 8.0),
       st.floats(0.001, 2.0),
       st.booleans(),
       st.sampled_from(["float32", "float64"]))
def test_energy_and_gradients_finite(scene, alpha, delta, normalize, dtype):
    x, y, p, py = (v.to(getattr(torch, dtype)) if v.is_floating_point() else v for v in scene)
    x.requires_grad_()
    p.requires_grad_()
    u = ph.total_energy(x, y, p, py, alpha=alpha, delta=delta, normalize=normalize)
    assert torch.isfinite(u)
    gx, gp = torch.autograd.grad(u, (x, p), allow_unused=True)
    assert gx is None or torch.isfinite(gx).all()
    assert gp is None or torch.isfinite(gp).all()
    f = ph.forces(x.detach(), y, p.detach(), py, alpha=alpha, delta=delta)
    assert torch.isfinite(f).all()


@given(st.integers(1, 10), st.floats(0.01, 8.0), st.floats(0.001, 2.0))
def test_one_class_batch_has_no_repulsion(n, alpha, delta):
    # all points in one class: every pair attracts, so U <= 0 and U >= -n(n-1)/delta^alpha
    x = torch.randn(n, 4, dtype=torch.float64)
    u = ph.total_energy(x, torch.zeros(n, dtype=torch.long), alpha=alpha, delta=delta)
    assert u.item() <= 0
    assert u.item() >= -n * (n - 1) / delta ** alpha * (1 + 1e-9)
