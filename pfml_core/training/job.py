"""A training run in a background thread, for the app: the page starts it, polls it and
stops it; finished epochs are kept (and written to the run folder). A second thread maps
each epoch to 2-D (UMAP, warm-started from the previous epoch) while PCA is shown at once."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from pfml_core.eval import projection
from pfml_core.training import run_folder as runs
from pfml_core.training.engine import EpochSnapshot, TrainConfig, train


class TrainJob:
    """start() / stop(); read snapshots, layouts, progress, error, done."""

    def __init__(self, config: TrainConfig, out_dir: Path | None = None, map_method: str = "umap",
                 dataset=None):
        self.config, self.out_dir, self.map_method = config, out_dir, map_method
        self.dataset = dataset
        self.snapshots: list[EpochSnapshot] = []
        self.layouts: dict[int, np.ndarray] = {}  # epoch -> (N, 2) map of snapshot_points
        self.progress = (0, 0)  # (batch, batches) within the running epoch
        self.error: str | None = None
        self.done = False
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._train, daemon=True)]
        if map_method == "umap":
            self._threads.append(threading.Thread(target=self._project, daemon=True))

    @classmethod
    def from_run(cls, path, map_method: str = "umap") -> "TrainJob":
        """A finished job rebuilt from a run folder (only the map thread runs)."""
        run = runs.load_run(path)
        job = cls(run.config, Path(path), map_method)
        job.snapshots = runs.snapshots(run)
        job.done = True
        job._threads = job._threads[1:]
        return job

    def start(self) -> "TrainJob":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return not self.done

    def _train(self):
        try:
            train(self.config, callback=self.snapshots.append, should_stop=self._stop.is_set,
                  out_dir=self.out_dir, on_batch=self._on_batch, dataset=self.dataset)
        except ValueError as e:  # bad data or settings: shown as a message
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - the page must show it, not die
            self.error = f"training failed: {type(e).__name__}: {e}"
        finally:
            self.done = True

    def _on_batch(self, i, n, loss):
        self.progress = (i, n)

    def _project(self):
        """UMAP each new epoch in order, warm-started from the previous epoch's map."""
        previous = None
        while True:
            todo = [s for s in list(self.snapshots) if s.epoch not in self.layouts]
            if not todo:
                if self.done:
                    return
                time.sleep(0.2)
                continue
            points, _ = projection.snapshot_points(todo[0])
            try:
                previous = projection.project(points, "umap", previous, self.config.seed)
            except Exception as e:  # noqa: BLE001 - PCA stays on screen
                self.error = self.error or f"UMAP failed ({type(e).__name__}: {e}); showing PCA"
                return
            self.layouts[todo[0].epoch] = previous

    def layout(self, epoch: int) -> tuple[np.ndarray, str]:
        """The best map for an epoch now: UMAP if ready, else PCA (aligned to epoch 0's)."""
        if epoch in self.layouts:
            return self.layouts[epoch], "UMAP"
        snap = next(s for s in self.snapshots if s.epoch == epoch)
        first, _ = projection.snapshot_points(self.snapshots[0])
        ref = projection.pca_layout(first)
        return projection.align(projection.pca_layout(projection.snapshot_points(snap)[0]), ref), "PCA"
