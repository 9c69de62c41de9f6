"""Background workers for lab grids: `python -m pfml_core lab-worker GRID_ID` claims the grid's
queued runs one at a time (pfml_core.lab.trainer trains and records each), beats the grid's
heartbeat from a thread, and stops when the grid is cancelled or is no longer its own. A killed
worker stops beating: once its heartbeat is stale, Store.reap_stale() marks its run failed and
the grid can be resumed. On a full disk the worker stops at once: a spare file beside the store
is freed so its run can be marked failed."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from pfml_core.data import faults
from pfml_core.lab import store_queue
from pfml_core.lab.store import Store, pid_alive, runs_dir
from pfml_core.lab.store_queue import alive, max_workers
from pfml_core.lab.trainer import StopPoll, halt, keep_spare, load_train_fn, run_one, run_parallel, train_run

__all__ = ["Heartbeat", "StopPoll", "alive", "cancel", "dispatch", "load_train_fn",
           "max_workers", "reopen", "resume", "run_grid", "run_one", "start", "submit",
           "train_run"]


class Heartbeat:
    """A thread (its own store connection) that beats the grid's heartbeat every
    store_queue.HEARTBEAT_EVERY seconds while the `with` block runs."""

    def __init__(self, path: Path, grid_id: int, pid: int):
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(str(path), grid_id, pid),
                                        name=f"lab-heartbeat-{grid_id}", daemon=True)

    def _beat(self, path: str, grid_id: int, pid: int) -> None:
        store = Store(path)
        try:
            while not self._done.wait(store_queue.HEARTBEAT_EVERY):
                try:
                    if not store.beat(grid_id, pid):
                        return  # cancelled, finished or reaped: no longer this worker's
                except (sqlite3.OperationalError, faults.Fault):  # locked, or no space: next beat
                    continue
        finally:
            store.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def run_grid(grid_id: int, store: Store | None = None, train_fn=None, on_run=None) -> str:
    """Work through a grid (the CLI's foreground mode and the worker's body); returns the
    grid's final status. on_run(run, status) is called after each run. A grid whose spec asks
    for "parallel": N > 1 trains N runs at a time in spawned processes (train_fn must then be
    a module-level function); otherwise one at a time in this process."""
    store = store or Store()
    train_fn = train_fn or train_run
    pid = os.getpid()
    if not store.mark_running(grid_id, pid):
        return store.grid(grid_id)["status"]

    def mine() -> bool:  # not cancelled, not reaped (and perhaps resumed by another worker)
        g = store.grid(grid_id)
        return g["status"] == "running" and g["pid"] == pid

    parallel = int(store.grid(grid_id)["spec"].get("parallel", 1))
    keep_spare(store.path)
    with Heartbeat(store.path, grid_id, pid):
        try:
            if parallel > 1:
                run_parallel(grid_id, store, train_fn, on_run, parallel, mine)
            while mine():
                run = store.claim_next(grid_id, pid)
                if run is None:
                    break
                status = run_one(store, run, train_fn)
                if on_run:
                    on_run(run, status)
        except KeyboardInterrupt:
            store.cancel_grid(grid_id)
            raise
        except faults.Fault as exc:
            halt(store, grid_id, str(exc))
            raise
    return store.finalize_grid(grid_id)



def start(grid_id: int, store: Store | None = None, train_fn: str | None = None) -> int:
    """Start a detached worker process for the grid now (its own session, so it outlives the
    page or CLI that started it and can be stopped as a group); returns its pid. This is no
    queue: submit() is what the app and the CLI use."""
    store = store or Store()
    log_dir = runs_dir() / "lab_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pfml_core", "lab-worker", str(grid_id), "--store", str(store.path)]
    if train_fn:
        cmd += ["--train-fn", train_fn]
    with open(log_dir / f"grid_{grid_id}.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=os.getcwd(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    store.launched(grid_id, proc.pid)
    return proc.pid


def dispatch(store: Store | None = None, train_fn: str | None = None) -> list[int]:
    """Reap grids whose worker died, then start workers for the queue while fewer than
    max_workers() grids run (PFML_MAX_LAB_WORKERS, default 1; see pfml_core.lab.store_queue);
    returns the ids of the grids started. Runs when a grid is submitted, cancelled or resumed,
    when a worker ends (before it exits) and whenever the app looks at the grids, so a killed
    worker's slot is taken by the next grid once its heartbeat is stale."""
    store = store or Store()
    store.reap_stale()
    started, cap = [], max_workers()
    while (gid := store.reserve(cap)) is not None:
        try:
            start(gid, store, train_fn)  # the module's start (tests put a fake trainer in)
        except OSError as exc:
            store.cancel_grid(gid)
            store.set_grid(gid, status="failed")
            print(f"grid {gid}: the worker could not start ({exc})", file=sys.stderr)
        started.append(gid)
    return started


def submit(grid_id: int, store: Store | None = None, train_fn: str | None = None,
           owner: str | None = None) -> int | None:
    """Queue a grid for a worker (owner: the token of the session that may cancel it) and
    start what the free slots allow; its queue position, or None once it started."""
    store = store or Store()
    store.submit(grid_id, owner)
    dispatch(store, train_fn)
    return store.position(grid_id)


def _is_worker(pid: int, grid_id: int | None = None) -> bool:
    """Whether pid is a worker that start() launched (`... -m pfml_core lab-worker GRID ...`),
    for grid_id when given."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid) and os.getpgid(pid) == pid
    if b"pfml_core" not in args or b"lab-worker" not in args:
        return False
    i = args.index(b"lab-worker") + 1
    return grid_id is None or (i < len(args) and args[i] == str(grid_id).encode())


def cancel(grid_id: int, store: Store | None = None, owner: str | None = None) -> None:
    """Mark the grid cancelled, then terminate its worker's process group (if a live worker
    runs it; a foreground CLI run notices the cancellation between batches instead), and
    start the next queued grid. With an owner token (the session that started the grid),
    only a grid of that owner: PermissionError otherwise; the operator's `lab-cancel` passes
    none."""
    store = store or Store()
    g = store.grid(grid_id)
    if not store.cancel_grid(grid_id, owner):
        raise PermissionError(f"grid {grid_id} was started by another session: only that "
                              "session can cancel it")
    pid = g["pid"]
    if pid and alive(g) and _is_worker(pid, grid_id):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    dispatch(store)


def reopen(grid_id: int, store: Store, owner: str | None = None) -> int:
    """Requeue a stopped grid's failed and cancelled runs (ValueError while its worker is
    alive, while it waits in the queue, when no run is left, or past the resuming owner's
    budget); returns how many runs are left to run."""
    store.reap_stale()
    g = store.grid(grid_id)
    if alive(g):
        beat = f"heartbeat {max(time.time() - g['heartbeat'], 0):.0f} s ago"
        raise ValueError(f"grid {grid_id} is still running (worker pid {g['pid'] or 'starting'}, "
                         f"{beat}): cancel it or let it finish")
    if (pos := store.position(grid_id)) is not None:
        raise ValueError(f"grid {grid_id} is queued (position {pos}): it starts when a worker "
                         "slot frees")
    left = sum(r["status"] in ("queued", "failed", "cancelled") for r in store.runs(grid_id))
    if not left:
        raise ValueError(f"grid {grid_id} is {g['status']}: no run is left to resume")
    store.requeue(grid_id, owner)
    return left


def resume(grid_id: int, store: Store | None = None, train_fn: str | None = None,
           owner: str | None = None) -> int | None:
    """Requeue a stopped grid's failed/cancelled runs and queue it for a worker (owner: the
    resuming session's token, which may then cancel it); its queue position, or None once
    started. ValueError while its worker is alive (a live heartbeat, not a live pid)."""
    store = store or Store()
    reopen(grid_id, store, owner)
    return submit(grid_id, store, train_fn, owner)
