"""Issue 22's small defects: device_for takes no ignored argument, build_model and
parameter_groups are written once, EpochSnapshot is built by keyword, and PotentialFieldLoss
refuses a miner's indices_tuple and a distance it would silently ignore."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_metric_learning import miners
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance

from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.training import losses, presets
from pfml_core.training.config import TrainConfig
from pfml_core.training.job import TrainJob, cpu_cores
from pfml_core.training.snapshot import EpochSnapshot

LIB = Path(__file__).resolve().parents[1] / "pfml_core"


def _defined(name: str) -> list[str]:
    """Where `def name` appears in the library (functions and methods alike)."""
    return sorted(str(p.relative_to(LIB)) for p in LIB.rglob("*.py")
                  for node in ast.walk(ast.parse(p.read_text()))
                  if isinstance(node, ast.FunctionDef) and node.name == name)


def test_device_for_takes_only_the_config():
    config = TrainConfig(device="cpu")
    threads = cpu_cores()
    assert TrainJob.device_for(config) == f"CPU, {threads} thread{'s' if threads != 1 else ''}"
    with pytest.raises(TypeError):
        TrainJob.device_for(config, "umap")  # it used to take a map method and ignore it


def test_build_model_is_defined_once():
    assert _defined("build_model") == ["training/models.py"]
    assert not hasattr(presets, "build_model")


def test_parameter_groups_is_defined_once_and_serves_every_loss():
    assert _defined("parameter_groups") == ["physics/loss.py"]
    model = torch.nn.Linear(3, 2)
    for name in losses.LOSSES:
        bundle = losses.make(name, 4, 8)
        groups = bundle.parameter_groups(model.parameters(), lr=1e-3, proxy_lr_multiplier=10)
        assert groups[0] == {"params": list(model.parameters()), "lr": 1e-3}
        if bundle.has_proxies:  # the proxies, and only they, learn 10x faster
            assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-2)]
            assert groups[1]["params"] == [bundle.loss.proxies]
        else:
            assert len(groups) == 1
    alone = PotentialFieldLoss(4, 8, proxies_per_class=3)
    assert alone.parameter_groups([], lr=1e-3)[1]["params"] == [alone.proxies]
    assert len(PotentialFieldLoss(4, 8, proxies_per_class=0).parameter_groups([], lr=1e-3)) == 1
    with pytest.raises(ValueError, match="lr"):
        alone.parameter_groups([], lr=0.0)


def _fields() -> dict:
    z = np.zeros((2, 3), np.float32)
    y = np.zeros(2, np.int64)
    return dict(epoch=1, loss=0.5, metrics={"R@1": 1.0}, embeddings=z, labels=y,
                train_embeddings=z, train_labels=y, train_true_labels=y,
                train_flipped=y.astype(bool), proxies=None, proxy_labels=None, seconds=0.1)


def test_epoch_snapshot_is_built_by_keyword_only():
    snap = EpochSnapshot(**_fields())
    assert snap.epoch == 1 and snap.seconds == 0.1 and snap.margins is None
    with pytest.raises(TypeError):
        EpochSnapshot(*_fields().values())  # 12 positional values no longer bind in order


def _batch():
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    return emb, torch.arange(12) % 4


def test_loss_refuses_a_miners_indices_tuple():
    loss = PotentialFieldLoss(4, 8, proxies_per_class=2)
    emb, y = _batch()
    pairs = miners.MultiSimilarityMiner(epsilon=0.5)(emb, y)
    assert sum(len(t) for t in pairs) > 0  # the miner did pick pairs
    with pytest.raises(ValueError, match="indices_tuple .* not supported by PotentialFieldLoss"):
        loss(emb, y, pairs)
    assert torch.isfinite(loss(emb, y))  # without a miner it is the energy, as before


@pytest.mark.parametrize("distance", [CosineSimilarity(), LpDistance(p=1), LpDistance(power=2),
                                      LpDistance(normalize_embeddings=False)])
def test_loss_refuses_a_distance_it_would_ignore(distance):
    with pytest.raises(ValueError, match="takes only the default distance"):
        PotentialFieldLoss(4, 8, proxies_per_class=2, distance=distance)


def test_loss_accepts_the_default_distance_given_explicitly():
    emb, y = _batch()
    torch.manual_seed(1)
    plain = PotentialFieldLoss(4, 8, proxies_per_class=2)
    torch.manual_seed(1)
    given = PotentialFieldLoss(4, 8, proxies_per_class=2, distance=LpDistance(p=2))
    assert torch.equal(plain(emb, y), given(emb, y))
