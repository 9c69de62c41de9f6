"""Fake train functions for the lab's worker tests (injected via worker --train-fn): fast,
deterministic, and controllable, so tests can catch a worker mid-run."""
from __future__ import annotations

import time
from types import SimpleNamespace


def expected_r1(config: dict) -> float:
    """The R@1 the fakes report: a known function of the config, so tests can check that
    each run's result landed on its own row."""
    lp = config.get("loss_params") or {}
    return round(0.5 + 0.01 * config["seed"] - 0.3 * config["noise"] + 0.001 * lp.get("alpha", 0), 6)


def _result(config: dict, stopped: bool = False):
    r1 = expected_r1(config)
    snap = SimpleNamespace(epoch=1, seconds=0.01, metrics={"R@1": r1, "R@2": r1 + 0.1},
                           train_flipped=None)
    return SimpleNamespace(history=[snap], stopped=stopped)


def quick(config: dict, should_stop=None):
    return _result(config)


def blocking(config: dict, should_stop=None):
    """Seed 1 runs until stopped (or killed); other seeds finish at once."""
    while config["seed"] == 1:
        if should_stop is not None and should_stop():
            return _result(config, stopped=True)
        time.sleep(0.02)
    return _result(config)


def failing(config: dict, should_stop=None):
    """Seed 1 raises, the others finish."""
    if config["seed"] == 1:
        raise RuntimeError("boom: fake training failure")
    return _result(config)
