"""Background workers for lab grids: `python -m pfml_core lab-worker GRID_ID` claims the grid's
queued runs one at a time, trains each, writes its result to the store as soon as it ends
(metrics, memorization curves and, in a table of their own, the run's ranked suspect labels),
reports each finished epoch (for the ETA), and stops when the grid is cancelled. A run that
raises is marked failed and the worker goes on; a worker that is killed leaves its run
'running' until Store.reap_stale() sees it dead."""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from pfml_core.lab.runtime import dataset, train_class_names
from pfml_core.lab.measure import run_metrics, run_suspects
from pfml_core.lab.store import Store, pid_alive, runs_dir


def train_run(config: dict, should_stop, on_epoch=None):
    """The default train function: the training engine on a TrainConfig dict, on the data
    this process already loaded. On the CPU the lab's MLP trains on one thread: its steps
    are too small to share, and a second thread only contends with other work on the cores."""
    import torch

    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.training.engine import TrainConfig, resolve_device, train
    from pfml_core.training.models import resolve

    cfg = TrainConfig.from_dict(config).validate()
    data = None if cfg.data in BENCHMARKS else dataset(cfg.data)
    if (data is not None and resolve_device(cfg.device).type == "cpu"
            and resolve(cfg.model, data.X.shape[1:]) == "mlp"):
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)  # numpy's BLAS and scikit-learn's OpenMP (evaluation) too
    return train(cfg, callback=on_epoch, should_stop=should_stop, dataset=data)


def load_train_fn(ref: str | None):
    """'package.module:function' -> that function (tests inject fakes); None -> train_run."""
    if not ref:
        return train_run
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"train_fn must look like 'package.module:function', got {ref!r}")
    return getattr(importlib.import_module(module), name)


class StopPoll:
    """should_stop() for the engine: True once the run is no longer 'running' in the store
    (cancelled). Reads the store at most every `every` seconds."""

    def __init__(self, store: Store, run_id: int, every: float = 0.5):
        self.store, self.run_id, self.every = store, run_id, every
        self._last, self.stopped = 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now - self._last >= self.every:
            self._last = now
            self.stopped = self.store.run_status(self.run_id) != "running"
        return self.stopped


def _record(store: Store, run: dict, result, seconds: float) -> None:
    """The finished run's metrics and, when it recorded label margins, its suspects."""
    metrics = run_metrics(result, seconds)
    summary, samples = (run_suspects(result, train_class_names(run["config"]))
                        if hasattr(result, "config") else ({}, None))
    if samples is not None:
        store.put_samples(run["id"], samples.to_dict(orient="list"))
    store.end_run(run["id"], "done", metrics={**metrics, **summary})


def run_one(store: Store, run: dict, train_fn) -> str:
    """Train one claimed run and record its outcome; returns the status written."""
    stop = StopPoll(store, run["id"])
    t0 = time.perf_counter()

    def on_epoch(snap) -> None:
        store.set_progress(run["id"], snap.epoch)

    try:
        result = train_fn(run["config"], should_stop=stop, on_epoch=on_epoch)
        if stop.stopped:
            return "cancelled"
        _record(store, run, result, time.perf_counter() - t0)
        return "done"
    except KeyboardInterrupt:
        store.end_run(run["id"], "cancelled", error="interrupted (Ctrl-C)")
        raise
    except Exception as exc:  # noqa: BLE001  (any failure of one run is that run's result)
        tb = "".join(traceback.format_exception(exc))[-4000:]
        store.end_run(run["id"], "failed", error=f"{type(exc).__name__}: {exc}\n{tb}")
        return "failed"


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
    parallel = int(store.grid(grid_id)["spec"].get("parallel", 1))
    try:
        if parallel > 1:
            _run_parallel(grid_id, store, train_fn, on_run, parallel)
        while store.grid(grid_id)["status"] != "cancelled":
            run = store.claim_next(grid_id, pid)
            if run is None:
                break
            status = run_one(store, run, train_fn)
            if on_run:
                on_run(run, status)
    except KeyboardInterrupt:
        store.cancel_grid(grid_id)
        raise
    return store.finalize_grid(grid_id)


def _share_cores(n: int) -> None:
    """A pool process's share of the CPU cores for torch (n processes run side by side)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // n))


def _pool_run(store_path: str, run: dict, train_ref: str) -> str:
    """One run in a pool process (a fresh interpreter, its own store connection)."""
    store = Store(store_path)
    try:
        return run_one(store, run, load_train_fn(train_ref))
    finally:
        store.close()


def _run_parallel(grid_id: int, store: Store, train_fn, on_run, n: int) -> None:
    """Keep n runs in flight in a pool of n spawned processes (in this process group, so
    cancel() stops them with the worker); claim a run only when a process is free."""
    import concurrent.futures as cf
    import multiprocessing

    ref = f"{train_fn.__module__}:{train_fn.__qualname__}"
    busy: dict = {}
    with cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_share_cores, initargs=(n,)) as pool:
        while True:
            while len(busy) < n and store.grid(grid_id)["status"] != "cancelled":
                run = store.claim_next(grid_id, os.getpid())
                if run is None:
                    break
                try:
                    busy[pool.submit(_pool_run, str(store.path), run, ref)] = run
                except cf.process.BrokenProcessPool:  # a process died: the rest run here
                    store.end_run(run["id"], "failed", error="the process pool broke")
                    n = 0
            if not busy:
                return
            for f in cf.wait(busy, return_when=cf.FIRST_COMPLETED).done:
                run = busy.pop(f)
                try:
                    status = f.result()
                except Exception as exc:  # noqa: BLE001  (the pool process died)
                    store.end_run(run["id"], "failed", error=f"pool process died: {exc}")
                    status = "failed"
                if on_run:
                    on_run(run, status)


def start(grid_id: int, store: Store | None = None, train_fn: str | None = None) -> int:
    """Start a detached worker process (its own session, so it outlives the page or CLI that
    started it and can be stopped as a group); returns its pid."""
    store = store or Store()
    log_dir = runs_dir() / "lab_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pfml_core", "lab-worker", str(grid_id), "--store", str(store.path)]
    if train_fn:
        cmd += ["--train-fn", train_fn]
    with open(log_dir / f"grid_{grid_id}.log", "ab") as log:
        proc = subprocess.Popen(cmd, cwd=os.getcwd(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    store.set_grid(grid_id, pid=proc.pid)
    return proc.pid


def _is_worker(pid: int) -> bool:
    """Whether pid is a worker that start() launched (`... -m pfml_core lab-worker ...`)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return b"pfml_core" in args and b"lab-worker" in args
    except OSError:
        return pid_alive(pid) and os.getpgid(pid) == pid


def cancel(grid_id: int, store: Store | None = None) -> None:
    """Mark the grid cancelled, then terminate its worker's process group (if a worker runs it;
    a foreground CLI run notices the cancellation between batches instead)."""
    store = store or Store()
    pid = store.grid(grid_id)["pid"]
    store.cancel_grid(grid_id)
    if pid and pid_alive(pid) and _is_worker(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def resume(grid_id: int, store: Store | None = None, train_fn: str | None = None) -> int:
    """Requeue a stopped grid's failed/cancelled runs and start a fresh worker on it."""
    store = store or Store()
    g = store.grid(grid_id)
    if g["status"] in ("queued", "running") and pid_alive(g["pid"]):
        raise ValueError(f"grid {grid_id} is still {g['status']} (worker pid {g['pid']})")
    store.requeue(grid_id)
    return start(grid_id, store, train_fn)
