"""Liveness by heartbeat and the launch queue (pfml_core.lab.store_queue, worker.submit /
dispatch / cancel / resume): a stale heartbeat is a dead worker even when its pid now
belongs to a live process, a fresh one is a live worker; stores written before heartbeats
open and migrate; at most PFML_MAX_LAB_WORKERS grids run, the rest wait in order, a killed
worker's slot frees when its heartbeat goes stale; only a grid's owner cancels it."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from pfml_core.lab import grid as lab
from pfml_core.lab import store_queue, worker
from pfml_core.lab.store import Store, pid_alive
from pfml_core.lab.store_queue import alive, max_workers
from tests.lab_fakes import expected_r1, quick
from tests.lab_helpers import wait_for

QUICK = "tests.lab_fakes:quick"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("PFML_MAX_LAB_WORKERS", raising=False)
    s = Store()
    yield s
    s.close()


def grid(store, seeds=(0, 1, 2), owner=None) -> int:
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], list(seeds), base={"epochs": 1})
    return store.create_grid("noise", spec, runs, owner=owner)


def age(store, gid, seconds=60.0) -> None:
    """The grid's worker stopped beating `seconds` ago."""
    store._conn.execute("UPDATE grids SET heartbeat=? WHERE id=?", (time.time() - seconds, gid))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_heartbeat_with_a_reused_pid_is_dead_and_resumes(store):
    gid = grid(store)
    me = os.getpid()  # the "dead" worker's pid now belongs to a live process: this one
    assert store.mark_running(gid, me)
    store.end_run(store.claim_next(gid, me)["id"], "done", {"R@1": 0.5})
    store.claim_next(gid, me)
    age(store, gid)
    assert pid_alive(me) and not alive(store.grid(gid))
    assert store.reap_stale() == 1
    assert [r["status"] for r in store.runs(gid)] == ["done", "failed", "queued"]
    assert "no heartbeat" in store.runs(gid)[1]["error"] and store.grid(gid)["status"] == "failed"
    assert worker.reopen(gid, store) == 2  # Resume is not refused
    assert worker.run_grid(gid, store, quick) == "done"
    runs = store.runs(gid)
    assert runs[0]["metrics"] == {"R@1": 0.5}
    assert [r["metrics"]["R@1"] for r in runs[1:]] == [expected_r1(r["config"]) for r in runs[1:]]


def test_fresh_heartbeat_is_running_whatever_the_pid(store):
    gid = grid(store)
    assert store.mark_running(gid, dead_pid())  # a dead pid, but the heartbeat is fresh
    assert alive(store.grid(gid)) and store.reap_stale() == 0
    with pytest.raises(ValueError, match=f"grid {gid} is still running"):
        worker.resume(gid, store)
    assert store.grid(gid)["status"] == "running"
    age(store, gid, store_queue.HEARTBEAT_TIMEOUT - 5)
    assert alive(store.grid(gid))
    age(store, gid, store_queue.HEARTBEAT_TIMEOUT + 5)
    assert not alive(store.grid(gid))


def test_worker_beats_while_it_runs(store, monkeypatch):
    monkeypatch.setattr(store_queue, "HEARTBEAT_EVERY", 0.05)
    gid = grid(store, seeds=(0,))
    beats = []

    def slow(config, should_stop=None, on_epoch=None):
        for _ in range(12):
            time.sleep(0.05)
            beats.append(store.grid(gid)["heartbeat"])
        return quick(config)

    assert worker.run_grid(gid, store, slow) == "done"
    assert len(set(beats)) >= 3 and beats == sorted(beats)


def test_a_store_from_before_heartbeats_opens_and_is_reaped(tmp_path):
    path = tmp_path / "lab.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
      CREATE TABLE grids (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT,
        spec TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, pid INTEGER, finished REAL);
      CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, grid_id INTEGER NOT NULL,
        idx INTEGER NOT NULL, params TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
        metrics TEXT, started REAL, finished REAL, error TEXT, worker_pid INTEGER);
      INSERT INTO grids VALUES (1, 'noise', NULL, '{}', 'running', 0, 1, NULL);
      INSERT INTO runs VALUES (1, 1, 0, '{}', '{"seed": 0}', 'done', '{"R@1": 0.5}', 0, 1, NULL, 1);
      INSERT INTO runs VALUES (2, 1, 1, '{}', '{"seed": 1}', 'running', NULL, 1, NULL, NULL, 1);""")
    old.commit()
    old.close()
    s = Store(path)  # pid 1 (init) is alive: the old /proc check kept this grid running forever
    cols = {r[1] for r in s._conn.execute("PRAGMA table_info(grids)")}
    assert {"heartbeat", "owner", "queued_at"} <= cols
    assert s.grid(1)["heartbeat"] is None and not alive(s.grid(1))
    assert s.reap_stale() == 1 and s.grid(1)["status"] == "failed"
    assert worker.reopen(1, s) == 1 and [r["status"] for r in s.runs(1)] == ["done", "queued"]


def test_the_queue_in_the_store(store):
    a, b, c = grid(store), grid(store), grid(store)
    for g in (a, b, c):
        store.submit(g)
    assert [store.position(g) for g in (a, b, c)] == [1, 2, 3]
    assert store.reserve(1) == a and store.reserve(1) is None  # a holds the one slot
    assert store.grid(a)["status"] == "running" and alive(store.grid(a))  # while its worker starts
    assert [store.position(g) for g in (a, b, c)] == [None, 1, 2]
    assert store.mark_running(a, dead_pid())
    age(store, a)  # a's worker was killed: its slot frees once the heartbeat is stale
    assert store.reserve(1) == b and store.position(c) == 1
    assert store.reserve(1) is None  # b holds it now (starting: alive before its first beat)
    assert store.reserve(2) == c  # an operator with two slots
    assert store.reap_stale() == 0 and store.grid(a)["status"] == "failed"


def test_max_workers_setting(monkeypatch):
    monkeypatch.delenv("PFML_MAX_LAB_WORKERS", raising=False)
    assert max_workers() == 1
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", " 3 ")
    assert max_workers() == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("PFML_MAX_LAB_WORKERS", bad)
        with pytest.raises(ValueError, match="PFML_MAX_LAB_WORKERS"):
            max_workers()


def test_only_the_owner_cancels(store):
    gid = grid(store, owner="alice")
    assert store.mark_running(gid, dead_pid())
    with pytest.raises(PermissionError, match="another session"):
        worker.cancel(gid, store, owner="bob")
    assert store.grid(gid)["status"] == "running"
    assert {r["status"] for r in store.runs(gid)} == {"queued"}
    worker.cancel(gid, store, owner="alice")
    assert store.grid(gid)["status"] == "cancelled"
    assert {r["status"] for r in store.runs(gid)} == {"cancelled"}
    other = grid(store, owner="alice")
    worker.cancel(other, store)  # no token: the CLI / library (the operator) may cancel any
    assert store.grid(other)["status"] == "cancelled"
    worker.reopen(other, store)  # a resumer's token makes it the owner; none keeps the old one
    store.submit(other, "bob")
    assert store.grid(other)["owner"] == "bob"


@pytest.mark.slow  # two worker processes, one after the other
def test_cap_of_one_queues_the_second_grid_until_the_first_ends(store, monkeypatch):
    monkeypatch.setenv("PFML_MAX_LAB_WORKERS", "1")
    a, b = grid(store, owner="alice"), grid(store, seeds=(3, 4), owner="bob")
    assert worker.submit(a, store, QUICK, owner="alice") is None  # started
    assert worker.submit(b, store, QUICK, owner="bob") == 1
    assert store.grid(b)["status"] == "queued" and store.position(b) == 1
    assert worker.dispatch(store, QUICK) == []  # the slot is a's
    wait_for(lambda: store.grid(b)["status"] == "done", 120, "second grid done")
    ra, rb = store.runs(a), store.runs(b)
    assert store.grid(a)["status"] == "done" and {r["status"] for r in rb} == {"done"}
    assert min(r["started"] for r in rb) >= max(r["finished"] for r in ra)  # one at a time
    assert store.grid(b)["pid"] != store.grid(a)["pid"]
    wait_for(lambda: not pid_alive(store.grid(b)["pid"]), 30, "second worker exit")
