"""One trial of a grid: the default train function, and the Optuna objective that trains a
point of the grid, reports each epoch's held-out R@1 (curves, ETA and the pruner read it),
and keeps the run's metrics and memorization curves as trial attributes and its ranked
suspect labels in the artifact store. A run that raises fails its trial and the worker goes
on; a storage fault (a full disk) raises data.faults.Fault, which stops the worker."""
from __future__ import annotations

import os
import socket
import time
import traceback

import optuna

from pfml_core.data import faults
from pfml_core.lab import artifacts
from pfml_core.lab.grid import config_for
from pfml_core.lab.measure import run_metrics, run_suspects
from pfml_core.lab.runtime import dataset, train_class_names
from pfml_core.lab.studies import DUPLICATE


def train_run(config: dict, should_stop, on_epoch=None):
    """The default train function: the training engine on a TrainConfig dict, on the data
    this process already loaded. On the CPU the lab's MLP trains on one thread: its steps
    are too small to share, and a second thread only contends with other work on the cores."""
    import torch

    from pfml_core.data.benchmarks import BENCHMARKS
    from pfml_core.training.engine import TrainConfig, resolve_device, train
    from pfml_core.training.models import resolve

    cfg = TrainConfig.from_dict(config).validate()
    data = None if cfg.data in BENCHMARKS else dataset(cfg.data)
    if (data is not None and resolve_device(cfg.device).type == "cpu"
            and resolve(cfg.model, data.X.shape[1:]) == "mlp"):
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)  # numpy's BLAS and scikit-learn's OpenMP (evaluation) too
    return train(cfg, callback=on_epoch, should_stop=should_stop, dataset=data)


class RunFailed(Exception):
    """A run that raised: its trial fails, the worker goes on."""


class StopPoll:
    """should_stop() for the engine: True once the grid is cancelled or the pruner spoke.
    Reads the study at most every `every` seconds."""

    def __init__(self, storage, study_id: int, every: float = 0.5):
        self.storage, self.study_id, self.every = storage, study_id, every
        self._last, self.cancelled, self.pruned = 0.0, False, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self._last >= self.every:
            self._last = now
            self.cancelled = bool(self.storage.get_study_user_attrs(self.study_id).get("cancelled"))
        return self.cancelled or self.pruned


def _record(lab, trial, config: dict, result, seconds: float) -> dict:
    """The finished run's metrics and curves on the trial; its suspects as an artifact."""
    metrics = run_metrics(result, seconds)
    summary, samples = (run_suspects(result, train_class_names(config))
                        if hasattr(result, "config") else ({}, None))
    if samples is not None:
        artifacts.write_table(lab.artifacts, trial, samples.to_dict(orient="list"))
    metrics = {**metrics, **summary}
    trial.set_user_attr("metrics", metrics)
    return metrics


def _done_before(trial: optuna.Trial, params: dict):
    """A finished trial of the study with these very params (training is seeded), or None."""
    done = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return next((t for t in done if t.params == params and t.value is not None), None)


def _held_before(trial: optuna.Trial, params: dict):
    """An earlier trial of the study that holds this grid point (running or finished), or
    None: Optuna's GridSampler hands out a running point again once none is left, and two
    workers asking at once can both draw the last one (the later trial gives way)."""
    held = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED)
    # the sampler's grid_id is stored as a trial is asked for, its params only once suggested
    mine = trial.study._storage.get_trial_system_attrs(trial._trial_id).get("grid_id")
    return next((t for t in trial.study.get_trials(deepcopy=False, states=held)
                 if t.number < trial.number and (t.params == params or mine is not None
                                                 and t.system_attrs.get("grid_id") == mine)), None)


def objective(lab, spec: dict, train_fn):
    """The Optuna objective of a grid: held-out R@1 of the trained point (maximized)."""

    def run(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_categorical(k, v) for k, v in spec["space"].items()}
        if spec.get("mode", "grid") == "grid" and (held := _held_before(trial, params)) is not None:
            trial.set_user_attr(DUPLICATE, held.number)  # the lab shows no such trial
            raise RunFailed(f"grid point held by trial {held.number}")
        config = config_for(spec, params)
        trial.set_user_attr("config", config)
        if (same := _done_before(trial, params)) is not None:  # a search drew it again: same seed, same result
            trial.set_user_attr("metrics", {**same.user_attrs.get("metrics", {}), "repeat_of": same.number})
            return float(same.value)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        stop = StopPoll(lab.storage, trial.study._study_id)

        def on_epoch(snap) -> None:
            r1 = getattr(snap, "metrics", {}).get("R@1")
            if snap.epoch > 0 and r1 is not None:
                trial.report(float(r1), int(snap.epoch))
                last = snap.epoch >= int(config.get("epochs", 1))  # a finished run is never thrown away
                stop.pruned = spec.get("mode") == "tpe" and not last and trial.should_prune()

        t0 = time.perf_counter()
        try:
            if stop():
                trial.set_user_attr("cancelled", True)
                raise RunFailed("cancelled")
            result = train_fn(config, should_stop=stop, on_epoch=on_epoch)
            if stop.cancelled:
                trial.set_user_attr("cancelled", True)
                raise RunFailed("cancelled")
            metrics = _record(lab, trial, config, result, time.perf_counter() - t0)
        except (RunFailed, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001  (any failure of one run is that run's result)
            if (cause := faults.describe(exc)) is not None:
                raise faults.Fault(cause) from None  # every later run would fail the same way
            tb = "".join(traceback.format_exception(exc))[-4000:]
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}\n{tb}")
            raise RunFailed(str(exc)) from exc
        if stop.pruned:
            raise optuna.TrialPruned()
        return float(metrics["R@1"])

    return run
