"""pfml_core/training/distributed.py, the one multi-process equivalence test: 2 gloo ranks
(unequal batches, float64) give the loss, backbone and proxy gradients and a 3-step Adam
trajectory of single-process training on the concatenated batch, through the sharded PFML
energy and the replicated path (shard=False). The row-shard arithmetic itself:
tests/physics/test_sharded_energy.py; torchrun: tests/training/test_torchrun.py."""
import os

import numpy as np
import pytest
import torch

from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.training import distributed
from pfml_core.training.sampler import DistributedClassBalancedSampler
from tests.conftest import free_port

IN, EMB, CLASSES, M = 16, 24, 5, 3  # EMB > 16: the production Gram-kernel path
SPLITS = [(6, 6), (5, 7), (6, 6), (7, 5)]  # rows of rank 0 / rank 1 per step (unequal too)
STEPS = 3  # Adam steps after the gradient check
# 12 rows + 15 proxies = 27 points: the two ranks' row blocks differ in size (14 / 13)


def _batches():
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(sum(s), IN, generator=g, dtype=torch.float64),
             torch.randint(0, CLASSES, (sum(s),), generator=g)) for s in SPLITS]


def _make():
    torch.manual_seed(0)
    model = torch.nn.Linear(IN, EMB).double()
    loss = PotentialFieldLoss(CLASSES, EMB, proxies_per_class=M).double()
    return model, loss


def _run(model, loss_fn, pfml_loss, rows_of_step):
    """Step 0: loss and gradients; steps 1..STEPS: Adam, recording proxies after each.
    loss_fn is pfml_loss itself (single process) or GatheredLoss(pfml_loss)."""
    groups = pfml_loss.parameter_groups(model.parameters(), 1e-3)  # proxies at 100x lr
    opt = torch.optim.Adam(groups, weight_decay=1e-4)
    out = {"proxies": []}
    for step, (x, y) in enumerate(_batches()):
        rows = rows_of_step(step)
        opt.zero_grad()
        loss = loss_fn(model(x[rows]), y[rows])
        loss.backward()
        if step == 0:
            out["loss"] = loss.detach().clone()
            out["grads"] = [p.grad.clone() for p in model.parameters()]
            out["proxy_grad"] = pfml_loss.proxies.grad.clone()
        opt.step()
        if step > 0:
            out["proxies"].append(pfml_loss.proxies.detach().clone())
    return out


def _worker(rank, world, port, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    assert distributed.init_from_env(backend="gloo", timeout_s=60)
    # each _rank_body returns before shutdown: its DDP model is gone by then
    out = {shard: _rank_body(rank, shard) for shard in (True, False)}
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    distributed.shutdown()


def _rank_body(rank, shard):
    model, loss = _make()
    if rank == 1:  # different starting values on purpose: sync must fix them
        torch.nn.init.normal_(loss.proxies)
        torch.nn.init.normal_(model.weight)
    distributed.sync_module(loss)
    ddp = distributed.wrap_model(model, "cpu")
    gathered = distributed.GatheredLoss(loss, shard=shard)

    def rows_of_step(step):
        a = SPLITS[step][0]
        return slice(0, a) if rank == 0 else slice(a, sum(SPLITS[step]))

    out = _run(ddp, gathered, loss, rows_of_step)
    out["sharded"] = gathered.sharded
    out["divergence"] = max_divergence(loss)
    return out


def max_divergence(module: torch.nn.Module) -> float:
    """Largest |p - p on rank 0| over the module's parameters and all ranks (0.0 = in sync)."""
    params = [p.detach() for p in module.parameters() if p.numel()]
    if not params or not distributed.is_distributed():
        return 0.0
    worst = torch.zeros((), dtype=torch.float64, device=params[0].device)
    for p in params:
        ref = p.clone()
        torch.distributed.broadcast(ref, 0)
        worst = torch.maximum(worst, (p - ref).abs().max().double())
    torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
    return float(worst)


@pytest.mark.distributed
@pytest.mark.timeout(360)
def test_two_ranks_train_exactly_like_one_process(tmp_path, spawn_ranks):
    spawn_ranks(_worker, (2, free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    model, loss = _make()
    single = _run(model, loss, loss, lambda step: slice(None))
    assert single["grads"][0].abs().max() > 1e-2  # a dropped factor of W would show
    for shard in (True, False):
        r0, r1 = (r[shard] for r in ranks)
        for out in (r0, r1):
            assert out["sharded"] == shard and out["divergence"] == 0.0
            torch.testing.assert_close(out["loss"], single["loss"], rtol=1e-12, atol=1e-12)
            for g, ref in zip(out["grads"], single["grads"]):
                torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(out["proxy_grad"], single["proxy_grad"], rtol=1e-10, atol=1e-12)
        assert len(r0["proxies"]) == len(r1["proxies"]) == STEPS
        for p0, p1, ref in zip(r0["proxies"], r1["proxies"], single["proxies"]):
            assert torch.equal(p0, p1)  # bitwise: same start, same averaged gradient
            torch.testing.assert_close(p0, ref, rtol=1e-9, atol=1e-11)
    assert not torch.allclose(single["proxies"][0], single["proxies"][-1])  # they did move


def test_single_process_helpers_are_identity():
    x = torch.randn(3, 4, requires_grad=True)
    assert distributed.gather_with_grad(x) is x and distributed.gather(x) is x
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert not distributed.is_distributed()
    loss = PotentialFieldLoss(3, 4, proxies_per_class=1)
    assert distributed.wrap_model(loss, "cpu") is loss and max_divergence(loss) == 0.0
    y = torch.tensor([0, 1, 2])
    torch.testing.assert_close(distributed.GatheredLoss(loss)(x, y), loss(x, y))


def test_gathered_loss_runs_in_float32_under_autocast():
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 24)
    loss = PotentialFieldLoss(3, 24, proxies_per_class=2)
    x, y = torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = model(x)
        got = distributed.GatheredLoss(loss)(emb, y)
    assert emb.dtype == torch.bfloat16 and got.dtype == torch.float32
    torch.testing.assert_close(got, loss(emb.float(), y))


def test_init_from_env_is_noop_without_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.init_from_env() is False and not distributed.is_distributed()


def test_sampler_rank_shards_concatenate_to_the_global_batch():
    labels = np.repeat(np.arange(10), 5)
    kw = dict(classes_per_batch=4, samples_per_class=3, seed=5)
    full = DistributedClassBalancedSampler(labels, **kw, rank=0, world_size=1)
    shards = [DistributedClassBalancedSampler(labels, **kw, rank=r, world_size=w)
              for w in (2, 3) for r in range(w)]
    for s in [full] + shards:
        s.set_epoch(2)
    batches = list(full)
    assert len(batches) == len(labels) // 12
    for b in batches:
        assert sorted(np.bincount(labels[b], minlength=10)[np.unique(labels[b])]) == [3] * 4
    for group in (shards[:2], shards[2:]):
        per_rank = [list(s) for s in group]
        for i, b in enumerate(batches):
            assert sum((r[i] for r in per_rank), []) == b


def test_sampler_epochs_differ_and_guards():
    labels = np.repeat(np.arange(6), 4)
    s = DistributedClassBalancedSampler(labels, 2, 2, rank=0, world_size=1)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first
    with pytest.raises(ValueError, match="divisible by world_size=4"):
        DistributedClassBalancedSampler(labels, 3, 2, rank=0, world_size=4)
    with pytest.raises(ValueError, match="classes_per_batch"):
        DistributedClassBalancedSampler(labels, 7, 2, rank=0, world_size=1)
    with pytest.raises(ValueError, match="rank"):
        DistributedClassBalancedSampler(labels, 2, 2, rank=2, world_size=2)
