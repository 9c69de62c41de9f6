"""A training run for the app, in its own process (job_process), so nothing the server does
can starve it: the page starts it, polls it cheaply and stops it. Finished epochs arrive over
a channel (and are written to the run folder); each gets its PCA map at once, here, and its
UMAP map from a warm map worker (eval.MapService), warm-started from the previous epoch's.

Threads in the server process only wait: one talks to the training process, one feeds the
map worker. What a page reads (snapshots, maps) only grows."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from pfml_core.data import faults
from pfml_core.eval import MapService, align, child_process, pca_layout, snapshot_points
from pfml_core.training import run_folder, slots
from pfml_core.training.config import TrainConfig
from pfml_core.training.engine import resolve_device
from pfml_core.training.snapshot import slim


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def device_label(device: torch.device, threads: int) -> str:
    """'GPU: <name>', 'Apple GPU (MPS)' or 'CPU, N threads'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


class TrainJob:
    """start() / stop() / touch() (the page's heartbeat) / close(); read snapshots, pca and
    layouts (epoch -> (N, 2) map of snapshot_points), meta, map_view(), progress, device,
    error, done. heartbeat_s: stop when touch() was not called for that long.
    threads: torch threads for training (default: every core); with every core, each epoch
    waits for the previous one's map, pace_s at most (job_process.main says why)."""
    pace_s = 5.0

    def __init__(self, config: TrainConfig, out_dir: Path | None = None, map_method: str = "umap",
                 dataset=None, maps: MapService | None = None, heartbeat_s: float | None = None,
                 threads: int | None = None):
        if map_method not in ("umap", "pca"):
            raise ValueError(f"map_method must be 'umap' or 'pca', got {map_method!r}")
        self.config, self.out_dir, self.map_method = config, out_dir, map_method
        self.dataset, self.heartbeat_s = dataset, heartbeat_s
        self.threads = threads or cpu_cores()
        self.snapshots: list = []  # EpochSnapshot, in epoch order
        self.pca: dict[int, np.ndarray] = {}
        self.layouts: dict[int, np.ndarray] = {}  # UMAP
        self.meta: dict | None = None
        self.mapped_at: dict[int, float] = {}    # epoch -> time.time() its UMAP was ready
        self.progress = (0, 0)  # (batch, batches) within the running epoch
        self.device: str | None = None
        self.error: str | None = None
        self.map_error: str | None = None
        self.done, self.stopped = False, False
        self._train = True  # False for a reopened run: only maps to compute
        self._own_maps = map_method == "umap" and maps is None
        self._maps = MapService() if self._own_maps else maps
        self._points: dict[int, np.ndarray] = {}  # epochs waiting for their UMAP
        self._cond = threading.Condition()
        self._stop, self._closed = threading.Event(), threading.Event()
        self._touched = time.time()
        self._threads: list[threading.Thread] = []
        self._conn, self._send_lock = None, threading.Lock()  # to the training process
        self.slot: slots.Slot | None = None  # the runs folder's training slot it holds

    @staticmethod
    def claim_slot(cap: int) -> slots.Slot | None:
        """One of the runs folder's `cap` training slots (PFML_MAX_TRAIN_JOBS), shared by every
        server and process using that folder; None when all are held. Give it to the job
        (job.slot): it is freed when the training process ends."""
        with faults.said("the runs folder could not be written"):
            return slots.acquire(run_folder.runs_dir(), "train", cap)

    @staticmethod
    def device_for(config: TrainConfig) -> str:
        """Where a job with this config would train: 'GPU: <name>' or 'CPU, N threads'."""
        return device_label(resolve_device(config.device), cpu_cores())

    @classmethod
    def from_run(cls, path, map_method: str = "umap", maps: MapService | None = None,
                 heartbeat_s: float | None = None) -> TrainJob:
        """A finished run reopened from its folder: only its maps are computed."""
        run = run_folder.load_run(path)
        job = cls(run.config, Path(path), map_method, maps=maps, heartbeat_s=heartbeat_s)
        for snap in run_folder.snapshots(run):
            job._add(snap)
        job._train, job.done = False, True
        return job

    def start(self) -> TrainJob:
        if self._train:
            self._threads.append(threading.Thread(target=self._run, daemon=True, name="pfml-train"))
        if self.map_method == "umap":
            self._maps.start()
            self._threads.append(threading.Thread(target=self._map_loop, daemon=True,
                                                  name="pfml-train-maps"))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop training after the current batch (finished epochs are kept)."""
        self._stop.set()

    def close(self) -> None:
        """Stop training and mapping; the job's own map worker (if any) ends."""
        self.stop()
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._own_maps:
            self._maps.close()

    def touch(self) -> None:  # the page is still looking (see heartbeat_s)
        self._touched = time.time()

    @property
    def running(self) -> bool:
        return not self.done

    @property
    def maps_pending(self) -> bool:
        """UMAP maps are still being computed."""
        return any(t.name == "pfml-train-maps" and t.is_alive() for t in self._threads)

    def map_view(self) -> tuple[str, dict[int, np.ndarray]]:
        """What the map shows now: the UMAP maps so far while they are at most one epoch
        behind (flipping to PCA meanwhile would make the map jump), else PCA of every epoch."""
        with self._cond:
            if self.layouts and max(self.layouts) >= len(self.snapshots) - 2:
                return "UMAP", dict(sorted(self.layouts.items()))
            return "PCA", dict(self.pca)

    def _stale(self) -> bool:
        return self.heartbeat_s is not None and time.time() - self._touched > self.heartbeat_s

    def _add(self, snap) -> None:
        """A finished epoch: keep it, map it with PCA (rotated onto the previous epoch's)."""
        points, meta = snapshot_points(snap)
        previous = self.pca[self.snapshots[-1].epoch] if self.snapshots else None
        layout = align(pca_layout(points), previous)
        with self._cond:
            if self.snapshots:  # the page reads only the newest epoch's arrays
                self.snapshots[-1] = slim(self.snapshots[-1])
            self.snapshots.append(snap)
            self.meta = self.meta or meta
            self.pca[snap.epoch] = layout
            if self.map_method == "umap":
                self._points[snap.epoch] = points
            self._cond.notify_all()

    def _run(self) -> None:
        """Start the training process and read its messages until it is done (or gone)."""
        proc, conn = child_process.start("pfml_core.training.job_process", self.threads)
        finished, asked_to_stop, self._conn = False, False, conn
        try:
            conn.send(("start", {"config": self.config, "out_dir": self.out_dir,
                                 "dataset": self.dataset, "threads": self.threads,
                                 "pace_s": self.pace_s if self.threads >= cpu_cores() else 0}))
            while not finished:
                if not asked_to_stop and (self._stop.is_set() or self._stale()):
                    self._tell("stop")
                    asked_to_stop = True
                if not conn.poll(0.5):
                    continue
                kind, payload = conn.recv()
                if kind == "epoch":
                    self._add(payload)
                    if not (self.maps_pending and self.map_error is None
                            and self._maps.state == "ready"):
                        self._tell("mapped", payload.epoch)  # no map coming: go on
                elif kind == "batch":
                    self.progress = payload
                elif kind in ("device", "error"):
                    setattr(self, kind, payload)
                elif kind == "done":
                    self.stopped, finished = bool(payload), True
        except (EOFError, OSError):
            pass  # the process is gone: its exit code says how
        except Exception as e:  # noqa: BLE001 - e.g. a dataset that cannot be sent
            self.error = f"training could not run: {type(e).__name__}: {e}"
            proc.kill()
        with self._send_lock:
            self._conn = None
            conn.close()
        code = proc.wait()
        if self.slot is not None:
            self.slot.release()
        if not finished:
            self.error = self.error or f"the training process ended unexpectedly (exit code {code})"
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def _tell(self, *message) -> None:
        """Send the training process a message, from any thread (none once it has ended)."""
        with self._send_lock, contextlib.suppress(OSError):
            if self._conn is not None:
                self._conn.send(message)

    def _next_map(self) -> tuple[int, np.ndarray | None] | None:
        """The newest epoch without a UMAP (so the map keeps up when epochs outrun it; the
        skipped ones are filled in after), with the nearest mapped epoch's layout as start."""
        if not self._points:
            return None
        epoch = max(self._points)
        near = min(self.layouts, key=lambda e: (abs(e - epoch), e > epoch), default=None)
        return epoch, None if near is None else self.layouts[near]

    def _map_loop(self) -> None:
        """Feed the map worker one epoch at a time until training is over and all are mapped."""
        try:
            while not self._closed.is_set() and not self._stale():
                with self._cond:
                    nxt = self._next_map()
                    if nxt is None:
                        if self.done:
                            return
                        self._cond.wait(0.5)
                        continue
                epoch, start = nxt
                try:
                    layout = self._maps.submit(self._points[epoch], start, self.config.seed).result()
                except Exception as e:  # noqa: BLE001 - PCA stays on screen
                    if not self._closed.is_set():
                        self.map_error = f"UMAP failed ({e}); showing PCA"
                    self._tell("mapped", max(self._points))
                    return
                with self._cond:
                    self.layouts[epoch] = layout
                    self.mapped_at[epoch] = time.time()
                    del self._points[epoch]
                self._tell("mapped", epoch)
        finally:
            if self._own_maps:
                self._maps.close()
