"""The operator's lab command, added to pfml_core.cli's parser by pfml_core.lab.commands:
`python -m pfml_core lab-cancel GRID [--store S]` stops a queued or running grid whoever
started it (a visitor's page can cancel only its own grids)."""
from __future__ import annotations

from pathlib import Path

from pfml_core.lab import worker
from pfml_core.lab.store import Store, default_path


def add_parsers(subparsers) -> None:
    c = subparsers.add_parser("lab-cancel", help="cancel a queued or running grid, whoever "
                              "started it (the operator's)")
    c.add_argument("grid_id", type=int)
    c.add_argument("--store", default=None, help="SQLite store (default runs_dir()/lab.sqlite)")
    c.set_defaults(func=run_cancel)


def run_cancel(args) -> int:
    """Terminate the grid's worker and mark its unfinished runs cancelled, then start the next
    queued grid; one line. An unknown or finished grid is a ValueError (the CLI's exit 2)."""
    path = Path(args.store) if args.store else default_path()
    if not path.is_file():
        raise ValueError(f"no lab store at {path}")
    store = Store(path)
    try:
        g = store.grid(args.grid_id)
        if g["status"] not in ("queued", "running"):
            raise ValueError(f"grid {args.grid_id} is {g['status']}: nothing to cancel")
        left = sum(r["status"] in ("queued", "running") for r in store.runs(args.grid_id))
        worker.cancel(args.grid_id, store)
    finally:
        store.close()
    print(f"grid {args.grid_id}: cancelled ({left} unfinished runs stopped)", flush=True)
    return 0
