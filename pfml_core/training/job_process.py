"""The process a TrainJob trains in (`python -m pfml_core.training.job_process FD`, started by
TrainJob through eval.child_process), so nothing in the server process can starve it.
The messages it receives and sends: `main`."""
from __future__ import annotations

import threading
import time

import torch

from pfml_core.data import faults
from pfml_core.eval import child_process
from pfml_core.training.engine import resolve_device, train
from pfml_core.training.job import device_label


def error_message(e: Exception) -> str:
    """What the page shows when training raised `e`: a storage fault or bad input in its
    own words (one line), anything else with its type."""
    cause = faults.describe(e)
    if cause is not None:  # before ValueError: a Fault is one too
        return f"training stopped, the run folder could not be written: {cause}"
    if isinstance(e, ValueError):  # bad data or settings
        return str(e)
    return f"training failed: {type(e).__name__}: {e}"


def main() -> None:
    """Receive ("start", {config, out_dir, dataset, threads, pace_s}), ("mapped", epoch) and
    ("stop",). With pace_s, on the CPU, each epoch waits (pace_s at most: a busy or stuck map
    worker) until the parent says its map is done: a map drawn while every core trains
    stalls the whole thread team (measured: the loop 1.3x slower for 0.1 s maps), drawn in
    between it costs only its own time. Send
        ("device", "CPU, 2 threads")   once, before the data is loaded
        ("batch", (i, n))              progress, at most about five times a second
        ("epoch", EpochSnapshot)       after epoch 0 and every finished epoch
        ("error", message)             bad data or settings (ValueError), a full or read-only
                                       disk (one line, data.faults), or a crash
        ("done", stopped)              last message
    A stop request, or the parent going away (the channel closes), stops it after the batch."""
    conn = child_process.connect()
    _, job = conn.recv()
    stop, mapped = threading.Event(), threading.Condition()
    last_mapped = [-1]

    def listen():
        try:
            while (message := conn.recv())[0] != "stop":
                with mapped:
                    last_mapped[0] = max(last_mapped[0], message[1])
                    mapped.notify_all()
        except (EOFError, OSError):
            pass  # the parent is gone
        stop.set()
        with mapped:
            mapped.notify_all()

    def send(message) -> None:
        try:
            conn.send(message)
        except OSError:
            stop.set()

    last = [0.0]

    def on_batch(i, n, _loss):
        if i == n or time.monotonic() - last[0] > 0.2:
            last[0] = time.monotonic()
            send(("batch", (i, n)))

    threading.Thread(target=listen, daemon=True).start()
    torch.set_num_threads(job["threads"])
    config, stopped = job["config"], True

    def on_epoch(snap, pace_s: float) -> None:
        send(("epoch", snap))
        if pace_s and snap.epoch < config.epochs:
            with mapped:
                mapped.wait_for(lambda: last_mapped[0] >= snap.epoch or stop.is_set(), pace_s)

    try:
        device = resolve_device(config.device)
        send(("device", device_label(device, job["threads"])))
        pace_s = job["pace_s"] if device.type == "cpu" else 0
        result = train(config, callback=lambda s: on_epoch(s, pace_s), should_stop=stop.is_set,
                       out_dir=job["out_dir"], on_batch=on_batch, dataset=job["dataset"])
        stopped = result.stopped
    except Exception as e:  # noqa: BLE001 - the page must show it, not die
        send(("error", error_message(e)))
    send(("done", stopped))


if __name__ == "__main__":
    main()
