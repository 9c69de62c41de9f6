"""Each named potential's derivative equals autograd's, and the decay contrast holds."""
import pytest
import torch

from pfml_core.physics.potentials import POTENTIALS, get_potential

D = torch.linspace(0.02, 2.0, 400, dtype=torch.float64)
D = D[(D - 0.25).abs() > 1e-3]  # keep clear of the kink at delta


@pytest.mark.parametrize("name", sorted(POTENTIALS))
def test_derivatives_match_autograd(name):
    pot = get_potential(name)
    for fn, dfn, radius in ((pot.attraction, pot.d_attraction, 0.25),
                            (pot.repulsion, pot.d_repulsion, 0.25)):
        d = D.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(d, 2.5, radius, 1e-6).sum(), d)
        assert torch.allclose(dfn(D, 2.5, radius, 1e-6), g, atol=1e-9)


def test_only_pfml_attraction_decays():
    far = D[D > 0.5]
    for name, pot in POTENTIALS.items():
        pull = pot.d_attraction(far, 3.0, 0.25, 1e-6)  # force magnitude toward the source
        shrinking = bool(torch.all(pull.diff() < 0))
        assert shrinking == pot.decaying, name


def test_all_repulsions_are_zero_beyond_the_margin():
    for pot in POTENTIALS.values():
        assert torch.all(pot.d_repulsion(D[D > 0.25], 3.0, 0.25, 1e-6) == 0)
        assert torch.all(pot.d_repulsion(D[D < 0.24], 3.0, 0.25, 1e-6) < 0)


def test_unknown_potential():
    with pytest.raises(ValueError, match=r"potential must be one of \['contrastive', 'linear', 'pfml'\]"):
        get_potential("gravity")
