"""pfml_core.lab.store: atomic claims under concurrency, outcomes, cancellation, dead-worker
reaping (by a stale heartbeat), and a store that survives a restart (a new connection in a
new process). Heartbeats, the launch queue and owners: tests/lab/test_lab_queue.py."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from pfml_core.lab.store import Store, pid_alive, runs_dir


def _grid(store, n=3, kind="noise"):
    runs = [({"seed": i}, {"seed": i, "noise": 0.0}) for i in range(n)]
    return store.create_grid(kind, {"n": n}, runs)


def _claim_all(path, gid):
    s = Store(path)
    got = []
    while (run := s.claim_next(gid, 4242)) is not None:
        got.append(run["id"])
    return got


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_runs_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "x"))
    assert runs_dir() == tmp_path / "x"
    assert Store().path == tmp_path / "x" / "lab.sqlite"


@pytest.mark.slow  # a fresh interpreter imports pfml_core
def test_create_and_read_back_in_another_process(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    gid = _grid(s, 4)
    assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    code = ("import sys, json; from pfml_core.lab.store import Store; s = Store(sys.argv[1]); "
            "print(json.dumps([[r['idx'], r['status'], r['params']['seed']] for r in s.runs(int(sys.argv[2]))]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "lab.sqlite"), str(gid)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[[0, "queued", 0], [1, "queued", 1], [2, "queued", 2], [3, "queued", 3]]'


@pytest.mark.slow  # three spawned processes
def test_concurrent_claims_never_share_a_run(tmp_path):
    path = tmp_path / "lab.sqlite"
    s = Store(path)
    gid = _grid(s, 40)
    s.close()
    # spawn, not fork: an SQLite connection must never cross a fork (workers are Popen'd too)
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as ex:
        parts = list(ex.map(_claim_all, [path] * 3, [gid] * 3))
    claimed = [i for p in parts for i in p]
    assert sorted(claimed) == sorted(r["id"] for r in Store(path).runs(gid))
    assert len(set(claimed)) == 40


def test_end_run_only_moves_running_runs(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    gid = _grid(s, 2)
    run = s.claim_next(gid, 1)
    assert run["idx"] == 0 and s.run_status(run["id"]) == "running"
    assert s.end_run(run["id"], "done", {"R@1": 0.75})
    assert not s.end_run(run["id"], "failed", error="late")  # already done: unchanged
    assert s.runs(gid)[0]["metrics"] == {"R@1": 0.75} and s.runs(gid)[0]["status"] == "done"
    with pytest.raises(ValueError, match="status"):
        s.end_run(run["id"], "queued")


def test_cancel_marks_unfinished_runs_and_grid(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    gid = _grid(s, 3)
    s.end_run(s.claim_next(gid, 1)["id"], "done", {"R@1": 1.0})
    s.claim_next(gid, 1)
    s.cancel_grid(gid)
    assert [r["status"] for r in s.runs(gid)] == ["done", "cancelled", "cancelled"]
    assert s.grid(gid)["status"] == "cancelled" and s.grid(gid)["finished"] is not None
    assert not s.mark_running(gid, 1)  # a cancelled grid is not picked up again


def _stale(s, gid, seconds=60.0):
    """Age the grid's heartbeat past the timeout (its worker stopped beating)."""
    s._conn.execute("UPDATE grids SET heartbeat=heartbeat-? WHERE id=?", (seconds, gid))


def test_reap_marks_dead_workers_run_failed_and_keeps_finished(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    gid, dead = _grid(s, 3), _dead_pid()
    assert not pid_alive(dead)
    assert s.mark_running(gid, dead)
    s.end_run(s.claim_next(gid, dead)["id"], "done", {"R@1": 0.5})
    s.claim_next(gid, dead)
    assert s.reap_stale() == 0  # a fresh heartbeat: alive, whatever its pid
    _stale(s, gid)
    assert s.reap_stale() == 1
    runs = s.runs(gid)
    assert [r["status"] for r in runs] == ["done", "failed", "queued"]
    assert runs[0]["metrics"] == {"R@1": 0.5} and str(dead) in runs[1]["error"]
    assert s.grid(gid)["status"] == "failed"
    assert s.requeue(gid) == 1 and [r["status"] for r in s.runs(gid)] == ["done", "queued", "queued"]


def test_live_worker_is_not_reaped(tmp_path):
    import os
    s = Store(tmp_path / "lab.sqlite")
    gid = _grid(s, 1)
    s.mark_running(gid, os.getpid())
    s.claim_next(gid, os.getpid())
    assert s.reap_stale() == 0 and s.runs(gid)[0]["status"] == "running"


def test_finalize_and_listing(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    a, b = _grid(s, 2), _grid(s, 1, kind="sweep")
    for _ in range(2):
        s.end_run(s.claim_next(a, 1)["id"], "done", {})
    assert s.finalize_grid(a) == "done"
    assert [g["id"] for g in s.grids()] == [b, a]
    assert [g["id"] for g in s.grids("sweep")] == [b]
    assert s.grids("noise")[0]["counts"] == {"done": 2}


@pytest.mark.parametrize("kind, runs, match", [("other", [({}, {})], "kind"), ("noise", [], "runs")])
def test_bad_grids_are_refused(tmp_path, kind, runs, match):
    with pytest.raises(ValueError, match=match):
        Store(tmp_path / "lab.sqlite").create_grid(kind, {}, runs)
    with pytest.raises(ValueError, match="grid_id"):
        Store(tmp_path / "lab.sqlite").grid(99)
