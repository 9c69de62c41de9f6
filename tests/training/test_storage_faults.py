"""A full, read-only or forbidden disk (issue 18, item 5): every such fault is one line
(pfml_core.data.faults) in the lab's worker, the training process, uploads, the page and the
CLI, and a worker that runs out of space marks its run and grid failed at once (the rest of
the grid resumable). The real-disk cases use a tiny tmpfs (root only; skipped elsewhere)."""
from __future__ import annotations

import errno
import sqlite3
import subprocess

import pytest
import sqlalchemy as sa
import torch
from streamlit.testing.v1 import AppTest

from pfml_core import cli, data
from pfml_core.data import faults
from pfml_core.lab import grid as lab_grid
from pfml_core.lab import launch, spare, worker
from pfml_core.lab.studies import Lab
from pfml_core.training.job_process import error_message
from tests.lab_fakes import quick

TORCH_FULL = ("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
              "file data/0: file write failed")


@pytest.mark.parametrize("exc, said", [
    (OSError(errno.ENOSPC, "No space left on device", "/srv/runs/x"), faults.FULL),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), faults.FULL),
    (OSError(errno.EROFS, "Read-only file system", "/srv/runs"), faults.READ_ONLY),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/runs"), faults.DENIED),
    (sqlite3.OperationalError("database or disk is full"), faults.FULL),
    (sqlite3.OperationalError("attempt to write a readonly database"), faults.READ_ONLY),
    (RuntimeError(TORCH_FULL), faults.FULL),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
     faults.FULL),
])
def test_each_fault_is_one_line_without_a_path(exc, said):
    assert faults.describe(exc) == said
    assert "\n" not in said and "/" not in said
    try:  # a wrapped one (raised while handling) is found too
        try:
            raise exc
        except Exception as cause:
            raise KeyError("while saving") from cause
    except KeyError as wrapped:
        assert faults.describe(wrapped) == said


def test_other_errors_are_not_faults():
    for exc in (ValueError("bad alpha"), sqlite3.OperationalError("database is locked"),
                RuntimeError("CUDA out of memory"), OSError(errno.ENOENT, "No such file")):
        assert faults.describe(exc) is None
    with pytest.raises(KeyError):
        with faults.said("x"):
            raise KeyError("passes unchanged")


def test_the_training_process_says_a_full_disk_in_one_line():
    said = error_message(RuntimeError(TORCH_FULL))
    assert said == f"training stopped, the run folder could not be written: {faults.FULL}"
    assert error_message(ValueError("bad data")) == "bad data"


def test_an_upload_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    def full(self, raw):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(type(tmp_path), "write_bytes", full)
    with pytest.raises(ValueError) as e:
        data.store_upload("a.csv", b"label,x\n0,1\n", tmp_path / "_uploads")
    assert str(e.value) == f"the upload could not be stored: {faults.FULL}"
    assert list((tmp_path / "_uploads").iterdir()) == []


def grid(lab: Lab, n: int = 3) -> int:
    """A grid of n points (seeds 0..n-1) of 3 epochs."""
    return lab.create_grid("noise", lab_grid.noise_grid("digits", ["pfml"], [0.0], list(range(n)),
                                                        base={"epochs": 3}))


def test_a_worker_out_of_space_fails_its_run_and_grid_at_once(tmp_path):
    """The first epoch's write to the storage (its reported R@1) fails as SQLite does on a
    full disk: the worker stops, that run and the grid are failed, the rest wait."""
    lab = Lab(f"sqlite:///{tmp_path / 'studies.sqlite'}")
    gid = grid(lab)

    def full(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO trial_intermediate_values"):
            raise sqlite3.OperationalError("database or disk is full")

    sa.event.listen(lab.storage.engine, "before_cursor_execute", full)
    try:
        with pytest.raises(faults.Fault, match="the disk is full"):
            worker.run_grid(gid, lab, quick)
    finally:
        sa.event.remove(lab.storage.engine, "before_cursor_execute", full)
    runs = lab.runs(gid)
    assert [(r["status"], r["id"] is None) for r in runs] == [
        ("failed", False), ("queued", True), ("queued", True)]  # the rest: not yet asked for
    assert runs[0]["error"] == faults.FULL and runs[0]["progress"] == 0
    assert lab.grid(gid)["status"] == "failed" and lab.grid(gid)["counts"] == {"failed": 1, "queued": 2}


def test_a_run_that_hits_a_full_disk_stops_the_grid_and_resumes(tmp_path):
    def full(config, should_stop=None, on_epoch=None):
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/runs/lab_cache/x.npz")

    lab = Lab(f"sqlite:///{tmp_path / 'studies.sqlite'}")
    gid = grid(lab)
    with pytest.raises(faults.Fault):
        worker.run_grid(gid, lab, full)
    runs = lab.runs(gid)
    assert [r["status"] for r in runs] == ["failed", "queued", "queued"]
    assert runs[0]["error"] == faults.FULL and lab.grid(gid)["status"] == "failed"
    assert launch.reopen(gid, lab) == 3  # resumable once space is freed
    assert worker.run_grid(gid, lab, quick) == "done"
    assert lab.grid(gid)["counts"] == {"done": 3, "retried": 1}


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs (needs root: skipped where mount is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(folder) -> None:
    """Take every free byte of the disk the folder is on."""
    with open(folder / "filler", "ab", buffering=0) as f:
        for size in (2**16, 2**12, 1):
            try:
                while True:
                    f.write(bytes(size))
            except OSError as e:
                assert e.errno == errno.ENOSPC


def test_on_a_really_full_disk_the_worker_still_records_the_failure(tiny_disk):
    lab = Lab(f"sqlite:///{tiny_disk / 'studies.sqlite'}")
    gid = grid(lab)

    def fills_the_disk(config, should_stop=None, on_epoch=None):
        assert (tiny_disk / f"studies.sqlite{spare.SUFFIX}").stat().st_size == spare.SIZE
        fill(tiny_disk)
        return quick(config, should_stop, on_epoch)

    with pytest.raises(faults.Fault, match="the disk is full"):
        worker.run_grid(gid, lab, fills_the_disk)
    assert (tiny_disk / "filler").stat().st_size > 2 * 2**20  # the disk is still full
    assert not (tiny_disk / f"studies.sqlite{spare.SUFFIX}").exists()  # freed for the record
    assert lab.grid(gid)["status"] == "failed"
    runs = lab.runs(gid)
    assert [r["status"] for r in runs] == ["failed", "queued", "queued"]
    assert runs[0]["error"] == faults.FULL
    fill(tiny_disk)  # what the spare file left
    with pytest.raises(RuntimeError) as e:  # and torch.save's own words there are a fault too
        torch.save(torch.zeros(10_000), tiny_disk / "x.pt")
    assert faults.describe(e.value) == faults.FULL
    (tiny_disk / "filler").unlink()  # space again: the grid resumes and keeps a new spare
    assert launch.reopen(gid, lab) == 3 and worker.run_grid(gid, lab, quick) == "done"
    assert (tiny_disk / f"studies.sqlite{spare.SUFFIX}").stat().st_size == spare.SIZE


@pytest.fixture
def read_only_runs(tiny_disk, monkeypatch):
    """The runs folder on a disk remounted read-only, its storage holding one queued grid."""
    runs = tiny_disk / "runs"
    runs.mkdir()
    monkeypatch.setenv("PFML_RUNS_DIR", str(runs))
    lab = Lab(f"sqlite:///{runs / 'studies.sqlite'}")
    gid = grid(lab, n=1)
    lab.storage.engine.dispose()  # no file open for writing: the remount would be refused
    if subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], capture_output=True).returncode:
        pytest.skip("cannot remount the tmpfs read-only here")
    return runs, gid


def _a_fault(said: str) -> bool:
    """Whether a message says the disk is read-only (SQLite cannot tell a read-only disk
    from a forbidden one when it opens a WAL store: 'unable to open database file')."""
    return faults.READ_ONLY in said or faults.DENIED in said


def test_a_read_only_store_is_one_line_in_the_cli_and_the_page(read_only_runs, capsys):
    runs, gid = read_only_runs
    assert cli.main(["lab-cancel", str(gid)]) == 2  # a write: refused, in one line
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and _a_fault(err), err
    at = AppTest.from_file("../../pages/noise_lab.py", default_timeout=60).run()
    assert not at.exception  # the grid listed (read-only is readable), or one line saying why not
    said = [e.value for e in at.error]
    assert (said == [] and f"Grid #{gid}: **queued**" in at.get("progress")[0].proto.text
            or len(said) == 1 and _a_fault(said[0].replace("\\", ""))), said  # shown as text: escaped
