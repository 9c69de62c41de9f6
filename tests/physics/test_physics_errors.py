"""Every invalid argument raises ValueError naming the argument and the allowed range."""
import math

import pytest
import torch

from pfml_core.physics import field as ph
from pfml_core.physics.loss import PotentialFieldLoss

X = torch.randn(4, 3)
Y = torch.tensor([0, 1, 1, 0])
P = torch.randn(2, 3)
PY = torch.tensor([0, 1])


def energy(**over):
    kw = dict(embeddings=X, labels=Y, proxies=P, proxy_labels=PY, alpha=3.0, delta=0.2)
    kw.update(over)
    return ph.total_energy(**kw)


@pytest.mark.parametrize("over, match", [
    ({"alpha": 0}, r"alpha must be a finite number > 0, got 0"),
    ({"alpha": -1.5}, r"alpha .*> 0.*-1.5"),
    ({"alpha": math.nan}, r"alpha .*> 0"),
    ({"alpha": "three"}, r"alpha must be a number"),
    ({"delta": 0.0}, r"delta .*> 0"),
    ({"delta": -0.2}, r"delta .*> 0"),
    ({"delta_rep": 0}, r"delta_rep .*> 0"),
    ({"eps": 0}, r"eps .*> 0"),
    ({"reduction": "avg"}, r"reduction must be one of \['mean', 'none', 'sum'\]"),
    ({"potential": "coulomb"}, r"potential must be one of"),
    ({"embeddings": torch.randn(4)}, r"embeddings must have shape \(N, D\)"),
    ({"embeddings": torch.ones(4, 3, dtype=torch.long)}, r"embeddings must be a floating"),
    ({"embeddings": torch.tensor([[0.0, math.nan, 1.0]] * 4)}, r"embeddings contains NaN or inf"),
    ({"embeddings": torch.tensor([[0.0, math.inf, 1.0]] * 4)}, r"embeddings contains NaN or inf"),
    ({"labels": torch.tensor([0, 1, 1])}, r"labels must have shape \(4,\)"),
    ({"labels": torch.tensor([0, -1, 1, 0])}, r"labels must be >= 0"),
    ({"labels": torch.tensor([0.0, 1.0, 1.0, 0.0])}, r"labels must hold integer class ids"),
    ({"proxies": torch.randn(2, 5)}, r"proxies must have last dimension 3"),
    ({"proxies": torch.full((2, 3), math.nan)}, r"proxies contains NaN"),
    ({"proxy_labels": torch.tensor([0, 1, 2])}, r"proxy_labels must have shape \(2,\)"),
    ({"proxy_labels": None}, r"proxy_labels must be given"),
])
def test_total_energy_rejects(over, match):
    with pytest.raises(ValueError, match=match):
        energy(**over)


def test_class_potential_rejects_bad_inputs():
    kw = dict(alpha=2, delta=0.3)
    with pytest.raises(ValueError, match=r"sources must have last dimension 3"):
        ph.class_potential(X, torch.randn(3, 2), torch.tensor([0, 1, 0]), 0, **kw)
    with pytest.raises(ValueError, match=r"source_labels must have shape \(4,\)"):
        ph.class_potential(X, X, torch.tensor([0, 1]), 0, **kw)
    with pytest.raises(ValueError, match=r"cls must be an integer >= 0"):
        ph.class_potential(X, X, Y, -1, **kw)
    with pytest.raises(ValueError, match=r"exclude_self=True needs points\[i\] to be sources\[i\]"):
        ph.class_potential(X, X[:2], Y[:2], 0, exclude_self=True, **kw)


@pytest.mark.parametrize("fn", [ph.attraction, ph.repulsion])
def test_pair_potentials_reject(fn):
    with pytest.raises(ValueError, match="alpha"):
        fn(torch.ones(3), alpha=-1, delta=0.2)
    with pytest.raises(ValueError, match="delta"):
        fn(torch.ones(3), alpha=1, delta=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"proxies_per_class": -1}, r"proxies_per_class must be an integer >= 0, got -1"),
    ({"proxies_per_class": 2.5}, r"proxies_per_class must be an integer"),
    ({"num_classes": 0}, r"num_classes must be an integer >= 1"),
    ({"embedding_size": 0}, r"embedding_size must be an integer >= 1"),
    ({"alpha": 0}, r"alpha"),
    ({"delta": -1}, r"delta"),
    ({"delta_rep": 0}, r"delta_rep"),
    ({"reduction": "none"}, r"reduction must be one of \['mean', 'sum'\]"),
])
def test_loss_constructor_rejects(kwargs, match):
    args = dict(num_classes=3, embedding_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        PotentialFieldLoss(**args)


def test_loss_rejects_labels_out_of_range():
    loss = PotentialFieldLoss(num_classes=2, embedding_size=3, proxies_per_class=1)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\] \(num_classes=2\), got max 2"):
        loss(X, torch.tensor([0, 1, 2, 0]))
