"""Server-wide limits hold across processes sharing one runs folder (issue 18, item 8):
PFML_MAX_TRAIN_JOBS counts flock-ed slot files in runs/.slots, so a second server (another
process) is refused while the first trains, and gets the slot once that process dies; the
uploads folder keeps at most PFML_MAX_UPLOADS_MB in all, expired uploads going first."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from pfml_core import data
from pfml_core.training import TrainConfig, TrainJob
from studio import train_session
from studio.train_session import TrainView
from tests.lab_helpers import wait_for

HOLD = """
import sys, time
from pfml_core.training import TrainJob
slot = TrainJob.claim_slot(int(sys.argv[1]))
print("held" if slot else "refused", flush=True)
time.sleep(600)
"""


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(train_session, "_LIVE", type(train_session._LIVE)())
    return tmp_path


def other_server(cap: int) -> subprocess.Popen:
    """Another process on the same runs folder, holding a training slot (or refused)."""
    return subprocess.Popen([sys.executable, "-c", HOLD, str(cap)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))


class FakeJob:
    running = False

    def start(self):
        self.running = True
        return self

    def close(self):
        self.running = False


@pytest.mark.slow  # other server processes start and wait
def test_a_second_server_on_the_same_runs_folder_waits_for_the_slot(runs_dir, monkeypatch):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", "1")
    other = other_server(1)
    try:
        assert other.stdout.readline().strip() == "held"
        assert TrainView().start(FakeJob) is None  # this server trains nothing, yet is refused
        assert TrainJob.claim_slot(1) is None
        other.kill()  # the other server dies: the OS drops its lock
        other.wait()
        view = TrainView()
        assert view.start(FakeJob) is view.job and view.job.slot.held
        third = other_server(1)  # now this process holds the one slot
        assert third.stdout.readline().strip() == "refused"
        third.kill()
        third.wait()
    finally:
        other.kill()


@pytest.mark.slow  # other server processes start and wait
def test_two_slots_are_shared_between_processes(runs_dir, monkeypatch):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", "2")
    procs = [other_server(2) for _ in range(3)]
    try:
        said = sorted(p.stdout.readline().strip() for p in procs)
        assert said == ["held", "held", "refused"]
        assert TrainView().start(FakeJob) is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_finished_job_gives_its_slot_back(runs_dir, monkeypatch):
    monkeypatch.setenv("PFML_MAX_TRAIN_JOBS", "1")
    view = TrainView()
    first = view.start(FakeJob)
    assert TrainJob.claim_slot(1) is None
    first.running = False  # ended without releasing (a fake): the next start frees it
    assert TrainView().start(FakeJob) is not None


@pytest.mark.slow  # a real training process, one batch
def test_a_real_job_frees_its_slot_when_its_process_ends(runs_dir):
    config = TrainConfig(data="digits", epochs=1, max_batches_per_epoch=1, eval_subset=100)
    job = TrainJob(config, None, "pca")
    job.slot = TrainJob.claim_slot(1)
    job.start()
    assert TrainJob.claim_slot(1) is None
    wait_for(lambda: job.done, 120, "the job to finish")
    assert not job.error and TrainJob.claim_slot(1) is not None


def npz(path, seed: int, rows: int = 1000) -> bytes:
    rng = np.random.default_rng(seed)
    np.savez(path, X=rng.normal(size=(rows, 64)).astype(np.float32),
             y=np.repeat(np.arange(10), rows // 10))
    return path.read_bytes()


def test_uploads_have_a_total_quota_and_the_oldest_expire_first(tmp_path, monkeypatch):
    monkeypatch.setenv("PFML_MAX_UPLOADS_MB", "1")
    monkeypatch.setenv("PFML_UPLOAD_TTL_HOURS", "2")
    folder = tmp_path / "_uploads"
    a, b = npz(tmp_path / "a.npz", 0), npz(tmp_path / "b.npz", 1)  # 0.25 MiB each
    c, d = npz(tmp_path / "c.npz", 2), npz(tmp_path / "d.npz", 3)
    kept = [data.store_upload(n, raw, folder) for n, raw in (("a.npz", a), ("b.npz", b), ("c.npz", c))]
    with pytest.raises(ValueError) as e:
        data.store_upload("d.npz", d, folder)
    said = str(e.value)
    assert said.startswith("d.npz (0.3 MB) does not fit: the server keeps at most 1 MB of uploads "
                           "(PFML_MAX_UPLOADS_MB) and holds 0.8 MB; uploads unused for 2 hours are deleted")
    assert "\n" not in said and str(tmp_path) not in said
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in kept)
    assert data.store_upload("a.npz", a, folder) == kept[0]  # one already kept: no new bytes
    old = time.time() - 3 * 3600  # a and b unused past the 2-hour TTL
    for p in kept[:2]:
        os.utime(p, (old, old))
    stored = data.store_upload("d.npz", d, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept[2].name, stored.name])


@pytest.mark.slow  # other server processes start and wait
def test_the_uploads_quota_counts_every_server(tmp_path, monkeypatch):
    """Two processes store different 0.6 MiB uploads at once under a 1 MiB quota: the lock in
    the runs folder lets exactly one in."""
    monkeypatch.setenv("PFML_MAX_UPLOADS_MB", "1")
    folder = tmp_path / "_uploads"
    files = [tmp_path / f"{i}.npz" for i in range(2)]
    for i, f in enumerate(files):
        npz(f, i, rows=2400)
    code = ("import sys; from pathlib import Path; from pfml_core import data\n"
            "p = Path(sys.argv[1])\n"
            "try:\n    data.store_upload(p.name, p.read_bytes(), Path(sys.argv[2])); print('kept')\n"
            "except ValueError as e:\n    print('refused' if 'does not fit' in str(e) else e)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(f), str(folder)],
                              stdout=subprocess.PIPE, text=True) for f in files]
    said = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert said == ["kept", "refused"]
    assert len([p for p in folder.iterdir()]) == 1


@pytest.mark.parametrize("bad", ["0", "-1", "big", "1.5"])
def test_a_bad_uploads_quota_is_a_clear_error(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("PFML_MAX_UPLOADS_MB", bad)
    with pytest.raises(ValueError, match="PFML_MAX_UPLOADS_MB must be a whole number"):
        data.store_upload("a.npz", npz(tmp_path / "a.npz", 0), tmp_path / "_uploads")

