"""Run folder writes (pfml_core.training.run_folder): each epoch is written once, in bytes
that do not grow with the epoch number; the per-epoch layout reloads as exactly what the old
single embeddings.npz stacked, and old folders still open; run folders never collide, and
writers sharing a folder never trip over each other's temp files."""
import multiprocessing as mp
import os
import threading

import numpy as np
import pytest
import torch

from pfml_core.eval import label_margin
from pfml_core.eval.label_margin import TrainMargins
from pfml_core.training import TrainConfig
from pfml_core.training import run_folder as runs
from pfml_core.training.snapshot import EpochSnapshot


def _snap(epoch, n=30, m=20, D=8, P=6, C=3, proxies=True, margins=True) -> EpochSnapshot:
    """Per-epoch arrays drawn from the epoch; the shared ones the same every epoch."""
    fix, rng = np.random.default_rng(0), np.random.default_rng(100 + epoch)
    labels, tl = fix.integers(0, C, n), fix.integers(0, C, m)
    flipped = fix.random(m) < 0.3
    true = np.where(flipped, (tl + 1) % C, tl)
    mg = None
    if margins:
        sim = rng.random((m, C), dtype=np.float32)
        margin, rival = label_margin.margin_and_rival(sim, tl)
        mg = TrainMargins(margin, rival, sim, tl, true, flipped, np.arange(m) * 3)
    return EpochSnapshot(
        epoch=epoch, loss=float("nan") if epoch == 0 else 1.0 / epoch,
        metrics={"R@1": 0.5 + epoch / 100}, embeddings=rng.standard_normal((n, D)).astype(np.float32),
        labels=labels, train_embeddings=rng.standard_normal((m, D)).astype(np.float32),
        train_labels=tl, train_true_labels=true, train_flipped=flipped,
        proxies=rng.standard_normal((P, D)).astype(np.float32) if proxies else None,
        proxy_labels=np.arange(P) % C if proxies else None, seconds=0.1 * epoch,
        eval_index=np.arange(n) * 2, train_index=np.arange(m) * 3, margins=mg)


def _old_write_embeddings(out, history) -> None:
    """The writer before per-epoch files: every epoch restacked into one embeddings.npz."""
    last = history[-1]
    arrays = {"epochs": np.array([s.epoch for s in history]),
              "emb": np.stack([s.embeddings for s in history]), "labels": last.labels,
              "train_emb": np.stack([s.train_embeddings for s in history]),
              "train_labels": last.train_labels, "train_true_labels": last.train_true_labels,
              "train_flipped": last.train_flipped,
              "eval_index": last.eval_index, "train_index": last.train_index}
    if last.proxies is not None:
        arrays["proxies"] = np.stack([s.proxies for s in history])
        arrays["proxy_labels"] = last.proxy_labels
    if last.margins is not None:
        arrays.update(label_margin.to_arrays([s.margins for s in history]))
    np.savez_compressed(out / "embeddings.npz", **arrays)


def _write_run(out, history, new=True) -> None:
    runs.start_run(out, TrainConfig(data="digits"))
    runs.write_metrics(out, history)
    if new:
        for s in history:
            runs.write_epoch(out, s)
    else:
        _old_write_embeddings(out, history)


def _files(out) -> dict:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in out.rglob("*") if p.is_file()}


def test_each_epoch_writes_the_same_bytes_once(tmp_path):
    out = tmp_path / "run"
    runs.start_run(out, TrainConfig(data="digits"))
    written, before = [], _files(out)
    for epoch in range(6):
        runs.write_epoch(out, _snap(epoch, n=2000, m=1500, D=64, P=200, C=50))
        after = _files(out)
        changed = {p for p, st in after.items() if before.get(p) != st}
        # earlier epochs' files are never touched again; static.npz only with epoch 0
        assert changed - {out / "embeddings" / "margin_sim.npz"} == (
            {out / "embeddings" / f"epoch-{epoch:04d}.npz"}
            | ({out / "embeddings" / "static.npz"} if epoch == 0 else set()))
        written.append(sum(after[p][2] for p in changed))
        before = after
    later = written[1:]
    assert max(later) <= 1.02 * min(later), written
    assert written[0] - later[0] < 0.2 * later[0]  # the shared arrays are small
    assert runs.load_embeddings(out)["emb"].shape == (6, 2000, 64)


@pytest.mark.parametrize("proxies,margins", [(True, True), (False, False), (True, False)])
def test_new_layout_loads_as_the_old_writer_stacked(tmp_path, proxies, margins):
    history = [_snap(e, proxies=proxies, margins=margins) for e in range(4)]
    _write_run(tmp_path / "new", history)
    _write_run(tmp_path / "old", history, new=False)
    new, old = runs.load_embeddings(tmp_path / "new"), runs.load_embeddings(tmp_path / "old")
    assert not (tmp_path / "new" / "embeddings.npz").exists()
    assert sorted(new) == sorted(old)
    for k in old:
        assert new[k].dtype == old[k].dtype and np.array_equal(new[k], old[k]), k
    back = runs.snapshots(runs.load_run(tmp_path / "new"))
    assert [s.epoch for s in back] == [0, 1, 2, 3]
    for s, h in zip(back, history):
        assert np.array_equal(s.embeddings, h.embeddings) and s.metrics == pytest.approx(h.metrics)
        assert (s.proxies is None) == (not proxies) and (s.margins is None) == (not margins)
        if margins:
            assert np.array_equal(s.margins.margin, h.margins.margin)
    if margins:
        assert np.array_equal(back[-1].margins.sim, history[-1].margins.sim)


def test_old_single_file_run_still_opens(tmp_path):
    history = [_snap(e) for e in range(3)]
    _write_run(tmp_path / "old", history, new=False)
    run = runs.load_run(tmp_path / "old")
    assert run.embeddings["emb"].shape == (3, 30, 8)
    back = runs.snapshots(run)
    assert [s.epoch for s in back] == [0, 1, 2]
    assert np.array_equal(back[1].train_embeddings, history[1].train_embeddings)
    assert np.array_equal(back[2].margins.rival, history[2].margins.rival)
    assert [r["name"] for r in runs.list_runs(tmp_path)] == ["old"]
    assert runs.list_runs(tmp_path)[0]["epochs"] == 2


def test_a_reused_folder_holds_the_new_run_alone(tmp_path):
    out = tmp_path / "run"
    _write_run(out, [_snap(e) for e in range(5)])
    _old_write_embeddings(out, [_snap(e) for e in range(5)])
    _write_run(out, [_snap(e, D=4) for e in range(2)])
    run = runs.load_run(out)
    assert list(run.embeddings["epochs"]) == [0, 1] and run.embeddings["emb"].shape == (2, 30, 4)
    assert list(run.metrics["epoch"]) == [0, 1] and not (out / "embeddings.npz").exists()


def _all_at_once(fn, n: int) -> None:
    """fn in n threads (fn waits on a shared Barrier itself), then wait for all of them."""
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_new_run_dir_in_the_same_second_from_many_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(runs.time, "strftime", lambda fmt, *a: "20250101-120000")
    config, n = TrainConfig(data="digits"), 24
    start, got, errors = threading.Barrier(n), [], []

    def one():
        start.wait()
        try:
            got.append(runs.new_run_dir(config))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    _all_at_once(one, n)
    assert not errors and len(set(got)) == n
    assert all(p.is_dir() and not any(p.iterdir()) for p in got)
    names = {p.name for p in got}
    assert "20250101-120000-pfml-digits" in names and "20250101-120000-pfml-digits-2" in names


def _claim(root, start, queue):
    os.environ["PFML_RUNS_DIR"] = root  # a forked child of its own
    start.wait()
    queue.put([str(runs.new_run_dir(TrainConfig(data="digits"), "same")) for _ in range(5)])


def test_new_run_dir_from_many_processes(tmp_path):
    ctx, n = mp.get_context("fork"), 4
    start, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(str(tmp_path), start, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [d for _ in procs for d in queue.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(got)) == n * 5 == len(list(tmp_path.iterdir()))


def test_writers_sharing_a_folder_never_share_a_temp_file(tmp_path):
    """Two runs once wrote one folder: the second os.replace found the first's fixed-name temp
    file gone (FileNotFoundError). Each writer now has its own."""
    out, n = tmp_path / "run", 4
    config = TrainConfig(data="digits")
    runs.start_run(out, config)
    start, errors = threading.Barrier(n), []

    def writer():
        model = torch.nn.Linear(64, 64)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        start.wait()
        try:
            history = []
            for epoch in range(6):
                history.append(_snap(epoch, n=300, D=64))
                runs.write_config(out, config)
                runs.write_metrics(out, [runs.metrics_row(s) for s in history])
                runs.write_epoch(out, history[-1])
                runs.save_checkpoint(out, model, torch.nn.Linear(2, 2), opt, config, epoch)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    _all_at_once(writer, n)
    assert not errors, errors
    assert not [p for p in out.rglob("*.tmp")]  # every temp file was moved into place
    assert runs.load_checkpoint(out / "checkpoint.pt")["epoch"] == 5
    assert list(runs.load_run(out).embeddings["epochs"]) == list(range(6))


@pytest.mark.slow  # trains the engine briefly
def test_engine_hands_the_writer_one_snapshot_per_epoch(tmp_path, monkeypatch):
    from pfml_core.training.engine import train

    seen, write = [], runs.write_epoch
    monkeypatch.setattr(runs, "write_epoch", lambda out, snap: (seen.append(snap), write(out, snap)))
    cfg = TrainConfig(data="digits", epochs=2, max_batches_per_epoch=2, eval_subset=200,
                      seed=0, device="cpu")
    result = train(cfg, out_dir=tmp_path / "run")
    assert [s.epoch for s in seen] == [0, 1, 2] and all(isinstance(s, EpochSnapshot) for s in seen)
    names = {p.name for p in (tmp_path / "run" / "embeddings").iterdir()}
    assert names == {"static.npz", "margin_sim.npz", "epoch-0000.npz", "epoch-0001.npz", "epoch-0002.npz"}
    back = runs.snapshots(runs.load_run(tmp_path / "run"))
    assert np.array_equal(back[2].embeddings, result.history[2].embeddings)
    assert np.array_equal(back[1].margins.margin, result.history[1].margins.margin)
    # memory stays flat: earlier epochs keep metrics and margins, not their embeddings
    assert [len(s.embeddings) for s in result.history] == [0, 0, len(back[2].embeddings)]
    assert result.history[0].margins.sim is None and result.history[2].margins.sim is not None
