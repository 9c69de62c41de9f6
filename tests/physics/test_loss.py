"""PotentialFieldLoss: a pytorch-metric-learning loss whose value is Eq. 6."""
import io
import re
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction

from pfml_core.physics import field as ph
from pfml_core.physics.loss import PotentialFieldLoss

README = Path(__file__).resolve().parents[2] / "README.md"


def make(m=3, **kw):
    torch.manual_seed(0)
    return PotentialFieldLoss(num_classes=4, embedding_size=20, proxies_per_class=m, **kw)


def test_is_a_pml_loss_and_equals_total_energy():
    loss = make(alpha=2.0, delta=0.3, delta_rep=0.4)
    assert isinstance(loss, BaseMetricLossFunction)
    emb, y = torch.randn(10, 20, dtype=torch.float64), torch.randint(0, 4, (10,))
    value = loss(emb, y)
    ref = ph.total_energy(emb, y, loss.proxies.double(), loss.proxy_labels,
                          alpha=2.0, delta=0.3, delta_rep=0.4, reduction="none").sum()
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(ref.item(), rel=1e-10)


def test_proxies_are_sources_and_learn():
    loss = make()
    assert loss.proxies.shape == (12, 20) and loss.proxy_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert loss.proxy_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    emb = torch.randn(6, 20, requires_grad=True)
    loss(emb, torch.tensor([0, 1, 2, 3, 0, 1])).backward()
    assert loss.proxies.grad is not None and loss.proxies.grad.abs().sum() > 0
    assert torch.isfinite(emb.grad).all()


def test_zero_proxies_is_samples_only():
    loss = make(m=0)
    emb, y = torch.randn(8, 20), torch.randint(0, 4, (8,))
    assert loss(emb, y).item() == pytest.approx(
        ph.total_energy(emb, y, alpha=3.0, delta=0.2).item(), rel=1e-6)
    assert len(loss.parameter_groups([torch.zeros(1, requires_grad=True)], lr=1e-3)) == 1


def test_mean_reduction_is_per_point():
    emb, y = torch.randn(8, 20), torch.randint(0, 4, (8,))
    total, mean = make()(emb, y), make(reduction="mean")(emb, y)
    assert mean.item() == pytest.approx(total.item() / (8 + 12), rel=1e-6)


def test_parameter_groups_use_the_proxy_multiplier():
    w, loss = torch.nn.Linear(3, 20), make()
    groups = loss.parameter_groups(w.parameters(), lr=5e-4)
    assert groups[0]["lr"] == 5e-4 and groups[1]["lr"] == pytest.approx(5e-2)
    assert groups[0]["params"] == list(w.parameters()) and groups[1]["params"] == [loss.proxies]
    assert make().parameter_groups([], lr=1e-3, proxy_lr_multiplier=10)[1]["lr"] == pytest.approx(1e-2)


def test_state_dict_round_trip_with_weights_only():
    loss = make()
    buf = io.BytesIO()
    torch.save(loss.state_dict(), buf)
    buf.seek(0)
    other = PotentialFieldLoss(num_classes=4, embedding_size=20, proxies_per_class=3)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(other.proxies, loss.proxies)


@pytest.mark.slow  # 150 training steps
def test_training_puts_embeddings_next_to_their_own_proxies():
    # 4 Gaussian classes in 8-D; after a short fit the nearest proxy of most samples is their own
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 8, generator=g) * 2
    y = torch.arange(4).repeat_interleave(50)
    x = centers[y] + torch.randn(200, 8, generator=g)
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 16)
    loss_fn = PotentialFieldLoss(num_classes=4, embedding_size=16, proxies_per_class=2)

    def nearest_proxy_accuracy():
        with torch.no_grad():
            z = torch.nn.functional.normalize(model(x), dim=-1)
            p = torch.nn.functional.normalize(loss_fn.proxies, dim=-1)
            return (loss_fn.proxy_labels[torch.cdist(z, p).argmin(1)] == y).float().mean().item()

    before = nearest_proxy_accuracy()
    opt = torch.optim.Adam(loss_fn.parameter_groups(model.parameters(), lr=1e-2, proxy_lr_multiplier=10))
    for _ in range(150):
        idx = torch.randint(0, 200, (64,), generator=g)
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert nearest_proxy_accuracy() > max(0.9, before + 0.3)


def test_readme_example_runs():
    text = README.read_text()
    block = re.search(r"<!-- example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README must hold the plain-PyTorch example after <!-- example -->"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 12
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert isinstance(ns["loss_fn"], PotentialFieldLoss) and torch.isfinite(ns["loss"])
