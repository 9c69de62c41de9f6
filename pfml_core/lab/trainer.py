"""Training a grid's runs inside a worker: the default train function, one claimed run
trained and recorded (metrics, memorization curves and, in a table of their own, the run's
ranked suspect labels; each finished epoch reported for the ETA; a cancel noticed between
batches), and a pool of spawned processes for a grid that trains N runs at a time. A run
that raises is marked failed and the worker goes on; a storage fault (a full disk) raises
data.faults.Fault instead, which stops the grid (worker.halt records it)."""
from __future__ import annotations

import contextlib
import importlib
import os
import time
import traceback
from pathlib import Path

from pfml_core.data import faults
from pfml_core.lab.measure import run_metrics, run_suspects
from pfml_core.lab.runtime import dataset, train_class_names
from pfml_core.lab.store import Store


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
        if (cause := faults.describe(exc)) is not None:
            raise faults.Fault(cause) from None  # every later run would fail the same way
        tb = "".join(traceback.format_exception(exc))[-4000:]
        store.end_run(run["id"], "failed", error=f"{type(exc).__name__}: {exc}\n{tb}")
        return "failed"


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


def run_parallel(grid_id: int, store: Store, train_fn, on_run, n: int, keep_going) -> None:
    """Keep n runs in flight in a pool of n spawned processes (in this process group, so
    cancel() stops them with the worker); claim a run only when a process is free and
    keep_going() (the grid is still this worker's)."""
    import concurrent.futures as cf
    import multiprocessing

    ref = f"{train_fn.__module__}:{train_fn.__qualname__}"
    busy: dict = {}
    with cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_share_cores, initargs=(n,)) as pool:
        while True:
            while len(busy) < n and keep_going():
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
                except faults.Fault as exc:  # a full disk: stop the other runs too
                    halt(store, grid_id, str(exc))
                    raise
                except Exception as exc:  # noqa: BLE001  (the pool process died)
                    store.end_run(run["id"], "failed", error=f"pool process died: {exc}")
                    status = "failed"
                if on_run:
                    on_run(run, status)


SPARE_BYTES = 256 * 1024  # room for the few writes that record a fault


def _spare(path: Path) -> Path:
    return path.with_name(path.name + ".spare")


def keep_spare(path: Path) -> None:
    """A spare file beside the store while space allows (freed by halt())."""
    spare = _spare(Path(path))
    if not spare.exists():
        try:
            spare.write_bytes(bytes(SPARE_BYTES))
        except OSError:  # no space even for that: halt() then has nothing to free
            with contextlib.suppress(OSError):
                spare.unlink()


def halt(store: Store, grid_id: int, error: str, tries: int = 3) -> None:
    """Record a storage fault at once: the grid's running runs failed with `error`, the grid
    failed (resumable). The spare file is freed first, so this works on a full disk."""
    with contextlib.suppress(OSError):
        _spare(store.path).unlink()
    for i in range(tries):
        try:
            store.halt(grid_id, error)
            return
        except faults.Fault:
            time.sleep(0.5 * (i + 1))
