"""The fast PFML paths (kernel.gram_energy, field._field, field.forces) against THE
definition (physics.definition, and POTENTIALS["pfml"] summed by a naive loop over pairs),
differentiated by autograd; row shards against the whole; and no host sync in the energy."""
import itertools

import pytest
import torch

from pfml_core.physics import PotentialFieldLoss, definition, kernel
from pfml_core.physics import field as ph
from pfml_core.physics.potentials import POTENTIALS

F64 = torch.float64
PFML = POTENTIALS["pfml"]


# ---------- THE definition, summed naively ----------
def naive_energy(x, labels, alpha, delta, delta_rep, eps=ph.EPS):
    """Eq. 6 as a loop over ordered pairs of POTENTIALS["pfml"] (autograd-differentiable)."""
    total = x.new_zeros(())
    for i, j in itertools.permutations(range(len(x)), 2):
        d = (x[i] - x[j]).pow(2).sum().clamp(min=eps * eps).sqrt()
        if labels[i] == labels[j]:
            total = total + PFML.attraction(d, alpha, delta, eps)
        else:
            total = total + PFML.repulsion(d, alpha, delta_rep, eps)
    return total


def _scene(n, dim, classes, seed, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=F64) * scale
    y = torch.randint(0, classes, (n,), generator=g) * 7 + 3  # sparse ids: renumbering tested
    x[1], y[1] = x[0], y[0] + 7  # coincident points of different classes: the eps clamp
    x[3], y[3] = x[2], y[2]  # coincident points of the same class: flat attraction
    return x, y


ALPHAS = [1.0, 2.0, 2.5, 3.0, 4.0, 6.0, 1.3]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gram_kernel_equals_naive_loop_and_autograd(alpha):
    x, y = _scene(14, 24, 3, seed=int(alpha * 10))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = kernel.gram_energy(a, y, alpha, 0.25, 0.4, ph.EPS)
    ref = naive_energy(b, y, alpha, 0.25, 0.4)
    fast.backward()
    ref.backward()
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9 * b.grad.abs().max().item())


@pytest.mark.parametrize("rows_per_block", [None, 37])
@pytest.mark.parametrize("keys", ["float ids (CPU)", "labels (GPU)"])
@pytest.mark.parametrize("alpha", ALPHAS)
def test_gram_kernel_equals_the_definition(alpha, keys, rows_per_block, monkeypatch):
    if keys.startswith("labels"):  # the GPU way of telling classes apart, run on the CPU
        monkeypatch.setattr(kernel, "_class_keys", lambda labels, dtype: labels)
    if rows_per_block:  # several blocks of rows, the last one short
        monkeypatch.setitem(kernel.BLOCK_ELEMENTS, "cpu", 300 * rows_per_block)
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(300, 64, generator=g, dtype=F64), dim=-1)
    x = (x[torch.randint(0, 60, (300,), generator=g)] + 0.2 * x) / 1.2  # pairs inside delta too
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.randint(0, 20, (300,), generator=g)
    x[5], y[5], y[6] = x[6], 0, 1
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    # the kernel takes unit points; the definition normalises them itself
    fast = kernel.gram_energy(torch.nn.functional.normalize(a, dim=-1), y, alpha, 0.2, 0.3, ph.EPS)
    ref = definition.total_energy(b, y, alpha=alpha, delta=0.2, delta_rep=0.3, eps=ph.EPS)
    fast.backward()
    ref.backward()
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-8 * b.grad.abs().max().item())
    with torch.no_grad():  # the forward-only path gives the same value
        torch.testing.assert_close(kernel.gram_energy(x, y, alpha, 0.2, 0.3, ph.EPS), ref.detach())


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_row_shards_add_up_to_the_whole(count, monkeypatch):
    """Each shard's rows, in blocks of 7 rows: energies sum to the whole, gradient rows
    concatenate to the whole gradient (the collectives replaced by in-process lists)."""
    monkeypatch.setitem(kernel.BLOCK_ELEMENTS, "cpu", 7 * 40)
    x, y = _scene(40, 24, 4, seed=2)
    whole_x = x.clone().requires_grad_()
    whole = kernel.gram_energy(whole_x, y, 3.0, 0.2, 0.2, ph.EPS)
    whole.backward()
    parts, rows = [], []
    for r in range(count):
        start, stop = kernel.RowShard(r, count, None, None).rows(40)

        def alone(g, sizes, start=start):  # this shard's rows in place, zeros elsewhere
            assert sum(sizes) == 40 and len(sizes) == count
            return torch.nn.functional.pad(g, (0, 0, start, 40 - start - len(g)))
        xr = x.clone().requires_grad_()
        part = kernel.gram_energy(xr, y, 3.0, 0.2, 0.2, ph.EPS,
                                  kernel.RowShard(r, count, sum=lambda e: e, gather=alone))
        part.backward()
        assert not xr.grad[:start].any() and not xr.grad[stop:].any()
        parts.append(part)
        rows.append(xr.grad[start:stop])
    assert sum(len(r) for r in rows) == 40
    torch.testing.assert_close(sum(parts), whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.cat(rows), whole_x.grad, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("delta, delta_rep", [(0.3, 0.3), (0.2, 0.45), (0.5, 0.2)])
def test_field_and_forces_equal_naive_loop_of_the_definition(delta, delta_rep):
    """field._field (via class_potential) and forces against POTENTIALS["pfml"] pair by pair."""
    x, y = _scene(9, 2, 3, seed=3, scale=0.4)
    kw = dict(alpha=2.5, delta=delta, delta_rep=delta_rep)
    psi = ph.class_potential(x, x, y, y, exclude_self=True, **kw)
    for i in range(len(x)):  # Psi_{y_i}(x_i): the naive sum with x_i free, the rest fixed
        xi = x[i].clone().requires_grad_()
        pts = torch.cat([x[:i], xi[None], x[i + 1:]])
        terms = [PFML.attraction if y[i] == y[j] else PFML.repulsion for j in range(len(x))]
        own = sum(f(torch.linalg.vector_norm(xi - pts[j]).clamp(min=ph.EPS), 2.5,
                    delta if y[i] == y[j] else delta_rep, ph.EPS)
                  for j, f in enumerate(terms) if j != i)
        torch.testing.assert_close(psi[i], own.detach(), rtol=1e-12, atol=0)
        (grad,) = torch.autograd.grad(own, xi)
        force = ph.forces(x, y, **kw)[i]
        if i in (0, 1):  # sitting at the eps clamp: finite, and no force from the partner
            grad = grad - torch.autograd.grad(terms[1 - i](torch.linalg.vector_norm(
                xi - x[1 - i]).clamp(min=ph.EPS), 2.5, delta_rep, ph.EPS), xi)[0]
        torch.testing.assert_close(force, -grad, rtol=1e-10, atol=1e-12)


def test_energy_on_the_grid_path_equals_the_gram_path():
    """D <= 16 takes the exact-difference field, D > 16 the Gram kernel: same Eq. 6."""
    x, y = _scene(30, 16, 4, seed=4)
    wide = torch.cat([x, torch.zeros(30, 4, dtype=F64)], 1)  # same distances, 20-d
    kw = dict(alpha=3.0, delta=0.2, normalize=False)
    torch.testing.assert_close(ph.total_energy(x, y, **kw), ph.total_energy(wide, y, **kw),
                               rtol=1e-12, atol=0)


# ---------- no host sync inside the energy ----------
class _SyncCalled(AssertionError):
    pass


@pytest.fixture
def no_host_sync(monkeypatch):
    """Every Tensor -> host read raises: .item(), bool(), int(), float(), .tolist(),
    nonzero (its output size needs the data) and torch.unique."""
    def trap(name):
        def raiser(*args, **kwargs):
            raise _SyncCalled(name)
        return raiser
    for name in ("item", "__bool__", "__int__", "__float__", "__index__", "tolist",
                 "nonzero", "numpy", "unique"):
        monkeypatch.setattr(torch.Tensor, name, trap(name))
    for name in ("nonzero", "unique", "masked_select", "argwhere", "is_nonzero"):
        monkeypatch.setattr(torch, name, trap(name))


def _loss_inputs():
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(20, 32, generator=g).requires_grad_()
    return emb, torch.randint(0, 6, (20,), generator=g)


def test_energy_forward_and_backward_never_read_values_back(no_host_sync):
    emb, y = _loss_inputs()
    proxies = torch.randn(12, 32).requires_grad_()
    plabels = torch.arange(6).repeat_interleave(2)
    u = ph.total_energy(emb, y, proxies, plabels, alpha=3.0, delta=0.2, check=False)
    u.backward()
    loss = PotentialFieldLoss(6, 32, proxies_per_class=2, check=False)
    loss(emb, y).backward()
    assert emb.grad is not None and loss.proxies.grad is not None


def test_the_sync_detector_catches_nonzero_and_value_checks(no_host_sync):
    """The detector is not blind: nonzero() (how a kernel gathers pairs with a host sync)
    and the value checks are caught."""
    emb, y = _loss_inputs()
    with pytest.raises(_SyncCalled, match="nonzero"):
        (y[:, None] == y[None, :]).nonzero(as_tuple=True)
    with pytest.raises(_SyncCalled):
        ph.total_energy(emb, y, alpha=3.0, delta=0.2, check=True)
    with pytest.raises(_SyncCalled):  # CPU default: value checks on
        ph.total_energy(emb, y, alpha=3.0, delta=0.2)


def test_skipped_value_checks_still_raise_via_on_device_flags(monkeypatch):
    """As on a GPU (value checks off by default): bad labels and NaN embeddings are
    flagged on the device and raised by verify(), or after VERIFY_EVERY calls."""
    from pfml_core import guards
    monkeypatch.setattr(guards, "value_checks", lambda check, x: bool(check))
    loss = PotentialFieldLoss(4, 32, proxies_per_class=1)
    emb, _ = _loss_inputs()
    loss(emb, torch.randint(0, 4, (20,)))
    loss.verify()  # clean so far
    loss(emb, torch.full((20,), 4))  # label 4 with num_classes=4: no error yet
    with pytest.raises(ValueError,
                       match=r"labels must be in \[0, 3\] \(num_classes=4\), got max 4"):
        loss.verify()
    loss.verify()  # flags were reset
    bad = emb.detach().clone()
    bad[0, 0] = float("nan")
    late = PotentialFieldLoss(4, 32, proxies_per_class=1)
    late.VERIFY_EVERY = 3
    assert not torch.isfinite(late(bad, torch.zeros(20, dtype=torch.long)))
    late(emb, torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match="embeddings or proxies contain NaN or inf"):
        late(emb, torch.zeros(20, dtype=torch.long))  # the third call verifies by itself
    with pytest.raises(ValueError, match="labels must be >= 0, got min -2"):
        loss(emb, torch.full((20,), -2))
        loss.verify()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):  # check=True: at once
        PotentialFieldLoss(4, 32, proxies_per_class=1, check=True)(emb, torch.full((20,), 9))
