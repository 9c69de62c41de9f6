"""TrainJob: training runs in its own process and hands back every finished epoch (the same
ones its run folder keeps), Stop and a lapsed heartbeat both stop it, bad data is a one-line
message, UMAP maps are asked for newest first, each warm-started from its nearest mapped
epoch (a fake map service records the requests), and while training takes every core each
epoch waits for the last one's map (bounded by pace_s)."""
import os
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from pfml_core.eval import pca_layout, snapshot_points
from pfml_core.training import TrainConfig, TrainJob, load_run, snapshots

pytestmark = pytest.mark.slow


def _wait(job, seconds=300):
    deadline = time.time() + seconds
    while (job.running or job.maps_pending) and time.time() < deadline:
        time.sleep(0.2)
    assert not job.running and not job.maps_pending, "job did not finish"


def _tiny(**kw) -> TrainConfig:
    return TrainConfig(**{"data": "digits", "epochs": 2, "max_batches_per_epoch": 1,
                          "eval_subset": 60, **kw})


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    job = TrainJob(_tiny(), out, "pca").start()
    _wait(job)
    return job, out


def test_trains_in_a_process_and_keeps_what_the_run_folder_keeps(run_folder):
    job, out = run_folder
    assert job.error is None and not job.stopped
    assert job.device.startswith(("CPU, ", "GPU: "))
    assert [s.epoch for s in job.snapshots] == [0, 1, 2]
    saved = snapshots(load_run(out))
    for ours, theirs in zip(job.snapshots, saved):
        assert ours.metrics["R@1"] == pytest.approx(theirs.metrics["R@1"])
    # only the newest epoch keeps its embeddings in memory; the folder has every epoch's
    assert np.array_equal(job.snapshots[-1].embeddings, saved[-1].embeddings)
    assert [len(s.embeddings) for s in job.snapshots[:-1]] == [0, 0] and len(saved[0].embeddings)
    assert job.progress == (1, 1)
    label, layouts = job.map_view()
    assert label == "PCA" and sorted(layouts) == [0, 1, 2]
    for e, xy in layouts.items():  # PCA rotated onto the previous epoch keeps its own size
        own = pca_layout(snapshot_points(saved[e])[0])
        assert np.allclose(np.linalg.norm(xy - xy.mean(0), axis=1),
                           np.linalg.norm(own - own.mean(0), axis=1), atol=1e-4)


def test_stop_keeps_finished_epochs(tmp_path):
    job = TrainJob(_tiny(epochs=10_000), tmp_path / "run", "pca").start()
    deadline = time.time() + 300
    while len(job.snapshots) < 2 and time.time() < deadline:
        time.sleep(0.2)
    job.stop()
    _wait(job, 120)
    assert job.stopped and job.error is None and 2 <= len(job.snapshots) < 10_000
    assert len(snapshots(load_run(tmp_path / "run"))) == len(job.snapshots)


def test_a_page_that_stops_polling_stops_the_job(tmp_path):
    job = TrainJob(_tiny(epochs=10_000), None, "pca", heartbeat_s=1.0).start()
    _wait(job, 300)  # nobody calls touch(): the job stops on its own
    assert job.stopped and job.error is None


def test_bad_data_is_a_one_line_message():
    job = TrainJob(_tiny(data="no_such_file.npz"), None, "pca").start()
    _wait(job, 300)
    assert job.error and "\n" not in job.error and "Traceback" not in job.error
    assert job.snapshots == [] and os.sep + "work" not in job.error


class FakeMaps:
    """Records (points, start layout) per request; the map is the points' first two
    coordinates."""

    def __init__(self):
        self.asked = []

    def start(self):
        return self

    def submit(self, points, previous=None, seed=0):
        self.asked.append((points, previous))
        fut = Future()
        fut.set_result(np.asarray(points[:, :2], np.float32))
        return fut


def test_maps_newest_first_each_started_from_the_nearest(run_folder):
    _, out = run_folder
    fake = FakeMaps()
    job = TrainJob.from_run(out, "umap", maps=fake).start()
    _wait(job, 60)
    saved = snapshots(load_run(out))  # the job keeps only the newest epoch's arrays
    order = [next(s.epoch for s in saved
                  if np.array_equal(snapshot_points(s)[0], p)) for p, _ in fake.asked]
    assert order == [2, 1, 0]
    assert fake.asked[0][1] is None  # the first map starts cold
    assert np.array_equal(fake.asked[1][1], job.layouts[2])  # epoch 1 starts from epoch 2
    assert np.array_equal(fake.asked[2][1], job.layouts[1])  # epoch 0 from epoch 1
    label, layouts = job.map_view()
    assert label == "UMAP" and sorted(layouts) == [0, 1, 2]




class SlowMaps(FakeMaps):
    """A warm map service whose maps take `delay` seconds (None: they never come)."""
    state = "ready"

    def __init__(self, delay):
        super().__init__()
        self.delay, self.done_at = delay, []

    def submit(self, points, previous=None, seed=0):
        fut = Future()
        if self.delay is not None:
            def finish():
                self.done_at.append(time.time())
                fut.set_result(np.asarray(points[:, :2], np.float32))
            threading.Timer(self.delay, finish).start()
        return fut


def test_each_epoch_waits_for_its_map_while_training_takes_every_core(tmp_path):
    """A map drawn while every core trains stalls the training; so the next epoch starts only
    once the last epoch's map is done: each snapshot arrives after its predecessor's map."""
    maps, arrived = SlowMaps(0.8), {}
    job = TrainJob(_tiny(epochs=3), None, "umap", maps=maps).start()
    while job.running:
        for s in list(job.snapshots):
            arrived.setdefault(s.epoch, time.time())
        time.sleep(0.02)
    _wait(job, 60)
    assert job.error is None and sorted(job.layouts) == [0, 1, 2, 3]
    for e in (1, 2, 3):  # epoch e trained after epoch e-1's map was done (tiny epochs: ~0.05 s)
        assert arrived[e] >= job.mapped_at[e - 1], (e, arrived, job.mapped_at)
    assert arrived[3] - arrived[0] >= 3 * 0.8


def test_a_map_that_never_comes_delays_each_epoch_by_pace_s_only(tmp_path):
    job = TrainJob(_tiny(epochs=3), None, "umap", maps=SlowMaps(None))
    job.pace_s = 0.5
    t0 = time.time()
    job.start()
    while job.running and time.time() - t0 < 60:
        time.sleep(0.05)
    job.close()
    assert job.error is None and [s.epoch for s in job.snapshots] == [0, 1, 2, 3]
    assert 3 * 0.5 <= time.time() - t0 < 30
