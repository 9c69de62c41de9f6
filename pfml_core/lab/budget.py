"""A visitor's share of the lab: the runs x epochs (run-epochs) that one session's grids
may hold queued or running at once, PFML_MAX_LAB_RUN_EPOCHS (default 2,000: the default
grids, 12-18 runs x 30 epochs, fit several times over), so no student holds the lab for
hours. The operator's CLI has no owner and no budget. Checked inside the store's write
transaction, so two tabs of one session cannot both slip under it."""
from __future__ import annotations

import json

from pfml_core import guards

ENV = "PFML_MAX_LAB_RUN_EPOCHS"
DEFAULT = 2000


class OverBudget(ValueError):
    """A grid that would take a session past its budget (the message has the numbers)."""


def limit() -> int:
    """PFML_MAX_LAB_RUN_EPOCHS when set, else DEFAULT."""
    return guards.env_count(ENV, DEFAULT)


def epochs(config: dict) -> int:
    return max(1, int(config.get("epochs", 1) or 1))


def held(conn, owner: str, exclude_grid: int | None = None) -> int:
    """Run-epochs the owner's active grids still hold: queued runs whole, running runs what
    is left."""
    rows = conn.execute(
        "SELECT r.config, r.status, r.progress FROM runs r JOIN grids g ON r.grid_id = g.id "
        "WHERE g.owner = ? AND g.id != ? AND g.status IN ('queued', 'running') "
        "AND r.status IN ('queued', 'running')",  # a stopped grid's queued runs wait for Resume
        (owner, -1 if exclude_grid is None else int(exclude_grid))).fetchall()
    return sum(max(epochs(json.loads(c)) - (int(p or 0) if s == "running" else 0), 0)
               for c, s, p in rows)


def _size(configs: list[dict]) -> str:
    each = {epochs(c) for c in configs}
    total = sum(epochs(c) for c in configs)
    runs = f"{len(configs):,} run{'s' if len(configs) != 1 else ''}"
    if len(each) == 1:
        return f"{runs} x {each.pop():,} epochs = {total:,} run-epochs"
    return f"{runs} of {total:,} epochs in all ({total:,} run-epochs)"


def check(conn, owner: str, configs: list[dict], exclude_grid: int | None = None) -> None:
    """OverBudget when these runs and what the owner's other grids hold exceed limit()."""
    cap, new = limit(), sum(epochs(c) for c in configs)
    have = held(conn, owner, exclude_grid)
    if new + have <= cap:
        return
    said = f"this grid is {_size(configs)}"
    if have:
        said += f", and your grids still queued or running hold {have:,} more"
    end = ": wait for them to finish or cancel one" if have and new <= cap else ""
    raise OverBudget(f"{said}; a visitor may queue {cap:,} (PFML_MAX_LAB_RUN_EPOCHS){end}")


def check_resume(conn, owner: str, grid_id: int) -> None:
    """OverBudget when resuming the grid (its queued, failed and cancelled runs, which
    become the owner's) takes the owner past limit()."""
    rows = conn.execute("SELECT config FROM runs WHERE grid_id=? AND status IN "
                        "('queued', 'failed', 'cancelled')", (int(grid_id),)).fetchall()
    check(conn, owner, [json.loads(c) for c, in rows], grid_id)
