"""Fake train functions for the lab's worker tests (injected via worker --train-fn): fast,
deterministic, and controllable, so tests can catch a worker mid-run. Their runs record
known label margins on rows of the digits set, so the page's memorization curves and
suspect labels can be checked against hand-computed values."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from pfml_core.eval.label_margin import TrainMargins

N_ROWS, N_CLASSES, EPOCHS = 40, 5, 3


def expected_r1(config: dict) -> float:
    """The R@1 the fakes report: a known function of the config, so tests can check that
    each run's result landed on its own row."""
    lp = config.get("loss_params") or {}
    return round(0.5 + 0.01 * config["seed"] - 0.3 * config["noise"] + 0.001 * lp.get("alpha", 0), 6)


def flipped_rows(noise: float) -> np.ndarray:
    """The fake's flipped rows: the first round(noise * N_ROWS)."""
    return np.arange(N_ROWS) < round(noise * N_ROWS)


def fake_margin(epoch: int, flipped: np.ndarray) -> np.ndarray:
    """Clean rows +0.5 at every epoch; flipped rows -0.5 + 0.3 * epoch (memorized from
    epoch 2 on), with a tie-free offset of 0.001 per row."""
    return np.where(flipped, -0.5 + 0.3 * epoch, 0.5) + 0.001 * np.arange(len(flipped))


def margins(epoch: int, noise: float) -> TrainMargins:
    """Digits rows 0..N_ROWS-1, given label row % 5 (flipped rows: +1), rival the next class."""
    flipped = flipped_rows(noise)
    true = np.arange(N_ROWS) % N_CLASSES
    labels = np.where(flipped, (true + 1) % N_CLASSES, true)
    margin = fake_margin(epoch, flipped).astype(np.float32)
    rival = np.where(flipped, true, (labels + 1) % N_CLASSES)
    sim = np.zeros((N_ROWS, N_CLASSES), dtype=np.float32)
    sim[np.arange(N_ROWS), rival] = 0.2
    sim[np.arange(N_ROWS), labels] = 0.2 + margin
    return TrainMargins(margin, rival, sim, labels, true, flipped, np.arange(N_ROWS))


def _result(config: dict, stopped: bool = False, on_epoch=None):
    r1 = expected_r1(config)
    history = []
    for e in range(EPOCHS + 1):
        peak_first = r1 + 0.05 * (EPOCHS - e)  # held-out R@1 falls: the window is epoch 1
        snap = SimpleNamespace(epoch=e, seconds=0.01, metrics={"R@1": peak_first, "R@2": r1 + 0.1},
                               train_flipped=None, margins=margins(e, config["noise"]))
        history.append(snap)
        if on_epoch is not None:
            on_epoch(snap)
    return SimpleNamespace(history=history, stopped=stopped,
                           config=SimpleNamespace(noise=config["noise"]))


def quick(config: dict, should_stop=None, on_epoch=None):
    return _result(config, on_epoch=on_epoch)


def blocking(config: dict, should_stop=None, on_epoch=None):
    """Seed 1 reports one finished epoch, then runs until stopped (or killed); other seeds
    finish at once."""
    if config["seed"] == 1 and on_epoch is not None:
        on_epoch(SimpleNamespace(epoch=1))
    while config["seed"] == 1:
        if should_stop is not None and should_stop():
            return _result(config, stopped=True)
        time.sleep(0.02)
    return _result(config, on_epoch=on_epoch)


def failing(config: dict, should_stop=None, on_epoch=None):
    """Seed 1 raises, the others finish."""
    if config["seed"] == 1:
        raise RuntimeError("boom: fake training failure")
    return _result(config, on_epoch=on_epoch)


def paced(config: dict, should_stop=None, on_epoch=None, seconds: float = 0.0):
    """Epochs of `seconds` each whose held-out R@1 rises with alpha (0.1 per unit, +0.02 per
    epoch), stopping when asked (a pruned or cancelled trial)."""
    alpha = (config.get("loss_params") or {}).get("alpha", 0.0)
    history = []
    for e in range(EPOCHS + 1):
        time.sleep(seconds if e else 0.0)
        snap = SimpleNamespace(epoch=e, seconds=seconds, train_flipped=None, margins=margins(e, config["noise"]),
                               metrics={"R@1": round(0.1 * alpha + 0.02 * e, 6), "R@2": 0.9})
        history.append(snap)
        if on_epoch is not None:
            on_epoch(snap)
        if e and should_stop is not None and should_stop():
            break
    return SimpleNamespace(history=history, stopped=len(history) <= EPOCHS,
                           config=SimpleNamespace(noise=config["noise"]))


def slow(config: dict, should_stop=None, on_epoch=None):
    """paced() at 0.4 s per epoch: long enough to kill a worker mid-trial."""
    return paced(config, should_stop, on_epoch, seconds=0.4)
