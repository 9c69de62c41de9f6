"""The workers this server starts itself (the app's Run, the CLI's --background): grids wait
in a launch queue, in the order submitted, for one of PFML_MAX_LAB_WORKERS slots; a grid
gets `parallel` worker processes. A worker process is known by host, pid and start time,
so a reused pid never passes for a live worker. Workers started elsewhere need none of it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from pfml_core import guards
from pfml_core.lab import budget
from pfml_core.lab.procs import local_worker_alive, me
from pfml_core.lab.studies import ACTIVE, DUPLICATE, Lab, retry
from pfml_core.training.run_folder import runs_dir

ENV_MAX_WORKERS = "PFML_MAX_LAB_WORKERS"
NICE = 10  # detached workers yield the cores to the visitors' pages a class is waiting on


def max_workers() -> int:
    """Grids run at once by this server's workers: PFML_MAX_LAB_WORKERS, else 1."""
    return guards.env_count(ENV_MAX_WORKERS, 1)


def spawn(lab: Lab, grid_id: int, n: int, train_fn: str | None = None,
          detached: bool = True) -> list[subprocess.Popen]:
    """n `lab-worker` processes for the grid, logging to runs_dir()/lab_logs; detached ones
    get their own session (they outlive the page that started them)."""
    name = lab.grid(grid_id)["name"]
    log_dir = runs_dir() / "lab_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pfml_core", "lab-worker", "--study", name, "--storage", lab.url,
           *(["--nice", str(NICE)] if detached else [])]
    procs = []
    for _ in range(max(int(n), 0)):
        with open(log_dir / f"{name}.log", "ab") as log:
            procs.append(subprocess.Popen(cmd + (["--train-fn", train_fn] if train_fn else []),
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=detached))
    return procs


def start(lab: Lab, grid_id: int, train_fn: str | None = None) -> list[int]:
    """Start the grid's `parallel` worker processes now; returns their pids."""
    procs = spawn(lab, grid_id, int(lab.grid(grid_id)["spec"].get("parallel", 1)), train_fn)
    lab.set(grid_id, pid=[me(p.pid) for p in procs], launched=time.time())
    return [p.pid for p in procs]


def position(lab: Lab, grid_id: int, grids: list[dict] | None = None) -> int | None:
    """1 for the next grid to start, 2 after it, ...; None when not waiting for a slot."""
    waiting = sorted((g for g in grids or lab.grids() if g["status"] == "queued" and g["queued_at"]),
                     key=lambda g: (g["queued_at"], g["id"]))
    return next((i + 1 for i, g in enumerate(waiting) if g["id"] == int(grid_id)), None)


def dispatch(lab: Lab | None = None, train_fn: str | None = None) -> list[int]:
    """Fail the trials of workers that stopped beating (Optuna retries them), then start
    workers for queued grids while fewer than max_workers() grids run here; their ids."""
    lab = lab or Lab()
    grids = lab.grids()
    for g in grids:
        if g["counts"].get("running"):
            optuna.storages.fail_stale_trials(lab.study(g["id"]))
    busy = sum(g["status"] == "running" and local_worker_alive(g["pid"]) for g in grids)
    started = []
    while busy < max_workers() and (gid := _first_waiting(grids, started)) is not None:
        start(lab, gid, train_fn)
        started.append(gid)
        busy += 1
    return started


def _first_waiting(grids: list[dict], skip: list[int]) -> int | None:
    waiting = sorted((g for g in grids if g["status"] == "queued" and g["queued_at"] and g["id"] not in skip),
                     key=lambda g: (g["queued_at"], g["id"]))
    return waiting[0]["id"] if waiting else None


def submit(grid_id: int, lab: Lab | None = None, train_fn: str | None = None,
           owner: str | None = None) -> int | None:
    """Queue a grid for this server's workers (owner: who may cancel it) and start what the
    free slots allow; its queue position, or None once it started."""
    lab = lab or Lab()
    lab.set(grid_id, queued_at=time.time(), launched=None, pid=None,
            **({"owner": owner} if owner else {}))
    dispatch(lab, train_fn)
    return position(lab, grid_id)


def cancel(grid_id: int, lab: Lab | None = None, owner: str | None = None) -> None:
    """Mark the grid cancelled, stop this server's workers of it (SIGTERM to their process
    group) and fail their running trials; a worker elsewhere stops at its next batch.
    With an owner token, only that owner's grid: PermissionError otherwise."""
    lab = lab or Lab()
    g = lab.grid(grid_id)
    if not lab.cancel_grid(grid_id, owner):
        raise PermissionError(f"grid {grid_id} was started by another session: only that "
                              "session can cancel it")
    mine = [p for p in (g["pid"] or []) if local_worker_alive([p])]
    for _, pid, _ in mine:
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    lab.fail_trials(g["id"], (TrialState.RUNNING,), workers={f"{h}:{p}" for h, p, _ in mine}, cancelled=True)
    dispatch(lab)


def reopen(grid_id: int, lab: Lab, owner: str | None = None) -> int:
    """Queue copies of a stopped grid's failed and cancelled runs (ValueError while it runs
    or waits, when nothing is left, or past the owner's budget); returns the runs left."""
    g = lab.grid(grid_id)
    if g["status"] in ACTIVE:
        raise ValueError(f"grid {grid_id} is {g['status']}: cancel it or let it finish")
    left = budget.held(g["spec"], g["counts"]) // budget.epochs(g["spec"])
    if not left:
        raise ValueError(f"grid {grid_id} is {g['status']}: no run is left to resume")
    if owner is not None:
        budget.check(lab.held(owner), {**g["spec"], "n_trials": left, "mode": "search"})
    study = lab.study(g["id"])
    lab.set(g["id"], cancelled=False)
    if g["spec"].get("mode", "grid") == "grid":
        retried = {n for t in study.get_trials(deepcopy=False) for n in t.system_attrs.get("retry_history", [])}
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.number not in retried and t.params and DUPLICATE not in t.user_attrs:
                retry(study, t)
    return left


def resume(grid_id: int, lab: Lab | None = None, train_fn: str | None = None,
           owner: str | None = None) -> int | None:
    """reopen() and queue the grid for a worker; its queue position, or None once started."""
    lab = lab or Lab()
    reopen(grid_id, lab, owner)
    return submit(grid_id, lab, train_fn, owner)
