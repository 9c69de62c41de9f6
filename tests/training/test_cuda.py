"""The CUDA path (pytest -m cuda; skipped without a GPU; bench/cuda_check.sh runs these): the
loss with half-precision embeddings, no host sync in its forward and backward, the Gram kernel
against the definition in float64, bad labels raised by verify(); a --device cuda --amp run;
torchrun (NCCL) on the paper's SOP config; 2 processes on the GPU equal one in float64."""
import os

import numpy as np
import pytest
import torch

from pfml_core.physics import PotentialFieldLoss, definition, total_energy
from pfml_core.physics.kernel import gram_energy
from pfml_core.training import distributed
from pfml_core.training import run_folder as runs
from tests.conftest import free_port
from tests.sop import sop_folder, torchrun_train

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(300),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
DEV = "cuda"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_embeddings_give_the_float32_loss(dtype):
    torch.manual_seed(0)
    loss = PotentialFieldLoss(10, 64, proxies_per_class=3).to(DEV)
    y = torch.arange(40, device=DEV) % 10
    x = torch.randn(40, 64, device=DEV).to(dtype).requires_grad_()
    value = loss(x, y)
    value.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    torch.testing.assert_close(value.float(), loss(x.detach().float(), y), rtol=1e-3, atol=0)


@pytest.mark.parametrize("check", [False, None])  # None: on-device flags instead of value checks
def test_no_host_sync_in_forward_and_backward_at_paper_scale(check):
    torch.manual_seed(0)  # B = 100, 98 classes x 15 proxies, 512-d
    emb = torch.randn(100, 512, device=DEV).requires_grad_()
    labels = torch.randint(0, 98, (100,), device=DEV)
    loss = PotentialFieldLoss(98, 512, proxies_per_class=15, check=check).to(DEV)
    loss(emb, labels).backward()  # warm-up outside the debug mode (handles, workspaces)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            loss(emb, labels).backward()
            total_energy(emb, labels, loss.proxies, loss.proxy_labels, alpha=3.0, delta=0.2,
                         check=False).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(emb.grad).all() and loss.proxies.grad.abs().sum() > 0


@pytest.mark.parametrize("alpha", [3.0, 2.5])
def test_gram_kernel_equals_the_definition_in_float64(alpha):
    g = torch.Generator(device=DEV).manual_seed(0)
    x = torch.nn.functional.normalize(
        torch.randn(1570, 512, device=DEV, dtype=torch.float64, generator=g), dim=-1)
    y = torch.randint(0, 98, (1570,), device=DEV, generator=g)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = gram_energy(torch.nn.functional.normalize(a, dim=-1), y, alpha, 0.2, 0.2, 1e-6)
    plain = definition.total_energy(b, y, alpha=alpha, delta=0.2, delta_rep=0.2, eps=1e-6)
    fast.backward()
    plain.backward()
    torch.testing.assert_close(fast, plain, rtol=1e-10, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-8 * float(b.grad.abs().max()))


def test_bad_labels_are_raised_by_verify():
    loss = PotentialFieldLoss(98, 512, proxies_per_class=15).to(DEV)
    emb = torch.randn(100, 512, device=DEV)
    loss(emb, torch.randint(0, 98, (100,), device=DEV))
    loss.verify()  # clean so far
    loss(emb, torch.full((100,), 98, device=DEV))  # no value checks on the GPU: no error yet
    with pytest.raises(ValueError, match=r"labels must be in \[0, 97\] \(num_classes=98\), got max 98"):
        loss.verify()


@pytest.mark.slow
def test_cli_run_with_cuda_and_amp_trains_in_bfloat16(tmp_path, monkeypatch):
    from pfml_core import cli
    from pfml_core.training import models

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(20), 30)
    X = rng.normal(size=(20, 32))[y] + rng.normal(size=(600, 32))
    np.savez(tmp_path / "blobs.npz", X=X.astype(np.float32), y=y)
    seen, forward = set(), models.EmbeddingNet.forward

    def recording(self, x):
        out = forward(self, x)
        seen.add((out.device.type, out.dtype))
        return out
    monkeypatch.setattr(models.EmbeddingNet, "forward", recording)
    assert cli.main(["train", "--data", str(tmp_path / "blobs.npz"), "--model", "mlp", "--epochs", "3",
                     "--amp", "--device", "cuda", "--embedding-size", "128",
                     "--out", str(tmp_path / "run")]) == 0
    assert ("cuda", torch.bfloat16) in seen  # autocast on the GPU, not a silent float32 run
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert (ckpt["config"]["amp"], ckpt["config"]["device"], ckpt["epoch"]) == (True, "cuda", 3)
    assert all(v.is_cuda for v in ckpt["model"].values())
    loss = runs.load_run(tmp_path / "run").metrics["loss"]
    assert np.isfinite(loss[1:]).all() and loss[3] < loss[1]  # float32 energy, and it falls


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_nccl_trains_the_sop_config(tmp_path):
    """ResNet-50 (weights=None), batch 100 = 50 classes x 2, bf16, frozen BN: the file's values."""
    root = sop_folder(tmp_path / "sop", 60, (72, 96))  # 50 classes x 2 fill a batch
    proc = torchrun_train(1, ["--config", "sop_resnet50", "--data-root", str(root), "--no-pretrained",
                              "--epochs", "2", "--eval-subset", "180", "--max-batches", "2",
                              "--out", str(tmp_path / "run")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = runs.load_run(tmp_path / "run")
    c = run.config
    assert (c.model, c.amp, c.freeze_bn, c.classes_per_batch * c.samples_per_class) == \
        ("resnet50", True, True, 100)
    assert list(run.metrics["epoch"]) == [0, 1, 2] and np.isfinite(run.metrics["loss"][1:]).all()
    assert run.embeddings["emb"].shape == (3, 180, 512)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert all(v.is_cuda for v in ckpt["model"].values())
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def _sharded_worker(rank, world, port):
    """One rank: the sharded and the replicated loss, value and gradients, against the whole
    batch in one process (float64); raises, failing the test, where they differ."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    n_gpu = torch.cuda.device_count()
    # NCCL (>= 2.5) refuses two ranks on one device: on one GPU the ranks share it over gloo
    backend = os.environ.get("PFML_SHARD_BACKEND") or ("nccl" if n_gpu >= world else "gloo")
    dev = torch.device("cuda", rank % n_gpu)
    torch.cuda.set_device(dev)
    assert distributed.init_from_env(backend=backend, timeout_s=120)
    splits = [23, 41]  # unequal per-rank batches
    g = torch.Generator().manual_seed(1)
    x = torch.randn(sum(splits), 128, generator=g, dtype=torch.float64).to(dev)
    y = torch.randint(0, 50, (sum(splits),), generator=g).to(dev)
    torch.manual_seed(0)
    loss = PotentialFieldLoss(50, 128, proxies_per_class=3).to(dev, torch.float64)
    mine = slice(sum(splits[:rank]), sum(splits[: rank + 1]))
    for shard in (True, False):
        step = distributed.GatheredLoss(loss, shard=shard)
        assert step.sharded == shard
        emb = x[mine].clone().requires_grad_()
        loss.proxies.grad = None
        value = step(emb, y[mine])
        value.backward()
        got = (value.detach(), emb.grad / world, loss.proxies.grad.clone())  # / world: DDP's share
        whole = x.clone().requires_grad_()
        loss.proxies.grad = None
        ref = loss(whole, y)
        ref.backward()
        for a, b in zip(got, (ref.detach(), whole.grad[mine], loss.proxies.grad)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    distributed.shutdown()


@pytest.mark.distributed
def test_two_processes_on_the_gpu_give_the_one_process_loss_and_gradients(spawn_ranks):
    spawn_ranks(_sharded_worker, (2, free_port()), nprocs=2, timeout=240)
