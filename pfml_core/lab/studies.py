"""Every lab grid (noise lab, sweep) is an Optuna study and every run a trial, in one Optuna
storage: a SQLite file in the runs folder by default, or any Optuna storage URL
(PFML_LAB_STORAGE, --storage) that workers on many machines share. Liveness and retries
are Optuna's heartbeat; `Lab` reads a study as the pages and the CLI show it."""
from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
import sqlalchemy
from optuna.trial import TrialState

from pfml_core.data import faults
from pfml_core.lab import artifacts, budget, store_file
from pfml_core.lab.grid import size
from pfml_core.lab.procs import local_worker_alive
from pfml_core.training.run_folder import runs_dir

ENV = "PFML_LAB_STORAGE"
HEARTBEAT_S, GRACE_S = 2, 10  # a killed worker's trial is retried about 10 s later
ACTIVE = ("queued", "running")
DUPLICATE = "duplicate_of"  # user attr of a trial that drew a grid point an earlier one holds
# what a storage that cannot be read or written raises (data.faults.describe says why)
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)
optuna.logging.set_verbosity(optuna.logging.WARNING)
# heartbeats and their retry callback are marked experimental; they are what this module needs
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def default_path() -> Path:
    return runs_dir() / "studies.sqlite"


def storage_url(url: str | None = None) -> str:
    if url or os.environ.get(ENV):
        return url or os.environ[ENV]
    default_path().parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{default_path()}"


KEPT = ("config",)  # user attrs a retried run keeps: its result, error and flags go


def retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a copy of a failed trial, as Optuna's retry callback does (same grid point)."""
    system_attrs = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs}
    system_attrs["retry_history"] = [*system_attrs["retry_history"], trial.number]
    system_attrs = {k: v for k, v in system_attrs.items() if not k.startswith("artifacts:")}
    study.add_trial(optuna.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k in KEPT}, system_attrs=system_attrs))


class Retry(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose worker stopped beating, except in a cancelled grid."""

    def __call__(self, study, trial) -> None:
        if not study.user_attrs.get("cancelled") and len(trial.system_attrs.get("retry_history", [])) < 3:
            retry(study, trial)


_RECOVERED: dict[str, Path] = {}  # a damaged file kept aside, told to the next Lab only


@functools.lru_cache(maxsize=4)
def _storage(url: str) -> optuna.storages.RDBStorage:
    if (kept := store_file.check_sqlite(url)) is not None:
        _RECOVERED[url] = kept
    sqlite = url.startswith("sqlite")
    kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    make = lambda: optuna.storages.RDBStorage(  # noqa: E731
        url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
        heartbeat_stale_trial_callback=Retry())
    try:
        storage = make()
    except sqlalchemy.exc.IntegrityError:  # another process created the same new storage just now
        storage = make()
    if sqlite:  # WAL: readers never wait for a worker's write, and a commit costs no fsync
        sqlalchemy.event.listen(storage.engine, "connect", _wal)
        storage.engine.dispose()
    return storage


def _wal(conn, _record) -> None:
    with contextlib.suppress(sqlite3.OperationalError):  # a read-only disk: SQLite's default journal
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")


def run_status(t: optuna.trial.FrozenTrial, retried: set[int]) -> str:
    if t.state == TrialState.FAIL:
        return ("retried" if t.number in retried else
                "cancelled" if t.user_attrs.get("cancelled") else "failed")
    return {TrialState.WAITING: "queued", TrialState.RUNNING: "running",
            TrialState.COMPLETE: "done", TrialState.PRUNED: "pruned"}[t.state]


def as_run(t: optuna.trial.FrozenTrial, retried: set[int]) -> dict:
    """A trial as the pages' run: id, idx, params, config, status, metrics, error, times,
    progress (its last reported epoch) and the R@1 curve of its reports."""
    stamp = lambda d: d.timestamp() if d else None  # noqa: E731
    metrics = t.user_attrs.get("metrics")
    if metrics is None and t.intermediate_values:
        metrics = {"R@1 curve": [t.intermediate_values[k] for k in sorted(t.intermediate_values)]}
    return {"id": t._trial_id, "idx": t.number, "params": dict(t.params), "status": run_status(t, retried),
            "config": t.user_attrs.get("config", {}), "metrics": metrics,
            "error": t.user_attrs.get("error"), "started": stamp(t.datetime_start),
            "finished": stamp(t.datetime_complete), "worker": t.user_attrs.get("worker"),
            "progress": max(t.intermediate_values, default=0)}


class Lab:
    """One Optuna storage, read as grids of runs. `recovered` is where a damaged SQLite file
    was kept (for a one-line notice), else None."""

    def __init__(self, url: str | None = None):
        self.url = storage_url(url)
        with faults.said("the lab store could not be opened"):
            self.storage = _storage(self.url)
            self.artifacts = artifacts.DatabaseArtifactStore(self.storage)
        self.recovered = _RECOVERED.pop(self.url, None)

    def study(self, grid_id: int, sampler=None, pruner=None) -> optuna.Study:
        return optuna.load_study(study_name=self.grid(grid_id)["name"], storage=self.storage,
                                 sampler=sampler, pruner=pruner)

    def create_grid(self, kind: str, spec: dict, owner: str | None = None) -> int:
        """A new study for the grid spec (lab.grid.noise_grid / sweep_grid); returns its id.
        owner: the session that may cancel it, within budget.limit() run-epochs."""
        if owner is not None:
            budget.check(self.held(owner), spec)
        name = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
        study = optuna.create_study(study_name=name, storage=self.storage, direction="maximize")
        for key, value in {"kind": kind, "spec": spec, "owner": owner, "created": time.time()}.items():
            study.set_user_attr(key, value)
        return study._study_id

    def held(self, owner: str) -> int:
        return sum(budget.held(g["spec"], g["counts"]) for g in self.grids()
                   if g.get("owner") == owner and g["status"] in ACTIVE)

    def _trials(self, study_id: int) -> list[optuna.trial.FrozenTrial]:
        """The study's trials as runs: a duplicate draw of a grid point never ran, so it is none."""
        return [t for t in self.storage.get_all_trials(study_id, deepcopy=False)
                if DUPLICATE not in t.user_attrs]

    def _grid(self, s: optuna.study.FrozenStudy, live: bool) -> dict:
        trials = self._trials(s._study_id)
        retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
        counts: dict[str, int] = {}
        for t in trials:
            counts[run_status(t, retried)] = counts.get(run_status(t, retried), 0) + 1
        a = s.user_attrs
        g = {"id": s._study_id, "name": s.study_name, "kind": a.get("kind", "sweep"),
             "spec": a.get("spec", {}), "owner": a.get("owner"), "created": a.get("created", 0.0),
             "queued_at": a.get("queued_at"), "pid": a.get("pid"), "counts": counts}
        left = max(size(g["spec"]) - counts.get("done", 0) - counts.get("pruned", 0), 0) if g["spec"] else 0
        g["status"] = ("cancelled" if a.get("cancelled") else
                       "running" if counts.get("running") or live else
                       "done" if left == 0 else
                       "queued" if a.get("queued_at") and not a.get("launched") else
                       "failed" if trials or a.get("launched") else "queued")
        stopped = counts.get("failed", 0) + counts.get("cancelled", 0) if g["spec"].get("mode", "grid") == "grid" else 0
        g["counts"]["queued"] = 0 if g["status"] == "cancelled" else left - counts.get("running", 0) - stopped
        g["counts"] = {k: v for k, v in g["counts"].items() if v > 0}
        return g

    def grids(self, kind: str | None = None) -> list[dict]:
        """Every grid, newest first, with its status and run counts per state."""
        studies = [s for s in self.storage.get_all_studies() if "kind" in s.user_attrs]
        out = [self._grid(s, local_worker_alive(s.user_attrs.get("pid")))
               for s in studies if kind is None or s.user_attrs["kind"] == kind]
        return sorted(out, key=lambda g: g["id"], reverse=True)

    def grid(self, grid_id: int | str) -> dict:
        """One grid by id or study name; ValueError when the storage has none such."""
        s = self.storage
        try:
            sid = int(grid_id) if str(grid_id).isdigit() else s.get_study_id_from_name(str(grid_id))
            study = SimpleNamespace(_study_id=sid, study_name=s.get_study_name_from_id(sid),
                                    user_attrs=s.get_study_user_attrs(sid))
        except KeyError:
            study = None
        if study is None or "kind" not in study.user_attrs:
            raise ValueError(f"grid {str(grid_id)!r} is not in the lab's storage")
        return self._grid(study, local_worker_alive(study.user_attrs.get("pid")))

    def runs(self, grid_id: int) -> list[dict]:
        """The grid's trials as runs, then one 'queued' placeholder per run not yet asked for."""
        g = self.grid(grid_id)
        trials = self._trials(g["id"])
        retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
        runs = [as_run(t, retried) for t in trials]
        waiting = g["counts"].get("queued", 0) - sum(r["status"] == "queued" for r in runs)
        base = g["spec"].get("config", {})
        runs += [{"id": None, "idx": len(trials) + i, "params": {}, "config": base, "status": "queued",
                  "metrics": None, "error": None, "started": None, "finished": None, "progress": 0}
                 for i in range(max(waiting, 0))]
        return runs

    def samples(self, run_id: int) -> dict | None:
        """A run's per-sample table (its ranked suspect labels), from the artifact store."""
        return artifacts.read_table(self.artifacts, self.storage, run_id)

    def set(self, grid_id: int, **attrs) -> None:
        for key, value in attrs.items():
            self.storage.set_study_user_attr(int(grid_id), key, value)

    def fail_trials(self, grid_id: int, states: tuple, workers=None, **attrs) -> int:
        """Mark the grid's trials in `states` failed (of these `workers` only, when given),
        with user attrs (e.g. cancelled=True)."""
        n = 0
        for t in self._trials(int(grid_id)):
            if t.state in states and (workers is None or t.user_attrs.get("worker") in workers):
                for key, value in attrs.items():
                    self.storage.set_trial_user_attr(t._trial_id, key, value)
                try:
                    n += bool(self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL))
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # it finished meanwhile
        return n

    def cancel_grid(self, grid_id: int, owner: str | None = None) -> bool:
        """Mark the grid cancelled and its waiting trials failed (cancelled); with an owner
        token, only a grid of that owner: False (nothing changed) otherwise."""
        g = self.grid(grid_id)
        if owner is not None and g["owner"] != owner:
            return False
        self.set(g["id"], cancelled=True, queued_at=None)
        self.fail_trials(g["id"], (TrialState.WAITING,), cancelled=True)
        return True

    def close(self) -> None:
        """Nothing to release: the storage is shared by this process's Lab objects."""
