"""A full, read-only or forbidden disk (issue 18, item 5): every such fault is one line
(pfml_core.data.faults) in the lab store, the lab's worker, the training process, uploads,
the page and the CLI, and a worker that runs out of space marks its run and grid failed at
once. The real-disk cases use a tiny tmpfs (root only; skipped elsewhere)."""
from __future__ import annotations

import errno
import re
import sqlite3
import subprocess

import pytest
import torch
from streamlit.testing.v1 import AppTest

from pfml_core import cli, data
from pfml_core.data import faults
from pfml_core.lab import store as store_module
from pfml_core.lab import worker
from pfml_core.lab.store import Store
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


class FullOn:
    """A store connection whose statements matching `sql` fail as SQLite does on a full disk."""

    def __init__(self, conn, sql: str):
        self._conn, self._sql = conn, sql

    def execute(self, sql, *args):
        if self._sql in sql:
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def grid(s: Store, n: int = 3) -> int:
    runs = [({"seed": i}, {"data": "digits", "epochs": 3, "seed": i, "noise": 0.0})
            for i in range(n)]
    return s.create_grid("noise", {}, runs)


def test_a_worker_out_of_space_fails_its_run_and_grid_at_once(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    gid = grid(s)
    s._conn._conn = FullOn(s._conn._conn, "UPDATE runs SET progress")  # the first epoch's write
    with pytest.raises(faults.Fault, match="the disk is full"):
        worker.run_grid(gid, s, quick)
    runs = Store(tmp_path / "lab.sqlite").runs(gid)
    assert [r["status"] for r in runs] == ["failed", "queued", "queued"]  # the rest: resumable
    assert runs[0]["error"] == f"the lab store could not be written: {faults.FULL}"
    assert s.grid(gid)["status"] == "failed"


def test_a_run_that_hits_a_full_disk_stops_the_grid(tmp_path):
    def full(config, should_stop=None, on_epoch=None):
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/runs/lab_cache/x.npz")

    s = Store(tmp_path / "lab.sqlite")
    gid = grid(s)
    with pytest.raises(faults.Fault):
        worker.run_grid(gid, s, full)
    assert [r["status"] for r in s.runs(gid)] == ["failed", "queued", "queued"]
    assert s.runs(gid)[0]["error"] == faults.FULL and s.grid(gid)["status"] == "failed"
    assert worker.reopen(gid, s) == 3  # resumable once space is freed


def test_a_read_only_store_is_one_line_in_the_cli_and_the_page(tmp_path, monkeypatch, capsys):
    def read_only(path, schema):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(store_module, "open_store", read_only)
    (tmp_path / "lab.sqlite").touch()
    assert cli.main(["lab-cancel", "1"]) == 2
    said = f"the lab store could not be opened: {faults.READ_ONLY}"
    assert capsys.readouterr().err == f"error: {said}\n"
    at = AppTest.from_file("../../pages/noise_lab.py", default_timeout=60).run()
    assert not at.exception and [re.sub(r"\\(.)", r"\1", e.value) for e in at.error] == [said]


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
    s = Store(tiny_disk / "lab.sqlite")
    gid = grid(s)

    def fills_the_disk(config, should_stop=None, on_epoch=None):
        fill(tiny_disk)
        return quick(config, should_stop, on_epoch)

    with pytest.raises(faults.Fault, match="the disk is full"):
        worker.run_grid(gid, s, fills_the_disk)
    assert (tiny_disk / "filler").stat().st_size > 2 * 2**20  # the disk is still full
    assert s.grid(gid)["status"] == "failed"
    assert [r["status"] for r in s.runs(gid)] == ["failed", "queued", "queued"]
    fill(tiny_disk)  # what the spare file left
    with pytest.raises(RuntimeError) as e:  # and torch.save's own words there are a fault too
        torch.save(torch.zeros(10_000), tiny_disk / "x.pt")
    assert faults.describe(e.value) == faults.FULL
    s.close()
