"""pfml_core.training.losses: every registered loss builds, gives a finite loss with gradients,
and reports proxies / optimiser groups consistently."""
import pytest
import torch
import torch.nn.functional as F

from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.training import losses as baselines


@pytest.mark.parametrize("name", sorted(baselines.LOSSES))
def test_each_loss_trains_one_step(name):
    torch.manual_seed(0)
    bundle = baselines.make(name, num_classes=4, embedding_size=8)
    emb = F.normalize(torch.randn(32, 8), dim=1).requires_grad_()
    labels = torch.arange(4).repeat_interleave(8)
    loss = bundle(emb, labels)
    loss.backward()
    assert torch.isfinite(loss) and emb.grad is not None and emb.grad.abs().sum() > 0
    assert bundle.has_proxies == baselines.LOSSES[name].has_proxies
    groups = bundle.parameter_groups([torch.zeros(1, requires_grad=True)], lr=1e-3,
                                     proxy_lr_multiplier=100)
    assert len(groups) == (2 if bundle.has_proxies else 1)
    if bundle.has_proxies:
        assert groups[1]["lr"] == pytest.approx(0.1)
        p, pl = bundle.proxies()
        assert torch.allclose(p.norm(dim=1), torch.ones(len(p)))
        assert set(pl.tolist()) == {0, 1, 2, 3}


def test_pfml_is_the_potential_field_loss():
    bundle = baselines.make("pfml", 3, 8, alpha=2.0, proxies_per_class=4)
    assert isinstance(bundle.loss, PotentialFieldLoss) and bundle.miner is None
    assert bundle.loss.alpha == 2.0 and bundle.proxies()[0].shape == (12, 8)


def test_miners_attached_where_expected():
    assert baselines.make("triplet", 3, 8).miner is not None
    assert baselines.make("multi_similarity", 3, 8).miner is not None
    assert baselines.make("proxy_anchor", 3, 8).miner is None


def test_bad_names_and_params():
    with pytest.raises(ValueError, match="loss must be one of"):
        baselines.make("arcface", 3, 8)
    with pytest.raises(ValueError, match="does not take"):
        baselines.make("proxy_anchor", 3, 8, delta=0.2)
