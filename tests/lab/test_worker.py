"""pfml_core.lab.worker: grids run in detached worker processes, land in the store, can be
cancelled, survive a SIGKILL with finished runs intact (reaped once the heartbeat is stale),
and two grids at once stay apart. The queue and heartbeats: tests/lab/test_lab_queue.py."""
from __future__ import annotations

import os
import signal

import pytest

from pfml_core.lab import grid as lab
from pfml_core.lab import worker
from pfml_core.lab.store import Store, pid_alive
from tests.lab_fakes import expected_r1
from tests.lab_helpers import wait_for

FAKE = "tests.lab_fakes:{}"
TINY = {"epochs": 1, "max_batches_per_epoch": 2, "eval_subset": 200, "device": "cpu"}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    s = Store()
    yield s
    s.close()


def statuses(store, gid):
    return [r["status"] for r in store.runs(gid)]


def noise_grid(store, seeds=(0, 1, 2), losses=("pfml",), rates=(0.0,)):
    spec, runs = lab.noise_grid("digits", list(losses), list(rates), list(seeds), base=TINY)
    return store.create_grid("noise", spec, runs)


@pytest.mark.slow  # a worker process
def test_background_grid_lands_in_store(store):
    gid = noise_grid(store, rates=(0.0, 0.2))
    pid = worker.start(gid, store, FAKE.format("quick"))
    assert pid != os.getpid()
    wait_for(lambda: store.grid(gid)["status"] == "done", what="grid done")
    runs = store.runs(gid)
    assert statuses(store, gid) == ["done"] * 6
    assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]
    assert all(r["worker_pid"] == pid for r in runs)
    wait_for(lambda: not pid_alive(pid), what="worker exit")


@pytest.mark.slow  # a worker process
def test_cancel_stops_the_worker(store):
    gid = noise_grid(store)
    pid = worker.start(gid, store, FAKE.format("blocking"))
    wait_for(lambda: statuses(store, gid)[:2] == ["done", "running"], what="run 1 running")
    # the worker is `python -m pfml_core lab-worker GRID ...`; cancel kills only such a process
    assert worker._is_worker(pid) and not worker._is_worker(os.getpid())
    worker.cancel(gid, store)
    wait_for(lambda: not pid_alive(pid), what="worker exit")
    assert statuses(store, gid) == ["done", "cancelled", "cancelled"]
    assert store.grid(gid)["status"] == "cancelled"
    assert store.runs(gid)[0]["metrics"]["R@1"] == expected_r1(store.runs(gid)[0]["config"])


@pytest.mark.slow  # two worker processes
def test_killed_worker_keeps_finished_runs_and_fails_its_own(store):
    gid = noise_grid(store)
    pid = worker.start(gid, store, FAKE.format("blocking"))
    wait_for(lambda: statuses(store, gid)[:2] == ["done", "running"], what="run 1 running")
    done_before = store.runs(gid)[0]
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="worker death")
    assert store.reap_stale() == 0  # its heartbeat is not stale yet
    store._conn.execute("UPDATE grids SET heartbeat=heartbeat-60 WHERE id=?", (gid,))
    assert store.reap_stale() == 1
    runs = store.runs(gid)
    assert [r["status"] for r in runs] == ["done", "failed", "queued"]
    assert runs[0] == done_before
    assert "died" in runs[1]["error"] and store.grid(gid)["status"] == "failed"
    # resume picks the grid up again: the failed and the queued run both finish
    worker.resume(gid, store, FAKE.format("quick"))
    wait_for(lambda: store.grid(gid)["status"] == "done", what="resumed grid done")
    assert statuses(store, gid) == ["done"] * 3 and store.runs(gid)[0] == done_before


@pytest.mark.slow  # two worker processes
def test_two_grids_at_once_stay_apart(store):
    a = noise_grid(store, seeds=range(12))
    spec, runs = lab.sweep_grid("digits", [1, 2, 3, 4], [0.1, 0.2, 0.3], seeds=[5], base=TINY)
    b = store.create_grid("sweep", spec, runs)
    worker.start(a, store, FAKE.format("quick"))
    worker.start(b, store, FAKE.format("quick"))
    wait_for(lambda: {store.grid(a)["status"], store.grid(b)["status"]} == {"done"}, what="both done")
    for gid, n in ((a, 12), (b, 12)):
        runs = store.runs(gid)
        assert len(runs) == n and all(r["status"] == "done" for r in runs)
        assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs]


def test_failing_run_is_marked_failed_and_the_grid_goes_on(store):
    gid = noise_grid(store)
    from tests.lab_fakes import failing
    assert worker.run_grid(gid, store, failing) == "failed"
    runs = store.runs(gid)
    assert [r["status"] for r in runs] == ["done", "failed", "done"]
    assert "boom: fake training failure" in runs[1]["error"] and runs[1]["metrics"] is None


@pytest.mark.slow
def test_real_engine_grid_records_metrics_and_flip_measurements(store):
    gid = noise_grid(store, seeds=(0,), losses=("pfml", "triplet"), rates=(0.3,))
    assert worker.run_grid(gid, store) == "done"
    pfml, triplet = [r["metrics"] for r in store.runs(gid)]
    for m in (pfml, triplet):
        assert 0.0 <= m["R@1"] <= m["R@2"] <= 1.0
        assert m["n_flipped"] > 0 and 0.0 <= m["flip_closer_true"] <= 1.0
        assert m["flip_ratio"] == pytest.approx(m["flip_d_labelled"] / m["flip_d_true"])
        assert len(m["R@1 curve"]) == 2 and m["seconds"] > 0
    assert pfml["W2"] > 0 and "W2" not in triplet  # triplet has no proxies


def test_bad_train_fn_reference():
    with pytest.raises(ValueError, match="train_fn"):
        worker.load_train_fn("no_colon_here")
