"""What a running grid needs besides its spec: the data, loaded once per process (and a
bundled set parsed once per runs folder), the training-side class names of a run, and the
time left (ETA) from the pace of the runs so far."""
from __future__ import annotations

import functools
import os

import numpy as np


@functools.lru_cache(maxsize=2)
def dataset(data: str):
    """The Dataset of a bundled name or path, loaded once per process (a worker trains a
    whole grid on it). A bundled set is parsed once and then read from an .npz copy under
    runs_dir()/lab_cache (MNIST-5k takes seconds of CPU to parse from text)."""
    from pfml_core.data.bundled import BUNDLED, load_dataset
    from pfml_core.data.dataset import Dataset
    from pfml_core.training.run_folder import runs_dir

    if data not in BUNDLED:
        return load_dataset(data)
    path = runs_dir() / "lab_cache" / f"{data}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return Dataset(f["X"], f["y"], [str(c) for c in f["names"]], str(f["kind"]), data)
    ds = load_dataset(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.npz")
    np.savez(tmp, X=ds.X, y=ds.y, names=np.array(ds.class_names), kind=np.array(ds.kind))
    tmp.replace(path)  # atomic: a parallel worker never reads half a file
    return ds


def train_class_names(config: dict) -> list[str] | None:
    """Class names on the training side of a run's split; None when its data can no longer
    be opened (a moved upload): labels are then shown as class ids."""
    from pfml_core.data.dataset import split_class_names

    try:
        names = dataset(config["data"]).class_names
    except (ValueError, OSError):
        return None
    return split_class_names(names, config.get("split", "zero-shot"))["train"]


def eta(runs: list[dict], now: float, parallel: int = 1) -> float | None:
    """Seconds until a grid's queued and running runs finish, at the pace of its finished
    runs (wall seconds per epoch, overheads included) or, before any finished, of the
    running runs' finished epochs, shared among `parallel` runs at a time; None while there
    is no pace to go by."""
    epochs = lambda r: int(r["config"].get("epochs", 1))  # noqa: E731
    done = [r for r in runs if r["status"] == "done" and r.get("started") is not None
            and r.get("finished") is not None]
    running = [r for r in runs if r["status"] == "running" and r.get("started") is not None]
    queued = [r for r in runs if r["status"] == "queued"]
    if done:
        pace = sum(r["finished"] - r["started"] for r in done) / sum(epochs(r) for r in done)
    else:
        paced = [r for r in running if (r.get("progress") or 0) > 0]
        if not paced:
            return None if running or queued else 0.0
        pace = sum(now - r["started"] for r in paced) / sum(r["progress"] for r in paced)
    left = sum(max(pace * epochs(r) - (now - r["started"]), 0.0) for r in running)
    left += pace * sum(epochs(r) for r in queued)
    return left / max(1, min(int(parallel), len(running) + len(queued)))
