"""Grids as Optuna studies: every point trained and recorded (values, curves, suspects from
the artifact store), workers killed mid-trial, cancel and resume, the launch queue, TPE with
pruning, the best setting, migration of an earlier store and a damaged SQLite file."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from pfml_core.cli import build_parser
from pfml_core.lab import best, grid, launch, migrate, worker
from pfml_core.lab.studies import Lab
from tests import lab_fakes
from tests.lab_helpers import wait_for

TINY = {"epochs": lab_fakes.EPOCHS, "max_batches_per_epoch": 1}


@pytest.fixture
def lab(runs_dir):
    return Lab(f"sqlite:///{runs_dir / 'studies.sqlite'}")


def noise(seeds=(0, 1), parallel=1):
    return grid.noise_grid("digits", ["pfml", "proxy_anchor"], [0.0, 0.2], list(seeds), base=TINY, parallel=parallel)


def test_every_point_is_trained_and_recorded_in_the_study(lab):
    gid = lab.create_grid("noise", noise())
    assert worker.run_grid(gid, lab, lab_fakes.quick) == "done"
    runs = lab.runs(gid)
    assert sorted((r["params"]["loss"], r["params"]["noise"], r["params"]["seed"]) for r in runs) == sorted(
        (loss, n, s) for loss in ("pfml", "proxy_anchor") for n in (0.0, 0.2) for s in (0, 1))
    for r in runs:
        assert r["status"] == "done" and r["metrics"]["R@1"] == pytest.approx(lab_fakes.expected_r1(r["config"]))
        assert r["progress"] == lab_fakes.EPOCHS  # each epoch's R@1 reported to Optuna
        first_clean = round(r["params"]["noise"] * lab_fakes.N_ROWS)  # clean rows: 0.5 + 0.001 * row
        mean_row = (first_clean + lab_fakes.N_ROWS - 1) / 2
        assert r["metrics"]["curves"]["margin_clean"][-1] == pytest.approx(0.5 + 0.001 * mean_row, abs=1e-6)
    noisy = next(r for r in runs if r["params"]["noise"] == 0.2)
    table = lab.samples(noisy["id"])  # from the artifact store, not a folder
    assert len(table["row"]) == lab_fakes.N_ROWS and sum(table["flipped"]) == round(0.2 * lab_fakes.N_ROWS)
    trial = lab.study(gid).trials[0]
    assert trial.value == pytest.approx(trial.user_attrs["metrics"]["R@1"])
    assert lab.grid(gid)["counts"] == {"done": 8}


def _worker(lab, name, fn="tests.lab_fakes:slow"):
    return subprocess.Popen([sys.executable, "-m", "pfml_core", "lab-worker", "--study", name,
                             "--storage", lab.url, "--train-fn", fn], cwd=os.getcwd(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_has_its_point_retried_and_the_grid_completes(lab):
    gid = lab.create_grid("noise", grid.noise_grid("digits", ["pfml", "proxy_anchor"], [0.0, 0.2, 0.4],
                                                   [0, 1], base=TINY))
    name = lab.grid(gid)["name"]
    procs = {p.pid: p for p in (_worker(lab, name) for _ in range(3))}
    running = wait_for(lambda: next((r for r in lab.runs(gid) if r["status"] == "running" and r["worker"]), None), 90,
                       "a worker's first trial")
    victim = procs.pop(int(running["worker"].rsplit(":", 1)[1]))
    victim.send_signal(signal.SIGKILL)
    for p in procs.values():
        assert p.wait(120) == 0, p.stdout.read().decode()[-2000:]
    runs = lab.runs(gid)
    done = {(r["params"]["loss"], r["params"]["noise"], r["params"]["seed"]) for r in runs if r["status"] == "done"}
    assert len(done) == 12 and lab.grid(gid)["status"] == "done"
    killed = [r for r in runs if r["worker"] and r["worker"].endswith(f":{victim.pid}") and r["status"] != "done"]
    assert [r["status"] for r in killed] == ["retried"]


def test_cancel_is_the_owners_and_resume_runs_what_is_left(lab):
    gid = lab.create_grid("noise", noise(), owner="a" * 32)
    assert worker.run_grid(gid, lab, lab_fakes.failing) == "failed"  # seed 1 raises
    g = lab.grid(gid)
    assert g["counts"] == {"done": 4, "failed": 4}  # a failed point waits for Resume, not a worker
    assert "boom" in next(r for r in lab.runs(gid) if r["status"] == "failed")["error"]
    with pytest.raises(PermissionError):
        launch.cancel(gid, lab, owner="b" * 32)
    launch.reopen(gid, lab)
    assert worker.run_grid(gid, lab, lab_fakes.quick) == "done"
    assert lab.grid(gid)["counts"] == {"done": 8, "retried": 4}
    with pytest.raises(ValueError, match="no run is left"):
        launch.reopen(gid, lab)


def test_a_cancelled_grid_stops_between_batches_and_keeps_its_finished_runs(lab):
    gid = lab.create_grid("noise", noise(), owner="a" * 32)
    lab.cancel_grid(gid, owner="a" * 32)
    assert worker.run_grid(gid, lab, lab_fakes.quick) == "cancelled"
    assert lab.runs(gid) == [] and lab.grid(gid)["counts"] == {}
    g2 = lab.create_grid("noise", noise())
    stop = {"n": 0}

    def cancel_after_two(config, should_stop=None, on_epoch=None):
        stop["n"] += 1
        if stop["n"] == 3:
            lab.cancel_grid(g2)
            while not should_stop():
                time.sleep(0.05)
        return lab_fakes.quick(config, should_stop, on_epoch)

    assert worker.run_grid(g2, lab, cancel_after_two) == "cancelled"
    assert sorted(r["status"] for r in lab.runs(g2)) == ["cancelled", "done", "done"]
    assert launch.reopen(g2, lab) == 6 and worker.run_grid(g2, lab, lab_fakes.quick) == "done"


def test_the_launch_queue_starts_one_grid_at_a_time(lab, monkeypatch):
    started = []
    monkeypatch.setattr(launch, "start", lambda lab_, gid, train_fn=None: started.append(gid) or
                        lab_.set(gid, pid=[launch.me()], launched=time.time()))
    a, b = (lab.create_grid("noise", noise()) for _ in range(2))
    assert launch.submit(a, lab) is None and started == [a]
    assert launch.submit(b, lab) == 1 and lab.grid(b)["status"] == "queued"
    lab.set(a, pid=None)  # a's worker ended (a is not done: it failed)
    assert launch.dispatch(lab) == [b] and launch.position(lab, b) is None


def test_tpe_prunes_and_the_best_setting_is_a_train_command(lab):
    spec = grid.sweep_grid("digits", [1, 2, 3, 4, 5], [0.1, 0.2], n_trials=12, base=TINY)
    gid = lab.create_grid("sweep", spec)
    assert worker.run_grid(gid, lab, lab_fakes.paced) == "done"
    runs = lab.runs(gid)
    states = [r["status"] for r in runs]
    assert states.count("done") + states.count("pruned") == 12 and states.count("pruned") >= 1
    pruned = next(r for r in runs if r["status"] == "pruned")
    assert pruned["progress"] < lab_fakes.EPOCHS  # stopped early: fewer epochs reported
    b = best.best_setting(runs, spec)
    assert b["setting"]["alpha"] == 5  # the fake's R@1 rises with alpha
    args = build_parser().parse_args(b["command"].split()[3:])
    assert (args.alpha, args.data, args.epochs, args.max_batches) == (5.0, "digits", TINY["epochs"], 1)


def test_settings_mark_ties_within_the_seeds_spread():
    runs = [{"id": i, "status": "done", "params": {"alpha": a, "seed": s}, "config": {"seed": s},
             "metrics": {"R@1": r}} for i, (a, s, r) in enumerate(
                [(1, 0, 0.50), (1, 1, 0.60), (3, 0, 0.56), (3, 1, 0.58), (5, 0, 0.30), (5, 1, 0.32)])]
    t = best.settings(runs, ["alpha", "seed"]).set_index("alpha")
    assert t.loc[3, "best"] and t.loc[3, "R@1 mean"] == pytest.approx(0.57)
    # alpha 1: gap 0.02 <= its spread std(0.5, 0.6) = 0.0707; alpha 5: gap 0.26 > 0.0141
    assert t.loc[1, "tied"] and not t.loc[5, "tied"] and t.loc[1, "gap"] == pytest.approx(0.02)
    one_seed = best.settings([r for r in runs if r["params"]["seed"] == 0], ["alpha"]).set_index("alpha")
    assert not one_seed.loc[1, "tied"]  # one seed: no spread, nothing is tied


def _old_store(path):
    c = sqlite3.connect(path)
    c.executescript("""CREATE TABLE grids (id INTEGER PRIMARY KEY, kind TEXT, name TEXT, spec TEXT,
        status TEXT, created REAL, pid INTEGER, finished REAL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY, grid_id INTEGER, idx INTEGER, params TEXT, config TEXT,
        status TEXT, metrics TEXT, started REAL, finished REAL, error TEXT, worker_pid INTEGER);
        CREATE TABLE run_samples (run_id INTEGER PRIMARY KEY, data TEXT);""")
    spec = {"data": "digits", "losses": ["pfml"], "noise_rates": [0.2], "seeds": [0, 1], "base": TINY}
    c.execute("INSERT INTO grids VALUES (1, 'noise', NULL, ?, 'failed', 1.0e9, NULL, NULL)", (json.dumps(spec),))
    cfg = grid.config_for({"kind": "noise", **spec}, {"loss": "pfml", "noise": 0.2, "seed": 0})
    c.execute("INSERT INTO runs VALUES (1, 1, 0, ?, ?, 'done', ?, 1, 2, NULL, 7)",
              (json.dumps({"loss": "pfml", "noise": 0.2, "seed": 0}), json.dumps(cfg),
               json.dumps({"R@1": 0.8, "R@1 curve": [0.1, 0.5, 0.8]})))
    c.execute("INSERT INTO runs VALUES (2, 1, 1, ?, ?, 'running', NULL, 1, NULL, NULL, 7)",
              (json.dumps({"loss": "pfml", "noise": 0.2, "seed": 1}), json.dumps({**cfg, "seed": 1})))
    c.execute("INSERT INTO run_samples VALUES (1, ?)", (json.dumps({"row": [3, 1], "score": [0.9, 0.2]}),))
    c.commit()
    c.close()


def test_an_earlier_store_is_migrated_once_and_its_unfinished_runs_resume(lab, runs_dir):
    old = runs_dir / "lab.sqlite"
    _old_store(old)
    assert migrate.pending(old, lab) == 1
    assert migrate.migrate(old, lab) == {"grids": 1, "runs": 2, "skipped": 0}
    assert migrate.migrate(old, lab)["skipped"] == 1 and migrate.pending(old, lab) == 0
    gid = lab.grids()[0]["id"]
    runs = sorted(lab.runs(gid), key=lambda r: r["idx"])
    assert [r["status"] for r in runs] == ["done", "failed"]
    assert runs[0]["metrics"]["R@1"] == 0.8 and lab.study(gid).trials[0].intermediate_values == {1: 0.5, 2: 0.8}
    assert lab.samples(runs[0]["id"]) == {"row": [3, 1], "score": [0.9, 0.2]}
    assert launch.reopen(gid, lab) == 1 and worker.run_grid(gid, lab, lab_fakes.quick) == "done"


def test_a_damaged_sqlite_file_is_kept_aside_and_a_fresh_one_started(runs_dir):
    path = runs_dir / "damaged.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    lab = Lab(f"sqlite:///{path}")
    assert lab.recovered is not None and lab.recovered.exists() and lab.grids() == []
    other = runs_dir / "notes.txt"
    other.write_text("my notes")
    with pytest.raises(ValueError, match="not a lab store"):
        Lab(f"sqlite:///{other}")
    assert other.read_text() == "my notes"


def test_a_trial_in_another_state_is_shown_as_what_it_is(lab):
    gid = lab.create_grid("noise", noise(seeds=(0,)))
    study = lab.study(gid)
    t = study.ask()
    lab.fail_trials(gid, (TrialState.RUNNING,), cancelled=True)
    assert [r["status"] for r in lab.runs(gid)][0] == "cancelled" and t.number == 0


def _nice(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])  # field 19


@pytest.mark.slow  # starts two worker processes
def test_workers_the_server_starts_run_at_a_lower_priority(lab):
    """A class's pages come first: the server's detached workers are niced, a CLI's helpers
    (foreground, someone waiting at a terminal) are not."""
    gid = lab.create_grid("noise", noise())
    (pid,) = launch.start(lab, gid, "tests.lab_fakes:slow")
    wait_for(lambda: lab.grid(gid)["counts"].get("running"), 60, "the worker's first trial")
    assert _nice(pid) == _nice(os.getpid()) + launch.NICE
    launch.cancel(gid, lab)
    (helper,) = launch.spawn(lab, lab.create_grid("noise", noise()), 1, "tests.lab_fakes:quick",
                             detached=False)
    assert _nice(helper.pid) == _nice(os.getpid())
    helper.wait(60)


def test_two_draws_of_one_grid_point_train_it_once_and_show_one_run(lab):
    """Two workers asking at once can both draw a grid's last point (Optuna's GridSampler
    hands out a running point once none is left): the later trial gives way, the lab shows
    one run of the point, and Resume never queues the duplicate."""
    from pfml_core.lab import trainer

    gid = lab.create_grid("noise", noise(seeds=(0,)))
    study = lab.study(gid)
    point = {"loss": "pfml", "noise": 0.0, "seed": 0}
    for _ in range(2):
        study.enqueue_trial(point)
    first, second = study.ask(), study.ask()
    spec = lab.grid(gid)["spec"]
    for key, values in spec["space"].items():  # the first worker's trial began
        first.suggest_categorical(key, values)
    run = trainer.objective(lab, spec, lab_fakes.quick)
    with pytest.raises(trainer.RunFailed, match=f"held by trial {first.number}"):
        run(second)
    study.tell(second, state=TrialState.FAIL)
    study.tell(first, run(first))
    runs = [r for r in lab.runs(gid) if r["id"] is not None]
    assert [(r["idx"], r["params"], r["status"]) for r in runs] == [(first.number, point, "done")]
    assert lab.grid(gid)["counts"] == {"done": 1, "queued": 3}
    launch.reopen(gid, lab)  # the other 3 points wait for a worker; the duplicate is not queued
    assert not [t for t in study.get_trials() if t.state == TrialState.WAITING]
