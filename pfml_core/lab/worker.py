"""A worker: `python -m pfml_core lab-worker --study NAME [--storage URL]` joins a grid's
study from any machine that reaches its storage and trains its points with Optuna's
`optimize` (its sampler: grid, random or TPE; a median pruner for TPE), until the grid is
done or cancelled, waiting out other workers' running trials. Optuna beats each running
trial's heartbeat; a killed worker's trial is failed and retried by whichever worker or
page looks next."""
from __future__ import annotations

import contextlib
import importlib
import os
import socket
import time

import optuna
from optuna.trial import TrialState

from pfml_core.data import faults
from pfml_core.lab import spare, trainer
from pfml_core.lab.grid import size
from pfml_core.lab.studies import HEARTBEAT_S, Lab
from pfml_core.lab.trainer import train_run

DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def load_train_fn(ref: str | None):
    """'package.module:function' -> that function (tests inject fakes); None -> train_run."""
    if not ref:
        return train_run
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"train_fn must look like 'package.module:function', got {ref!r}")
    return getattr(importlib.import_module(module), name)


def sampler(spec: dict) -> optuna.samplers.BaseSampler:
    mode = spec.get("mode", "grid")
    if mode == "grid":
        return optuna.samplers.GridSampler(spec["space"], seed=0)
    if mode == "random":
        return optuna.samplers.RandomSampler(seed=0)
    return optuna.samplers.TPESampler(seed=0, n_startup_trials=min(5, max(2, size(spec) // 4)))


def pruner(spec: dict) -> optuna.pruners.BasePruner:
    if spec.get("mode") == "tpe":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _unstarted(study: optuna.Study, spec: dict) -> int:
    """Points of a grid no trial has started: Optuna's GridSampler hands a second worker a
    running point again once none is left, so a worker stops here instead."""
    started = {t.system_attrs.get("grid_id") for t in study.get_trials(deepcopy=False)
               if t.state != TrialState.WAITING}
    return size(spec) - len(started - {None})


def _left(study: optuna.Study, spec: dict) -> bool:
    """Whether the grid still has a point to ask for: a waiting trial (a retry, a resumed
    run), an unstarted grid point, or fewer finished search trials than it asks."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return True
    if spec.get("mode", "grid") == "grid":
        return _unstarted(study, spec) > 0
    failed = sum(t.state == TrialState.FAIL for t in trials)
    return sum(t.state in DONE for t in trials) < size(spec) and failed < size(spec)


class _Enough:
    """Stop once the grid is cancelled or has nothing left to ask for (run_grid's loop comes
    back for a waiting retry)."""

    def __init__(self, spec: dict):
        self.spec = spec

    def __call__(self, study: optuna.Study, trial) -> None:
        if study._storage.get_study_user_attrs(study._study_id).get("cancelled") or not _left(study, self.spec):
            study.stop()


def run_grid(grid_id, lab: Lab | None = None, train_fn=None, on_run=None) -> str:
    """Train the grid's points in this process until none is left or it is cancelled;
    returns the grid's status. on_run(study, frozen_trial) after each trial."""
    lab = lab or Lab()
    g = lab.grid(grid_id)
    spec = g["spec"]
    study = lab.study(g["id"], sampler(spec), pruner(spec))
    run = _spare_freed(lab.url, trainer.objective(lab, spec, train_fn or train_run))
    keep = lambda *_: spare.keep(lab.url)  # noqa: E731  (and after each trial, while space allows)
    callbacks = [keep] + ([on_run] if on_run else []) + [_Enough(spec)]
    try:
        keep()
        while not lab.storage.get_study_user_attrs(g["id"]).get("cancelled"):
            if _left(study, spec):
                study.optimize(run, catch=(trainer.RunFailed,), callbacks=callbacks, gc_after_trial=False)
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(HEARTBEAT_S)  # another worker's trial: done soon, or stale and retried
                optuna.storages.fail_stale_trials(study)
            else:
                break
    except KeyboardInterrupt:
        lab.fail_trials(g["id"], (TrialState.RUNNING,), workers=_here(), error="interrupted (Ctrl-C)")
        raise
    except Exception as exc:  # noqa: BLE001  (only a storage fault is handled; the rest re-raised)
        if (cause := faults.describe(exc)) is None:
            raise
        spare.free(lab.url)  # a fault outside a trial (asking, telling): room to record it too
        lab.fail_trials(g["id"], (TrialState.RUNNING,), workers=_here(), error=cause)
        raise faults.Fault(cause) from None
    return lab.grid(g["id"])["status"]


def _here() -> set[str]:
    """This worker's trials (never another machine's): their `worker` attribute."""
    return {f"{socket.gethostname()}:{os.getpid()}"}


def _spare_freed(url: str, run):
    """The objective, which on a storage fault frees the spare file (spare.py) before Optuna
    records its trial failed, with the fault as its error; then raises data.faults.Fault."""

    def objective(trial) -> float:
        try:
            return run(trial)
        except Exception as exc:  # noqa: BLE001  (a storage fault; anything else passes)
            if (cause := faults.describe(exc)) is None:
                raise
            spare.free(url)
            with contextlib.suppress(Exception):  # the disk may refuse even that: still a Fault
                trial.set_user_attr("error", cause)
            raise faults.Fault(cause) from None

    return objective
