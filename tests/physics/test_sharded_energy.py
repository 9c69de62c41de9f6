"""The row-sharded PFML energy (physics.kernel.RowShard) in one process, float64: each of W
shards computes only its block of rows, against all points, and the blocks' energies and
gradient rows add up to the whole, so an all-reduce and an all-gather make them exact; no
part alone is the whole. Real processes: tests/training/test_distributed.py."""
import pytest
import torch

from pfml_core.physics import kernel, total_energy
from pfml_core.physics.loss import PotentialFieldLoss
from pfml_core.training import distributed

EMB, CLASSES, M, B = 40, 5, 3, 13  # 13 rows + 15 proxies = 28 points: blocks differ for W = 3


def _scene():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(B, EMB, generator=g, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (B,), generator=g)
    torch.manual_seed(0)  # delta 0.6: many pairs inside the radius, so forces everywhere
    return x, y, PotentialFieldLoss(CLASSES, EMB, proxies_per_class=M, delta=0.6).double()


def _alone(index, world):
    """Shard `index` of `world` whose collectives do nothing: its partial energy, and its
    own gradient rows with zeros elsewhere."""
    def gather(rows, sizes):
        start = sum(sizes[:index])
        return torch.nn.functional.pad(rows, (0, 0, start, sum(sizes) - start - len(rows)))
    return kernel.RowShard(index, world, sum=lambda e: e, gather=gather)


def _energy(loss, x, y, shard):
    emb = x.clone().requires_grad_()
    loss.proxies.grad = None
    value = loss.energy(emb, y, shard=shard)
    value.backward()
    return value.detach(), emb.grad, loss.proxies.grad.clone()


@pytest.mark.parametrize("world", [2, 3])
def test_shards_compute_their_rows_and_add_up_to_the_whole(world, monkeypatch):
    x, y, loss = _scene()
    n = B + CLASSES * M
    blocks, block = [], kernel._block

    def recording(points, sq_norm, keys, a, b, *args, **kw):
        blocks.append((a, b, points.shape[0]))
        return block(points, sq_norm, keys, a, b, *args, **kw)
    monkeypatch.setattr(kernel, "_block", recording)
    whole = _energy(loss, x, y, None)
    assert [(a, b) for a, b, _ in blocks] == [(0, n)]  # no shard: the whole matrix
    parts, covered = [], []
    for index in range(world):
        blocks.clear()
        parts.append(_energy(loss, x, y, _alone(index, world)))
        assert all(total == n for _, _, total in blocks)  # its rows against ALL points
        rows = [i for a, b, _ in blocks for i in range(a, b)]
        assert len(rows) in (n // world, n // world + 1)  # 1/W of the pair work
        covered += rows
    assert sorted(covered) == list(range(n))
    for got, want in zip(map(sum, zip(*parts)), whole):  # energy, embedding and proxy gradients
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    for value, _, proxy_grad in parts:  # without the collectives, no part passes for the whole
        assert not torch.allclose(value, whole[0], rtol=1e-3)
        assert not torch.allclose(proxy_grad, whole[2], rtol=1e-3)


def test_one_process_keeps_the_replicated_path():
    x, y, loss = _scene()
    gathered = distributed.GatheredLoss(loss)
    assert not gathered.sharded and distributed.row_shard() is None
    torch.testing.assert_close(gathered(x, y), loss(x, y), rtol=0, atol=0)


def test_shard_is_refused_where_the_gram_kernel_does_not_apply():
    shard = _alone(0, 2)
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 0, 1, 2, 2])
    with pytest.raises(ValueError, match="shard needs potential='pfml', more than 16 dimensions"):
        total_energy(x, y, alpha=3.0, delta=0.2, shard=shard)
    with pytest.raises(ValueError, match="reduction 'sum' or 'mean'"):
        total_energy(torch.randn(6, 20), y, alpha=3.0, delta=0.2, reduction="none", shard=shard)
