"""The lab's commands, added to pfml_core.cli's parser: `noise-lab` and `sweep` run a grid
in the foreground (or --background) into the store the app reads; `lab-resume GRID` runs a
stopped grid's unfinished runs, as the app's Resume does; `lab-export GRID OUT.csv [--curves
C.csv]` writes a stored grid's runs as CSV; `suspects RUN_DIR --top N --out suspects.csv`
ranks a run folder's training labels."""
from __future__ import annotations

import argparse
import sys
import time

from pfml_core.lab import admin, check_cli, measure, regime, runtime, suspects, worker
from pfml_core.lab import grid as lab
from pfml_core.lab.store import Store

SWEEP_BASE = {"epochs": 5, "model": "auto", "embedding_size": 64, "eval_subset": 1000}


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _common(p: argparse.ArgumentParser, seeds: str, base: dict) -> None:
    """Flags left out take the values in `base` (noise-lab: the device's default regime)."""
    p.add_argument("--data", default="mnist5k", help="mnist5k | digits | path")
    p.add_argument("--seeds", type=_ints, default=None, help=f"comma list (default {seeds})")
    p.add_argument("--epochs", type=int, default=None, help=f"(default {base['epochs']})")
    p.add_argument("--max-batches", type=int, default=None,
                   help="batches per epoch, 0 = all (default all)")
    p.add_argument("--model", default=None, help=f"(default {base['model']})")
    p.add_argument("--embedding-size", type=int, default=None,
                   help=f"(default {base['embedding_size']})")
    p.add_argument("--eval-subset", type=int, default=None, help=f"(default {base['eval_subset']})")
    p.add_argument("--device", default="auto")
    p.add_argument("--store", default=None, help="SQLite store (default runs_dir()/lab.sqlite)")
    p.add_argument("--background", action="store_true",
                   help="queue it for a background worker (PFML_MAX_LAB_WORKERS at a time) and return")
    p.add_argument("--export", default=None, metavar="OUT.csv", help="write the runs as CSV")


def _base(args, defaults: dict) -> dict:
    given = {"epochs": args.epochs, "model": args.model, "embedding_size": args.embedding_size,
             "eval_subset": args.eval_subset}
    base = {**defaults, **{k: v for k, v in given.items() if v is not None}, "device": args.device}
    if args.max_batches is not None:
        base["max_batches_per_epoch"] = args.max_batches or None
    return base


def add_parsers(subparsers) -> None:
    """Add the noise-lab, sweep and lab-export subcommands to pfml_core.cli's parser, and the
    hidden lab-worker that worker.start launches as a detached process."""
    cpu = regime.default_grid("cpu")
    p = subparsers.add_parser("noise-lab", help="losses x label-noise rates x seeds",
                              description=regime.WHY["cpu"] + " " + regime.WHY["cuda"])
    _common(p, "0,1,2", cpu["base"])
    p.add_argument("--losses", default=None, help="comma list of LOSSES names "
                   f"(default {','.join(cpu['losses'])})")
    p.add_argument("--noise", type=_floats, default=None,
                   help="fractions, e.g. 0,0.1,0.2,0.4 (default 0,0.2; 0,0.2,0.4 on a GPU)")
    p.add_argument("--curves", default=None, metavar="CURVES.csv",
                   help="write the memorization curves (one row per run and epoch) as CSV")
    p.set_defaults(func=run_noise_lab)
    s = subparsers.add_parser("sweep", help="PFML over alpha, delta, delta_rep - delta, proxies")
    _common(s, "0", SWEEP_BASE)
    s.add_argument("--alpha", type=_floats, default=[3.0])
    s.add_argument("--delta", type=_floats, default=[0.2])
    s.add_argument("--delta-gap", type=_floats, default=[0.0], help="delta_rep - delta values")
    s.add_argument("--proxies", type=_ints, default=[5], help="proxies per class")
    s.add_argument("--mode", choices=["grid", "random"], default="grid")
    s.add_argument("--trials", type=int, default=10, help="random mode: number of draws")
    s.add_argument("--noise", type=float, default=0.0)
    s.set_defaults(func=run_sweep)
    e = subparsers.add_parser("lab-export", help="write a stored grid's runs as CSV")
    e.add_argument("grid_id", type=int)
    e.add_argument("out")
    e.add_argument("--store", default=None)
    e.add_argument("--curves", default=None, metavar="CURVES.csv",
                   help="also write the memorization curves (one row per run and epoch)")
    e.set_defaults(func=run_export)
    admin.add_parsers(subparsers)  # lab-cancel
    r = subparsers.add_parser("lab-resume", help="run a stopped grid's failed, cancelled and "
                              "unstarted runs (refused while its worker is alive)")
    r.add_argument("grid_id", type=int)
    r.add_argument("--store", default=None, help="SQLite store (default runs_dir()/lab.sqlite)")
    r.add_argument("--background", action="store_true",
                   help="queue it for a background worker and return")
    r.add_argument("--train-fn", default=None, help=argparse.SUPPRESS)  # tests
    r.set_defaults(func=run_resume)
    u = subparsers.add_parser("suspects", help="rank a run folder's training labels, most "
                              "suspect first", description=suspects.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("run_dir", nargs="?", default=None,
                   help="a run folder (python -m pfml_core train ... --out DIR); or --data")
    u.add_argument("--top", type=int, default=None, help="rows to write (default: all)")
    u.add_argument("--out", default="suspects.csv", help="CSV to write (default suspects.csv)")
    u.add_argument("--window", default="peak", help="epochs averaged: peak | all | a number")
    check_cli.add_arguments(u)
    u.set_defaults(func=run_suspects)
    w = subparsers.add_parser("lab-worker")  # no help=: hidden; started by worker.start
    w.add_argument("grid_id", type=int)
    w.add_argument("--store", default=None, help="SQLite store (default: runs_dir()/lab.sqlite)")
    w.add_argument("--train-fn", default=None, help="package.module:function (tests)")
    w.set_defaults(func=run_worker)


def _store(path: str | None) -> Store:
    """The store at path; a damaged file is kept aside and a fresh one started (one line)."""
    store = Store(path)
    if store.recovered:
        print(f"note: the run store was damaged; it is kept as {store.recovered.name} and a "
              "fresh one was started", file=sys.stderr, flush=True)
    return store


def _execute(kind: str, spec: dict, runs: list, args, axes: list[str]) -> int:
    store = _store(args.store)
    gid = store.create_grid(kind, spec, runs)
    print(f"grid {gid}: {len(runs)} runs -> {store.path}", flush=True)
    t0 = time.perf_counter()
    if args.background:
        _queued(store, gid, worker.submit(gid, store))
        return 0
    status = _foreground(store, gid, worker.train_run)
    frame = lab.grid_frame(store, gid)
    table = lab.aggregate(frame, axes, ("R@1", "R@2", "seconds"))
    print(f"grid {gid}: {status} in {time.perf_counter() - t0:.0f} s\n"
          f"{table.to_string(index=False)}", flush=True)
    _write(store, gid, args.export, getattr(args, "curves", None))
    return 0 if status == "done" else 1


def _queued(store: Store, gid: int, position: int | None) -> None:
    if position is None:
        print(f"worker pid {store.grid(gid)['pid']}", flush=True)
    else:
        print(f"grid {gid}: queued (position {position}); it starts when a worker slot frees",
              flush=True)


def _foreground(store: Store, gid: int, train_fn) -> str:
    """Run the grid in this process, a line per run; then start queued grids (app or
    --background) that waited for the slot this run held."""
    runs = store.runs(gid)
    parallel = store.grid(gid)["spec"].get("parallel", 1)

    def on_run(run, status):
        r = next(x for x in store.runs(gid) if x["id"] == run["id"])
        r1 = f" R@1={r['metrics']['R@1']:.3f}" if status == "done" else f" {r['error'] or ''}"[:200]
        left = runtime.eta(store.runs(gid), time.time(), parallel)
        eta = f" (about {left / 60:.1f} min left)" if left else ""
        print(f"[{run['idx'] + 1}/{len(runs)}] {run['params']}: {status}{r1}{eta}", flush=True)

    try:
        return worker.run_grid(gid, store, train_fn, on_run=on_run)
    finally:
        worker.dispatch(store)


def run_resume(args) -> int:
    """`lab-resume GRID`: requeue a stopped grid's failed and cancelled runs and run what is
    left here (or queue it, --background); refused (one line, exit 2) for an unknown grid,
    one whose worker is alive, one waiting in the queue and one with nothing left."""
    store = _store(args.store)
    if args.background:
        _queued(store, args.grid_id, worker.resume(args.grid_id, store, args.train_fn))
        return 0
    left = worker.reopen(args.grid_id, store)
    print(f"grid {args.grid_id}: resuming {left} runs", flush=True)
    status = _foreground(store, args.grid_id, worker.load_train_fn(args.train_fn))
    done = sum(r["status"] == "done" for r in store.runs(args.grid_id))
    print(f"grid {args.grid_id}: {status} ({done} of {len(store.runs(args.grid_id))} runs done)")
    return 0 if status == "done" else 1


def _write(store: Store, gid: int, runs_csv: str | None, curves_csv: str | None) -> None:
    store.grid(gid)  # an unknown grid is an error, never an empty CSV
    if runs_csv:
        print(f"wrote {lab.export_csv(store, gid, runs_csv)} rows to {runs_csv}")
    if curves_csv:
        print(f"wrote {measure.export_curves(store, gid, curves_csv)} rows to {curves_csv}")


def run_noise_lab(args) -> int:
    d = regime.default_grid(args.device)
    losses = d["losses"] if args.losses is None else [x for x in args.losses.split(",") if x]
    spec, runs = lab.noise_grid(args.data, losses, d["noise_rates"] if args.noise is None else args.noise,
                                d["seeds"] if args.seeds is None else args.seeds,
                                base=_base(args, d["base"]), parallel=d["parallel"])
    return _execute("noise", spec, runs, args, list(lab.NOISE_AXES))


def run_sweep(args) -> int:
    spec, runs = lab.sweep_grid(args.data, args.alpha, args.delta, args.delta_gap, args.proxies,
                                args.seeds or [0], mode=args.mode, n_trials=args.trials,
                                noise=args.noise, base=_base(args, SWEEP_BASE))
    return _execute("sweep", spec, runs, args, list(lab.SWEEP_AXES))


def run_export(args) -> int:
    _write(_store(args.store), args.grid_id, args.out, args.curves)
    return 0


def run_suspects(args) -> int:
    """Rank a run folder's training labels into a CSV; print the detection figures where
    the run flipped labels itself (true labels known), cleanlab's beside them."""
    if args.data is not None or args.run_dir is None:  # --data: every label of a dataset
        return check_cli.run(args)
    if args.top is not None and args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    window = args.window if args.window in ("peak", "all") else _window(args.window)
    rm = suspects.from_run_folder(args.run_dir)
    frame = suspects.table(rm, window)
    n = suspects.write_csv(frame, args.out, args.top)
    s = suspects.summary(rm, window)
    print(f"wrote {n} of {len(frame)} training samples, most suspect first, to {args.out} "
          f"(margin averaged over epochs 1-{s['suspect_epochs']}; cleanlab flags "
          f"{s['cleanlab_issues']})")
    if rm.known:
        print(f"flipped labels: {int(rm.margins[-1].flipped.sum())}; AUROC margin "
              f"{s['suspect_auroc']:.3f}, cleanlab {s['cleanlab_auroc']:.3f}; precision at "
              f"that many: margin {s['suspect_precision']:.3f}, cleanlab {s['cleanlab_precision']:.3f}")
    return 0


def _window(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--window must be peak, all or a number of epochs, got {text!r}") from None


def run_worker(args) -> int:
    """The body of a background worker: `python -m pfml_core lab-worker GRID --store PATH`;
    when it ends, it starts the next queued grids (with its own --train-fn)."""
    store = _store(args.store)
    try:
        status = worker.run_grid(args.grid_id, store, worker.load_train_fn(args.train_fn))
    finally:
        worker.dispatch(store, args.train_fn)
    print(f"grid {args.grid_id}: {status}", flush=True)
    return 0
