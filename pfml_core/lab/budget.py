"""A visitor's share of the lab: the runs x epochs (run-epochs) that one session's grids
may hold queued or running at once, PFML_MAX_LAB_RUN_EPOCHS (default 2,000: the default
grids, 12-18 runs x 30 epochs, fit several times over), so no student holds the lab for
hours. The operator's CLI has no owner and no budget."""
from __future__ import annotations

from pfml_core import guards
from pfml_core.lab.grid import size

ENV = "PFML_MAX_LAB_RUN_EPOCHS"
DEFAULT = 2000


class OverBudget(ValueError):
    """A grid that would take a session past its budget (the message has the numbers)."""


def limit() -> int:
    """PFML_MAX_LAB_RUN_EPOCHS when set, else DEFAULT."""
    return guards.env_count(ENV, DEFAULT)


def epochs(spec: dict) -> int:
    return max(1, int(spec.get("config", {}).get("epochs", 1) or 1))


def held(spec: dict, counts: dict) -> int:
    """Run-epochs an active grid still holds: its unfinished runs whole."""
    return max(size(spec) - counts.get("done", 0) - counts.get("pruned", 0), 0) * epochs(spec)


def check(have: int, spec: dict) -> None:
    """OverBudget when this grid and the `have` run-epochs the owner's other active grids
    hold exceed limit()."""
    cap, runs = limit(), size(spec)
    new = runs * epochs(spec)
    if new + have <= cap:
        return
    said = f"this grid is {runs:,} run{'s' if runs != 1 else ''} x {epochs(spec):,} epochs = {new:,} run-epochs"
    if have:
        said += f", and your grids still queued or running hold {have:,} more"
    end = ": wait for them to finish or cancel one" if have and new <= cap else ""
    raise OverBudget(f"{said}; a visitor may queue {cap:,} (PFML_MAX_LAB_RUN_EPOCHS){end}")
