"""The CLI's faults (issue 18, item 7): each is one line on stderr and exit code 2, nothing
is written, only a damaged SQLite store is ever moved aside (a one-line note), and a run that
fails before its first epoch leaves no folder of its own behind."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pfml_core import cli
from pfml_core.lab import commands, grid, worker
from pfml_core.lab.studies import Lab
from pfml_core.training import engine, run_folder
from pfml_core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--data", "digits", "--epochs", "1", "--max-batches", "1", "--eval-subset", "50",
        "--device", "cpu", "--model", "mlp"]


def _fails(capsys, *argv) -> str:
    """Run the CLI, expect exit 2 and one stderr line; that line."""
    rc = cli.main(list(argv))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _lab(path: Path) -> Lab:
    """An Optuna storage in a SQLite file (created now, empty)."""
    return Lab(f"sqlite:///{path}")


def test_lab_export_of_an_unknown_grid_writes_nothing(tmp_path, capsys):
    _lab(tmp_path / "s.sqlite")
    for grid_id in ("999", "noise-20990101-000000-abcdef"):  # an id or a study name
        err = _fails(capsys, "lab-export", grid_id, str(tmp_path / "out.csv"), "--store",
                     str(tmp_path / "s.sqlite"))
        assert err == f"error: grid '{grid_id}' is not in the lab's storage\n"
    assert not (tmp_path / "out.csv").exists()
    err = _fails(capsys, "lab-cancel", "999", "--storage", f"sqlite:///{tmp_path / 's.sqlite'}")
    assert err == "error: grid '999' is not in the lab's storage\n"


def test_lab_export_without_a_store_creates_none(tmp_path, capsys):
    err = _fails(capsys, "lab-export", "1", str(tmp_path / "o.csv"), "--store",
                 str(tmp_path / "none.sqlite"))
    assert "no lab store at" in err and sorted(tmp_path.iterdir()) == []


def test_a_file_that_is_no_store_is_left_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("my notes\n")
    err = _fails(capsys, "lab-export", "1", "o.csv", "--store", "notes.txt")
    assert err == ("error: notes.txt is not a lab store (not an SQLite file); it is left as it "
                   "is: give a new file or a lab store\n")
    assert Path("notes.txt").read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing beside it


def test_a_damaged_sqlite_file_is_still_moved_aside(tmp_path, capsys):
    path = tmp_path / "lab.db"
    damaged = b"SQLite format 3\x00" + b"\xff" * 4000  # SQLite's header, then garbage
    path.write_bytes(damaged)
    store = _lab(path)
    assert store.recovered is not None and store.recovered.read_bytes() == damaged  # kept whole
    assert store.grids() == [] and path.exists()  # a fresh store in its place
    other = tmp_path / "cli.db"
    other.write_bytes(damaged)
    assert cli.main(["lab-cancel", "1", "--store", str(other)]) == 2
    note, err = capsys.readouterr().err.splitlines()
    (kept,) = tmp_path.glob("cli.db.damaged-*")
    assert note == (f"note: the run store was damaged; it is kept as {kept.name} and a fresh one "
                    "was started") and kept.read_bytes() == damaged
    assert err == "error: grid '1' is not in the lab's storage"


def test_a_store_in_a_missing_folder_is_refused(tmp_path, capsys):
    store = tmp_path / "typo" / "lab.sqlite"
    err = _fails(capsys, "lab-export", "1", str(tmp_path / "o.csv"), "--store", str(store))
    assert f"the folder {store.parent} does not exist" in err
    assert not store.parent.exists()


@pytest.mark.parametrize("where", ["file", "/dev/null", "/proc/x"])
def test_a_bad_out_folder_is_one_line(tmp_path, capsys, where):
    if where == "file":
        where = str(tmp_path / "notes.txt")
        Path(where).write_text("keep")
    if not Path(where).parent.exists():
        pytest.skip(f"no {Path(where).parent} here")
    err = _fails(capsys, "train", *TINY, "--out", where)
    assert f"--out {where}" in err
    assert not Path(where).is_dir()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    err = _fails(capsys, "train", *TINY, "--device", "cuda", "--out", str(tmp_path / "r"))
    assert "0 CUDA GPUs" in err and not (tmp_path / "r").exists()
    assert "CUDA" in _fails(capsys, "sweep", "--device", "cuda:1", "--store",
                            str(tmp_path / "s.sqlite"))


def test_deeply_nested_loss_params_is_one_line(tmp_path, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    err = _fails(capsys, "train", *TINY, "--loss-params", deep, "--out", str(tmp_path / "r"))
    assert "--loss-params is nested too deeply" in err and len(err) < 200


def test_suspects_out_to_a_folder_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    capsys.readouterr()  # the progress bar
    err = _fails(capsys, "suspects", str(run), "--out", str(tmp_path))
    assert f"{tmp_path} is a folder; give a file name to write" in err


def _failing_train(write_epoch: bool):
    def train(config, out_dir=None, **_):
        run_folder.start_run(Path(out_dir), config)
        if write_epoch:
            run_folder.write_metrics(Path(out_dir), [{"epoch": 0}])
        raise RuntimeError("boom")  # a real bug: its traceback is kept
    return train


def test_a_run_failing_before_its_first_epoch_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "train", _failing_train(False))
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["train", *TINY])  # the default folder runs/<time>-pfml-digits
    assert list((tmp_path / "runs").iterdir()) == []
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["train", *TINY, "--out", str(tmp_path / "new" / "r")])
    assert not (tmp_path / "new").exists()  # the parent it made goes too


def test_an_interrupt_before_the_first_epoch_keeps_no_folder(tmp_path, monkeypatch, capsys):
    def interrupted(config, out_dir=None, **_):
        run_folder.start_run(Path(out_dir), config)
        raise KeyboardInterrupt
    monkeypatch.setattr(engine, "train", interrupted)
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "r")]) == 130
    assert "no run folder was kept" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_failed_run_keeps_folders_it_did_not_make_and_epochs_written(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "train", _failing_train(False))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    with pytest.raises(RuntimeError):
        cli.main(["train", *TINY, "--out", str(mine)])
    assert (mine / "keep.txt").read_text() == "x"
    monkeypatch.setattr(engine, "train", _failing_train(True))
    with pytest.raises(RuntimeError):
        cli.main(["train", *TINY, "--out", str(tmp_path / "r")])
    assert (tmp_path / "r" / "metrics.csv").exists()


def test_sweep_names_the_flag_given(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    err = _fails(capsys, "sweep", "--delta", "1e-300", "--data", "digits")
    assert "--delta must be at least 1e-6, got 1e-300" in err and "delta_rep" not in err
    assert sorted(tmp_path.iterdir()) == []  # no studies.sqlite: nothing half-created


def test_seeds_past_numpy_range_are_refused_before_a_grid(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    err = _fails(capsys, "sweep", "--seeds", str(2**32), "--data", "digits")
    assert "seeds must be an integer in [0, 4294967295], got 4294967296" in err
    assert sorted(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="seeds"):
        grid.noise_grid("digits", ["pfml"], [0.0], [2**32])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\]"):
        TrainConfig(seed=2**32).validate()
    assert TrainConfig(seed=2**32 - 1).validate().seed == 2**32 - 1
    assert "seed must be" in _fails(capsys, "train", *TINY, "--seed", str(2**32))


@pytest.mark.parametrize("code, said", [(errno.ENOSPC, "disk is full"),
                                        (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied")])
def test_storage_faults_are_one_line_without_server_paths(capsys, monkeypatch, code, said):
    def export(args):
        raise OSError(code, "os words", "/srv/secret/runs/lab.sqlite")
    monkeypatch.setattr(commands, "run_export", export)
    monkeypatch.setattr(cli, "check_args", lambda a: None, raising=False)
    err = _fails(capsys, "lab-export", "1", "o.csv")
    assert said in err and "/srv/secret" not in err


def test_real_bugs_keep_their_traceback_and_messages_stay_one_line(capsys, monkeypatch):
    monkeypatch.setattr(cli, "check_args", lambda a: None, raising=False)
    monkeypatch.setattr(commands, "run_export", lambda a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["lab-export", "1", "o.csv"])

    def two_lines(args):
        raise ValueError("first\nsecond")
    monkeypatch.setattr(commands, "run_export", two_lines)
    assert _fails(capsys, "lab-export", "1", "o.csv") == "error: first second\n"


@pytest.mark.slow  # a fresh interpreter: python -m pfml_core
def test_fresh_interpreter_gives_one_line_and_exit_2(tmp_path):
    _lab(tmp_path / "s.sqlite")
    proc = subprocess.run([sys.executable, "-m", "pfml_core", "lab-export", "999", "out.csv",
                           "--store", "s.sqlite"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == "error: grid '999' is not in the lab's storage\n"
    assert not (tmp_path / "out.csv").exists()


def test_lab_export_reads_the_storage_given(tmp_path, capsys, monkeypatch):
    from tests.lab_fakes import quick

    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path / "runs"))  # no default storage there
    lab = _lab(tmp_path / "elsewhere.sqlite")
    gid = lab.create_grid("noise", grid.noise_grid("digits", ["pfml"], [0.0], [0, 1], base={"epochs": 1}))
    assert worker.run_grid(gid, lab, quick) == "done"
    assert cli.main(["lab-export", str(gid), str(tmp_path / "o.csv"), "--storage", lab.url]) == 0
    assert capsys.readouterr().out == f"wrote 2 rows to {tmp_path / 'o.csv'}\n"
