"""The sharded PFML energy under torch.distributed (gloo, 2 and 3 processes, float64):
each rank computes only its block of rows of the pair matrix, yet the loss value, the
backbone gradient (through DDP) and the proxy gradient equal single-process training to
1e-10. A control run with the collectives replaced by local no-ops must NOT match: the
test sees the reduction."""
import os

import pytest
import torch

from pfml_core.physics import kernel
from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.training import distributed
from tests.conftest import free_port

IN, EMB, CLASSES, M = 12, 40, 5, 3
SPLITS = {2: (5, 8), 3: (4, 6, 3)}  # unequal per-rank batches on purpose

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(360)]


def _data(world):
    g = torch.Generator().manual_seed(11)
    n = sum(SPLITS[world])
    x = torch.randn(n, IN, generator=g, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    return x, y


def _make():
    torch.manual_seed(0)
    model = torch.nn.Linear(IN, EMB).double()
    loss = PotentialFieldLoss(CLASSES, EMB, proxies_per_class=M, delta=0.6).double()
    return model, loss  # delta 0.6: many pairs inside the radius, so forces everywhere


def _step(model, loss_fn, pfml, x, y):
    model.zero_grad()
    pfml.proxies.grad = None
    value = loss_fn(model(x), y)
    value.backward()
    return {"loss": value.detach(), "grads": [p.grad.clone() for p in model.parameters()],
            "proxy_grad": pfml.proxies.grad.clone()}


def _no_collectives(rank, world):
    """A RowShard whose collectives do nothing: each rank keeps its partial energy and
    only its own gradient rows (zeros elsewhere)."""
    def alone(rows, sizes):
        start = sum(sizes[:rank])
        return torch.nn.functional.pad(rows, (0, 0, start, sum(sizes) - start - len(rows)))
    return kernel.RowShard(rank, world, sum=lambda e: e, gather=alone)


def _worker(rank, world, port, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    assert distributed.init_from_env(backend="gloo", timeout_s=60)
    _rank_body(rank, world, out_dir)  # returns before shutdown: its DDP model is gone by then
    distributed.shutdown()


def _rank_body(rank, world, out_dir):
    blocks, block = [], kernel._block

    def recording(x, sq_norm, keys, a, b, *args, **kw):
        blocks.append((a, b, x.shape[0]))
        return block(x, sq_norm, keys, a, b, *args, **kw)
    kernel._block = recording
    x, y = _data(world)
    a = sum(SPLITS[world][:rank])
    mine = slice(a, a + SPLITS[world][rank])
    model, loss = _make()
    ddp = distributed.wrap_model(model, "cpu")
    sharded = distributed.GatheredLoss(loss)
    out = {"sharded": sharded.sharded, **_step(ddp, sharded, loss, x[mine], y[mine])}
    out["blocks"], blocks[:] = list(blocks), []
    replicated = distributed.GatheredLoss(loss, shard=False)
    out["replicated"] = _step(ddp, replicated, loss, x[mine], y[mine])
    out["replicated_blocks"] = list(blocks)
    loss.proxies.grad = None
    emb = torch.nn.functional.normalize(model(x), dim=-1)  # the whole batch, no DDP
    control = loss.energy(emb, y, shard=_no_collectives(rank, world))
    control.backward()
    out["control"] = {"loss": control.detach(), "proxy_grad": loss.proxies.grad.clone()}
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    kernel._block = block


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def ranks(request, tmp_path_factory, spawn_ranks):
    world = request.param
    out_dir = tmp_path_factory.mktemp(f"shard{world}")
    spawn_ranks(_worker, (world, free_port(), str(out_dir)), nprocs=world)
    return world, [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(world)]


def _single(world):
    x, y = _data(world)
    model, loss = _make()
    return _step(model, loss, loss, x, y)


def _assert_equal(got, ref):
    torch.testing.assert_close(got["loss"], ref["loss"], rtol=1e-12, atol=0)
    for g, r in zip(got["grads"], ref["grads"]):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got["proxy_grad"], ref["proxy_grad"], rtol=1e-10, atol=1e-12)


def test_sharded_loss_and_gradients_equal_single_process(ranks):
    world, outs = ranks
    ref = _single(world)
    for out in outs:
        assert out["sharded"]
        _assert_equal(out, ref)
        _assert_equal(out["replicated"], ref)  # the replicated path (shard=False) agrees
    assert all(torch.equal(o["proxy_grad"], outs[0]["proxy_grad"]) for o in outs)  # bitwise


def test_each_rank_computes_only_its_block_of_rows(ranks):
    world, outs = ranks
    n = sum(SPLITS[world]) + CLASSES * M
    covered = []
    for out in outs:
        assert all(total == n for _, _, total in out["blocks"])  # rows against ALL points
        rows = [i for a, b, _ in out["blocks"] for i in range(a, b)]
        assert len(rows) in (n // world, n // world + 1)  # 1/W of the pair work
        covered += rows
        assert [(a, b) for a, b, _ in out["replicated_blocks"]] == [(0, n)]  # whole matrix
    assert sorted(covered) == list(range(n))


def test_without_the_collectives_nothing_matches(ranks):
    """The control: partial energies and partial gradients are not the whole ones, so a
    missing all-reduce or all-gather cannot pass the equality test above."""
    world, outs = ranks
    ref = _single(world)
    total = sum(out["control"]["loss"] for out in outs)
    torch.testing.assert_close(total, ref["loss"], rtol=1e-12, atol=0)  # the parts add up
    for out in outs:
        assert not torch.allclose(out["control"]["loss"], ref["loss"], rtol=1e-3)
        assert not torch.allclose(out["control"]["proxy_grad"], ref["proxy_grad"], rtol=1e-3)


def test_one_process_keeps_the_replicated_path():
    model, loss = _make()
    gathered = distributed.GatheredLoss(loss)
    assert not gathered.sharded and distributed.row_shard() is None
    x, y = _data(2)
    torch.testing.assert_close(gathered(model(x), y), loss(model(x), y), rtol=0, atol=0)


def test_shard_is_refused_where_the_gram_kernel_does_not_apply():
    from pfml_core.physics import total_energy
    shard = _no_collectives(0, 2)
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 0, 1, 2, 2])
    with pytest.raises(ValueError, match="shard needs potential='pfml', more than 16 dimensions"):
        total_energy(x, y, alpha=3.0, delta=0.2, shard=shard)
    with pytest.raises(ValueError, match="reduction 'sum' or 'mean'"):
        total_energy(torch.randn(6, 20), y, alpha=3.0, delta=0.2, reduction="none", shard=shard)
