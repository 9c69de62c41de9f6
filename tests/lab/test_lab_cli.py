"""`python -m pfml_core noise-lab | sweep | lab-worker | lab-export | lab-resume | lab-best`:
foreground grids write the study the app reads, CSV export matches it, lab-resume finishes a
stopped grid, bad input (an unknown grid, one still running) is one line and exit code 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pfml_core import cli
from pfml_core.lab import grid as lab
from pfml_core.lab import launch, worker
from pfml_core.lab.studies import Lab
from tests.lab_fakes import EPOCHS, expected_r1, quick
from tests.lab_helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "digits", "--epochs", "1", "--max-batches", "2", "--eval-subset", "200",
        "--device", "cpu"]


def _lab(path: Path) -> Lab:
    return Lab(f"sqlite:///{path}")


@pytest.mark.slow
def test_noise_lab_subprocess_writes_the_study_and_csv(tmp_path):
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "pfml_core", "noise-lab", *TINY, "--losses", "pfml,proxy_anchor",
         "--noise", "0,0.2", "--seeds", "0", "--export", str(out)],
        cwd=ROOT, env={"PFML_RUNS_DIR": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    store = _lab(tmp_path / "runs" / "studies.sqlite")
    (grid,) = store.grids()
    runs = store.runs(grid["id"])
    assert grid["kind"] == "noise" and grid["status"] == "done"
    assert sorted((r["params"]["loss"], r["params"]["noise"]) for r in runs) == [
        ("pfml", 0.0), ("pfml", 0.2), ("proxy_anchor", 0.0), ("proxy_anchor", 0.2)]
    csv = pd.read_csv(out)
    assert list(csv["R@1"]) == pytest.approx([r["metrics"]["R@1"] for r in runs])
    assert "R@1 mean" in proc.stdout and f"grid {grid['id']}: done" in proc.stdout


@pytest.mark.slow
def test_grid_sweep_foreground_export_and_best(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    rc = cli.main(["sweep", *TINY, "--alpha", "1,3", "--delta", "0.2", "--delta-gap", "0,0.05",
                   "--proxies", "2", "--mode", "grid"])
    assert rc == 0
    (grid,) = Lab().grids("sweep")
    runs = sorted(Lab().runs(grid["id"]), key=lambda r: (r["params"]["alpha"], r["params"]["delta_gap"]))
    assert [(r["params"]["alpha"], r["params"]["delta_gap"]) for r in runs] == [
        (1.0, 0.0), (1.0, 0.05), (3.0, 0.0), (3.0, 0.05)]
    assert runs[1]["config"]["loss_params"]["delta_rep"] == pytest.approx(0.25)
    assert all(r["status"] == "done" for r in runs)
    assert cli.main(["lab-export", str(grid["id"]), str(tmp_path / "s.csv")]) == 0
    assert sorted(pd.read_csv(tmp_path / "s.csv")["alpha"]) == [1.0, 1.0, 3.0, 3.0]
    capsys.readouterr()
    assert cli.main(["lab-best", grid["name"]]) == 0
    said, command = capsys.readouterr().out.strip().splitlines()
    top = max(runs, key=lambda r: r["metrics"]["R@1"])
    args = cli.build_parser().parse_args(command.split()[3:])
    assert (args.alpha, args.delta_rep) == (top["params"]["alpha"], top["config"]["loss_params"]["delta_rep"])
    assert "one seed, no spread" in said


@pytest.mark.slow
def test_background_mode_returns_and_its_worker_finishes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    assert cli.main(["noise-lab", *TINY, "--losses", "contrastive", "--noise", "0.1",
                     "--background"]) == 0
    (grid,) = Lab().grids()
    assert f"lab-worker --study {grid['name']}" in capsys.readouterr().out
    wait_for(lambda: Lab().grid(grid["id"])["status"] == "done", 120, "background grid")
    assert Lab().runs(grid["id"])[0]["metrics"]["R@1"] > 0


@pytest.mark.parametrize("argv, match", [
    (["noise-lab", "--losses", "nope", "--data", "digits"], "losses"),
    (["sweep", "--alpha", "-1", "--data", "digits"], "alpha"),
])
def test_bad_input_is_a_message(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.setenv("PFML_RUNS_DIR", str(tmp_path))
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
    assert Lab().grids() == []  # nothing half-created


def test_lab_worker_joins_a_study_by_name(tmp_path, capsys):
    store = _lab(tmp_path / "s.sqlite")
    gid = store.create_grid("noise", lab.noise_grid("digits", ["pfml"], [0.0, 0.2], [0, 1], base={"epochs": 1}))
    name = store.grid(gid)["name"]
    assert cli.main(["lab-worker", "--study", name, "--storage", store.url,
                     "--train-fn", "tests.lab_fakes:quick"]) == 0
    assert f"grid {gid} (study {name}): this worker is done; the grid has 4 done" in capsys.readouterr().out
    runs = sorted(store.runs(gid), key=lambda r: (r["params"]["noise"], r["params"]["seed"]))
    assert [r["metrics"]["R@1"] for r in runs] == [expected_r1(r["config"]) for r in runs] == [0.5, 0.51, 0.44, 0.45]


def test_noise_lab_without_flags_runs_the_default_grid(tmp_path, monkeypatch):
    from pfml_core.lab import commands, regime

    seen = {}
    monkeypatch.setattr(commands, "_execute", lambda kind, spec, args, axes: seen.update(kind=kind, spec=spec) or 0)
    assert cli.main(["noise-lab", "--store", str(tmp_path / "lab.sqlite")]) == 0
    d = regime.default_grid()
    assert seen["kind"] == "noise" and lab.size(seen["spec"]) == 2 * len(d["noise_rates"]) * 3
    assert seen["spec"]["parallel"] == d["parallel"] and seen["spec"]["space"]["seed"] == [0, 1, 2]
    cfg = seen["spec"]["config"]
    assert (cfg["model"], cfg["epochs"], cfg["max_batches_per_epoch"]) == (d["base"]["model"], regime.EPOCHS, None)
    assert cli.main(["noise-lab", "--epochs", "2", "--max-batches", "3", "--seeds", "4"]) == 0
    cfg = seen["spec"]["config"]
    assert (cfg["epochs"], cfg["max_batches_per_epoch"], cfg["seed"]) == (2, 3, 4)


def test_lab_export_writes_the_curves(tmp_path, capsys):
    store = _lab(tmp_path / "s.sqlite")
    gid = store.create_grid("noise", lab.noise_grid("digits", ["pfml", "triplet"], [0.25], [0], base={"epochs": 1}))
    assert worker.run_grid(gid, store, quick) == "done"
    assert cli.main(["lab-export", str(gid), str(tmp_path / "runs.csv"), "--storage", store.url,
                     "--curves", str(tmp_path / "curves.csv")]) == 0
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert len(curves) == 2 * (EPOCHS + 1) and list(curves["epoch"][:EPOCHS + 1]) == list(range(EPOCHS + 1))
    assert list(curves.columns) == ["run", "loss", "noise", "seed", "epoch", "R@1", "margin_flipped",
                                    "margin_clean", "memorized"]
    assert list(curves["memorized"][:EPOCHS + 1]) == [0.0, 0.0, 1.0, 1.0]  # -0.5 + 0.3 * epoch > 0
    runs_csv = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs_csv["suspect_auroc"]) == [1.0, 1.0] and "cleanlab_auroc" in runs_csv
    assert store.samples(store.runs(gid)[0]["id"])["flipped"][:10] == [True] * 10


def _stopped_grid(store: Lab) -> int:
    """A tiny grid whose seed-1 run failed: resumable."""
    base = {"epochs": 1, "max_batches_per_epoch": 2, "eval_subset": 200, "device": "cpu"}
    gid = store.create_grid("noise", lab.noise_grid("digits", ["pfml"], [0.0], [0, 1, 2], base=base))
    from tests.lab_fakes import failing

    assert worker.run_grid(gid, store, failing) == "failed"
    return gid


def test_lab_resume_finishes_a_stopped_grid(tmp_path, capsys):
    store = _lab(tmp_path / "s.sqlite")
    gid = _stopped_grid(store)
    assert cli.main(["lab-resume", str(gid), "--storage", store.url, "--train-fn", "tests.lab_fakes:quick"]) == 0
    out = capsys.readouterr().out
    assert f"grid {gid}: resuming 1 runs" in out and f"grid {gid}: done (3 of 3 runs done)" in out
    done = [r for r in store.runs(gid) if r["status"] == "done"]
    assert sorted(r["metrics"]["R@1"] for r in done) == sorted(expected_r1(r["config"]) for r in done)
    assert cli.main(["lab-resume", str(gid), "--storage", store.url]) == 2  # nothing left
    assert capsys.readouterr().err.strip() == f"error: grid {gid} is done: no run is left to resume"


def test_lab_resume_refuses_unknown_and_running_grids(tmp_path, capsys):
    store = _lab(tmp_path / "s.sqlite")
    assert cli.main(["lab-resume", "99", "--storage", store.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: grid '99' is not in the lab's storage")
    gid = _stopped_grid(store)
    store.set(gid, pid=[launch.me()])  # a live worker (this process) holds it
    assert cli.main(["lab-resume", str(gid), "--storage", store.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"grid {gid} is running" in err
