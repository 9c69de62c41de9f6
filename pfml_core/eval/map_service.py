"""A warm worker process that draws UMAP maps. UMAP's numba kernels compile once per process
(tens of seconds on a small machine), so the app starts one worker early (map_worker, on one
core), it warms up once and is kept; maps are computed there, never in the process that
trains or the one that serves pages."""
from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future

import numpy as np

from pfml_core.eval import child_process


class MapService:
    """start() starts the worker (it warms up at once); submit() queues one map and returns a
    Future of the (n, 2) layout; close() ends the worker. A worker that died is replaced on
    the next start() or submit()."""

    def __init__(self):
        self._lock = threading.Lock()
        self._proc = self._conn = None
        self._futures: dict[int, Future] = {}
        self._ids = itertools.count()
        self._state = "off"
        self.warm_seconds: float | None = None  # how long the one-time warm-up took

    def start(self) -> MapService:
        with self._lock:
            gone = self._proc is None or self._proc.poll() is not None
            if not gone and self._state.startswith("failed"):  # a failed warm-up, or a worker
                self._proc.kill()  # whose channel closed while it is still exiting: replace it
                self._proc.wait(10)
                self._conn.close()
                gone = True
            if gone:
                self._proc, self._conn = child_process.start("pfml_core.eval.map_worker", threads=1)
                self._futures, self._state = {}, "warming"
                threading.Thread(target=self._read, args=(self._conn, self._futures),
                                 daemon=True, name="pfml-map-read").start()
        return self

    @property
    def state(self) -> str:
        """'off', 'warming', 'ready' or 'failed: <why>'."""
        return self._state

    def submit(self, points: np.ndarray, previous: np.ndarray | None = None,
               seed: int = 0) -> Future:
        """UMAP of points, warm-started from and rotated onto `previous` (projection.project)."""
        self.start()
        fut: Future = Future()
        with self._lock:
            key = next(self._ids)
            self._futures[key] = fut
            try:
                self._conn.send(("map", key, np.asarray(points, np.float32), previous, seed))
            except OSError:
                self._futures.pop(key, None)
                fut.set_exception(RuntimeError("the map worker is not running"))
        return fut

    def _read(self, conn, futures: dict) -> None:
        """Hand each result to its Future; when the worker goes, fail what it still owed."""
        try:
            while True:
                kind, key, value = conn.recv()
                if kind == "warm":
                    self.warm_seconds, self._state = value, "ready"
                    continue
                fut = futures.pop(key, None)
                if key is None:  # the warm-up itself failed
                    self._state = f"failed: {value}"
                elif fut is not None and kind == "ok":
                    fut.set_result(value)
                elif fut is not None:
                    fut.set_exception(RuntimeError(value))
        except (EOFError, OSError):
            pass
        with self._lock:
            owed = list(futures.values())
            futures.clear()
            if self._conn is conn and not self._state.startswith("failed"):
                self._state = "failed: the map worker stopped"
        for fut in owed:
            fut.set_exception(RuntimeError("the map worker stopped"))

    def close(self) -> None:
        with self._lock:
            proc, conn, self._proc, self._conn, self._state = self._proc, self._conn, None, None, "off"
        if conn is not None:
            conn.close()
        if proc is not None:
            proc.terminate()
            proc.wait(10)
