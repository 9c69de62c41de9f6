"""`torchrun -m pfml_core train` smoke test on CPU (gloo, 2 processes): the paper's SOP config
file with flags shrinking it, on a tiny generated SOP folder, finishes and rank 0 alone writes
its run folder. Plus, in one process, what warm-up epochs leave fixed. That N processes
train like one: tests/training/test_distributed.py."""
from pathlib import Path

import numpy as np
import pytest
import torch

from pfml_core.training import run_folder as runs
from pfml_core.training.engine import TrainConfig, train
from pfml_core.training.models import build_model
from tests.sop import ROOT, sop_folder, torchrun_train

SHRINK = ["--model", "resnet18", "--no-pretrained", "--embedding-size", "16", "--epochs", "2",
          "--warmup-epochs", "1", "--classes-per-batch", "2", "--eval-subset", "12",
          "--max-batches", "1", "--device", "cpu"]


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_torchrun_trains_the_sop_config_and_rank_0_writes_the_run(tmp_path):
    root = sop_folder(tmp_path / "Stanford_Online_Products", 4, (40, 48))
    proc = torchrun_train(2, ["--config", str(ROOT / "configs" / "sop_resnet50.toml"),
                              "--data-root", str(root), *SHRINK, "--out", str(tmp_path / "run")],
                          OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: 2 epochs") == 1  # rank 0 alone reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Stanford_Online_Products", "run"]
    run = runs.load_run(tmp_path / "run")
    c = run.config  # the file's values, the flags laid over them
    assert (c.data, c.model, c.freeze_bn, c.lr, c.samples_per_class) == ("sop", "resnet18", True, 1e-4, 2)
    assert c.loss_params == {"alpha": 3.0, "delta": 0.2, "proxies_per_class": 2}
    assert list(run.metrics["epoch"]) == [0, 1, 2] and np.isfinite(run.metrics["loss"][1:]).all()
    assert ((run.metrics["R@1"] >= 0) & (run.metrics["R@1"] <= 1)).all()
    assert run.embeddings["emb"].shape == (3, 12, 16)
    assert run.embeddings["proxies"].shape == (3, 4 * 2, 16)  # 4 train classes x M = 2
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and not [k for k in ckpt["model"] if k.startswith("module.")]
    bn = {k: v for k, v in ckpt["model"].items() if ".bn" in k or "downsample.1" in k}
    assert len(bn) == 20 * 5  # ResNet-18's 20 BatchNorms, each frozen at torchvision's init
    for k, v in bn.items():
        want = {"weight": 1, "bias": 0, "running_mean": 0, "running_var": 1}.get(k.rsplit(".", 1)[1])
        assert want is None or torch.equal(v, torch.full_like(v, want)), k


def _blobs(path: Path) -> str:
    """8 classes x 12 samples of 20-d Gaussian blobs (zero-shot: 4 train, 4 test classes)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 12)
    X = rng.normal(size=(8, 20))[y] + 0.5 * rng.normal(size=(len(y), 20))
    np.savez(path, X=X.astype(np.float32), y=y)
    return str(path)


def test_warmup_keeps_the_backbone_fixed_and_trains_the_head(tmp_path):
    cfg = dict(data=_blobs(tmp_path / "blobs.npz"), model="mlp", epochs=1, max_batches_per_epoch=2,
               classes_per_batch=2, samples_per_class=2, eval_subset=48, seed=3, device="cpu")
    warm = train(TrainConfig(**cfg, warmup_epochs=1)).model.state_dict()
    cold = train(TrainConfig(**cfg, warmup_epochs=0)).model.state_dict()
    torch.manual_seed(3)  # the untrained network of seed 3, as the engine builds it
    init = build_model("mlp", (20,), 64).state_dict()
    for name in ("trunk.1.weight", "trunk.4.weight", "trunk.2.bias"):
        torch.testing.assert_close(warm[name], init[name], rtol=0, atol=0, msg=name)
        assert not torch.allclose(cold[name], init[name]), name  # without warm-up it moves
    assert not torch.allclose(warm["head.weight"], init["head.weight"])
