"""`python -m pfml_core noise-lab | sweep | lab-export | lab-resume`: foreground grids write
the same store the app reads, CSV export matches the store, lab-resume finishes a stopped
grid, bad input (an unknown grid, one still alive) is a one-line message and exit code 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pfml_core import cli
from pfml_core.lab.store import Store
from tests.lab_helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "digits", "--epochs", "1", "--max-batches", "2", "--eval-subset", "200",
        "--device", "cpu"]


@pytest.mark.slow
def test_noise_lab_subprocess_writes_store_and_csv(tmp_path):
    out = tmp_path / "out.csv"
    env = dict(os.environ, PFML_RUNS_DIR=str(tmp_path / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "pfml_core", "noise-lab", *TINY, "--losses", "pfml,proxy_anchor",
         "--noise", "0,0.2", "--seeds", "0", "--export", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    store = Store(tmp_path / "runs" / "lab.sqlite")
    (grid,) = store.grids()
    runs = store.runs(grid["id"])
    assert grid["kind"] == "noise" and grid["status"] == "done"
    assert [(r["params"]["loss"], r["params"]["noise"]) for r in runs] == [
        ("pfml", 0.0), ("pfml", 0.2), ("proxy_anchor", 0.0), ("proxy_anchor", 0.2)]
    csv = pd.read_csv(out)
    assert list(csv["R@1"]) == pytest.approx([r["metrics"]["R@1"] for r in runs])
    assert "R@1 mean" in proc.stdout and f"grid {grid['id']}: done" in proc.stdout


@pytest.mark.slow
def test_sweep_foreground_and_export(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    rc = cli.main(["sweep", *TINY, "--alpha", "1,3", "--delta", "0.2", "--delta-gap", "0,0.05",
                   "--proxies", "2"])
    assert rc == 0
    (grid,) = Store().grids("sweep")
    runs = Store().runs(grid["id"])
    assert [(r["params"]["alpha"], r["params"]["delta_gap"]) for r in runs] == [
        (1.0, 0.0), (1.0, 0.05), (3.0, 0.0), (3.0, 0.05)]
    assert runs[1]["config"]["loss_params"]["delta_rep"] == pytest.approx(0.25)
    assert all(r["status"] == "done" for r in runs)
    assert cli.main(["lab-export", str(grid["id"]), str(tmp_path / "s.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "s.csv")["alpha"]) == [1.0, 1.0, 3.0, 3.0]


@pytest.mark.slow
def test_background_mode_returns_and_worker_finishes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    assert cli.main(["noise-lab", *TINY, "--losses", "contrastive", "--noise", "0.1",
                     "--background"]) == 0
    assert "worker pid" in capsys.readouterr().out
    (grid,) = Store().grids()
    wait_for(lambda: Store().grid(grid["id"])["status"] == "done", 120, "background grid")
    assert Store().runs(grid["id"])[0]["metrics"]["R@1"] > 0


@pytest.mark.parametrize("argv, match", [
    (["noise-lab", "--losses", "nope", "--data", "digits"], "losses"),
    (["sweep", "--alpha", "-1", "--data", "digits"], "alpha"),
])
def test_bad_input_is_a_message(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
    assert Store().grids() == []  # nothing half-created


def test_lab_worker_command_runs_a_stored_grid(tmp_path, capsys):
    from pfml_core.lab import grid as lab
    from tests.lab_fakes import expected_r1

    store = Store(tmp_path / "lab.sqlite")
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0, 0.2], [0, 1], base={"epochs": 1})
    gid = store.create_grid("noise", spec, runs)
    assert cli.main(["lab-worker", str(gid), "--store", str(store.path),
                     "--train-fn", "tests.lab_fakes:quick"]) == 0
    assert f"grid {gid}: done" in capsys.readouterr().out
    assert [r["metrics"]["R@1"] for r in store.runs(gid)] == [
        expected_r1(r["config"]) for r in store.runs(gid)] == [0.5, 0.51, 0.44, 0.45]


def test_noise_lab_without_flags_queues_the_default_grid(tmp_path, monkeypatch):
    from pfml_core.lab import commands, regime

    seen = {}
    monkeypatch.setattr(commands, "_execute", lambda kind, spec, runs, args, axes:
                        seen.update(kind=kind, spec=spec, runs=runs) or 0)
    assert cli.main(["noise-lab", "--store", str(tmp_path / "lab.sqlite")]) == 0
    d = regime.default_grid()
    assert seen["kind"] == "noise" and len(seen["runs"]) == 2 * len(d["noise_rates"]) * 3
    assert seen["spec"]["parallel"] == d["parallel"] and seen["spec"]["seeds"] == [0, 1, 2]
    cfg = seen["runs"][0][1]
    assert (cfg["model"], cfg["epochs"], cfg["max_batches_per_epoch"]) == (d["base"]["model"], regime.EPOCHS, None)
    assert cli.main(["noise-lab", "--epochs", "2", "--max-batches", "3", "--seeds", "4"]) == 0
    assert [(c["epochs"], c["max_batches_per_epoch"], c["seed"]) for _, c in seen["runs"]][0] == (2, 3, 4)


def test_lab_export_writes_the_curves(tmp_path, capsys):
    from pfml_core.lab import grid as lab
    from pfml_core.lab import worker
    from tests.lab_fakes import EPOCHS, quick

    store = Store(tmp_path / "lab.sqlite")
    spec, runs = lab.noise_grid("digits", ["pfml", "triplet"], [0.25], [0], base={"epochs": 1})
    gid = store.create_grid("noise", spec, runs)
    assert worker.run_grid(gid, store, quick) == "done"
    assert cli.main(["lab-export", str(gid), str(tmp_path / "runs.csv"), "--store", str(store.path),
                     "--curves", str(tmp_path / "curves.csv")]) == 0
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert len(curves) == 2 * (EPOCHS + 1) and list(curves["epoch"][:EPOCHS + 1]) == list(range(EPOCHS + 1))
    assert list(curves.columns) == ["run", "loss", "noise", "seed", "epoch", "R@1", "margin_flipped",
                                    "margin_clean", "memorized"]
    assert list(curves["memorized"][:EPOCHS + 1]) == [0.0, 0.0, 1.0, 1.0]  # -0.5 + 0.3 * epoch > 0
    runs_csv = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs_csv["suspect_auroc"]) == [1.0, 1.0] and "cleanlab_auroc" in runs_csv
    assert store.samples(store.runs(gid)[0]["id"])["flipped"][:10] == [True] * 10


def _stopped_grid(store, pid: int) -> int:
    """A tiny grid whose worker (pid) finished run 0, died in run 1 and left run 2 queued:
    its heartbeat is a minute old."""
    from pfml_core.lab import grid as lab

    base = {"epochs": 1, "max_batches_per_epoch": 2, "eval_subset": 200, "device": "cpu"}
    spec, runs = lab.noise_grid("digits", ["pfml"], [0.0], [0, 1, 2], base=base)
    gid = store.create_grid("noise", spec, runs)
    assert store.mark_running(gid, pid)
    store.end_run(store.claim_next(gid, pid)["id"], "done", {"R@1": 0.5})
    store.claim_next(gid, pid)
    store._conn.execute("UPDATE grids SET heartbeat=heartbeat-60 WHERE id=?", (gid,))
    return gid


def test_lab_resume_finishes_a_dead_workers_grid(tmp_path, capsys):
    """The dead worker's pid is this (live) test process's: the stale heartbeat decides."""
    from tests.lab_fakes import expected_r1

    store = Store(tmp_path / "lab.sqlite")
    gid = _stopped_grid(store, os.getpid())
    assert cli.main(["lab-resume", str(gid), "--store", str(store.path),
                     "--train-fn", "tests.lab_fakes:quick"]) == 0
    out = capsys.readouterr().out
    assert f"grid {gid}: resuming 2 runs" in out and f"grid {gid}: done (3 of 3 runs done)" in out
    runs = store.runs(gid)
    assert store.grid(gid)["status"] == "done" and runs[0]["metrics"] == {"R@1": 0.5}
    assert [r["metrics"]["R@1"] for r in runs[1:]] == [expected_r1(r["config"]) for r in runs[1:]]
    assert cli.main(["lab-resume", str(gid), "--store", str(store.path)]) == 2  # nothing left
    assert capsys.readouterr().err.strip() == f"error: grid {gid} is done: no run is left to resume"


def test_lab_resume_refuses_unknown_and_live_grids(tmp_path, capsys):
    store = Store(tmp_path / "lab.sqlite")
    assert cli.main(["lab-resume", "99", "--store", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: grid_id 99 is not in the store")
    gid = _stopped_grid(store, os.getpid())
    store.beat(gid, os.getpid())  # its worker is alive again: a fresh heartbeat
    assert cli.main(["lab-resume", str(gid), "--store", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"grid {gid} is still running" in err
    assert [r["status"] for r in store.runs(gid)] == ["done", "running", "queued"]  # untouched


@pytest.mark.slow  # real training (digits, 1 epoch of 2 batches) in a fresh interpreter
def test_lab_resume_subprocess_real_training(tmp_path):
    store = Store(tmp_path / "lab.sqlite")
    gid = _stopped_grid(store, os.getpid())
    run = lambda g: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pfml_core", "lab-resume", str(g), "--store", str(store.path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    proc = run(gid)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in store.runs(gid)] == ["done"] * 3
    assert all(0 <= r["metrics"]["R@1"] <= 1 for r in store.runs(gid))
    proc = run(12345)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "grid_id 12345" in proc.stderr
