"""The lab's storage flags and its operator commands, added to pfml_core.cli's parser by
pfml_core.lab.commands: `lab-cancel GRID` stops a grid whoever started it (a visitor's page
can cancel only its own), `lab-best GRID` prints the best setting as a ready train command,
`lab-migrate` copies the grids of an earlier version's lab.sqlite into Optuna studies."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pfml_core.lab import best, launch, migrate
from pfml_core.lab.studies import Lab


def storage_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=None, metavar="URL", help="an Optuna storage URL "
                   "(default: $PFML_LAB_STORAGE, else a SQLite file in the runs folder)")
    p.add_argument("--store", default=None, metavar="FILE", help="a SQLite file as the storage")


def open_lab(args) -> Lab:
    """The storage the flags name; a damaged SQLite file is kept aside (one line)."""
    store = getattr(args, "store", None)
    lab = Lab(args.storage or (f"sqlite:///{Path(store).resolve()}" if store else None))
    if lab.recovered:
        print(f"note: the run store was damaged; it is kept as {lab.recovered.name} and a "
              "fresh one was started", file=sys.stderr, flush=True)
    return lab


def add_parsers(subparsers) -> None:
    c = subparsers.add_parser("lab-cancel", help="cancel a queued or running grid, whoever "
                              "started it (the operator's)")
    c.add_argument("grid_id", help="the grid's id or study name")
    storage_flags(c)
    c.set_defaults(func=run_cancel)
    b = subparsers.add_parser("lab-best", help="the best setting of a grid, as a train command")
    b.add_argument("grid_id", help="the grid's id or study name")
    storage_flags(b)
    b.set_defaults(func=run_best)
    m = subparsers.add_parser("lab-migrate", help="copy an earlier version's lab.sqlite grids "
                              "into Optuna studies (once; the old file is kept)")
    m.add_argument("old", nargs="?", default=None, help="the old store (default runs_dir()/lab.sqlite)")
    storage_flags(m)
    m.set_defaults(func=run_migrate)


def run_cancel(args) -> int:
    """Stop the grid's workers here and mark its unfinished runs cancelled; one line. An
    unknown or finished grid is a ValueError (the CLI's exit 2)."""
    lab = open_lab(args)
    g = lab.grid(args.grid_id)
    if g["status"] not in ("queued", "running"):
        raise ValueError(f"grid {args.grid_id} is {g['status']}: nothing to cancel")
    left = g["counts"].get("queued", 0) + g["counts"].get("running", 0)
    launch.cancel(g["id"], lab)
    print(f"grid {args.grid_id}: cancelled ({left} unfinished runs stopped)", flush=True)
    return 0


def run_best(args) -> int:
    lab = open_lab(args)
    g = lab.grid(args.grid_id)
    b = best.best_setting(lab.runs(g["id"]), g["spec"])
    print(f"grid {g['id']}: best {b['said']}\n{b['command']}", flush=True)
    return 0


def run_migrate(args) -> int:
    old = Path(args.old) if args.old else migrate.old_path()
    n = migrate.migrate(old, open_lab(args))
    print(f"migrated {n['grids']} grids ({n['runs']} runs) from {old.name}; {n['skipped']} "
          "already migrated; the old file is kept", flush=True)
    return 0
