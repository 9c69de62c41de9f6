"""The lab's commands, added to pfml_core.cli's parser: `noise-lab` and `sweep` run a grid
(an Optuna study) here or --background; `lab-worker --study NAME --storage URL` joins one
from any machine; `lab-resume`, `lab-export`, `lab-best`, `lab-cancel` and `lab-migrate`
(pfml_core.lab.admin); `suspects` ranks a run folder's or a file's labels."""
from __future__ import annotations

import argparse
import os
import time

from pfml_core import guards
from pfml_core.lab import admin, check_cli, launch, measure, regime, runtime, worker
from pfml_core.lab import grid as lab
from pfml_core.lab.admin import open_lab, storage_flags
from pfml_core.lab.studies import Lab

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
    storage_flags(p)
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
    s.add_argument("--mode", choices=["tpe", "random", "grid"], default="tpe",
                   help="tpe (default, with a median pruner on per-epoch R@1), random, or grid")
    s.add_argument("--trials", type=int, default=10, help="tpe and random: number of trials")
    s.add_argument("--noise", type=float, default=0.0)
    s.set_defaults(func=run_sweep)
    e = subparsers.add_parser("lab-export", help="write a stored grid's runs as CSV")
    e.add_argument("grid_id", help="the grid's id or study name")
    e.add_argument("out")
    storage_flags(e)
    e.add_argument("--curves", default=None, metavar="CURVES.csv",
                   help="also write the memorization curves (one row per run and epoch)")
    e.set_defaults(func=run_export)
    admin.add_parsers(subparsers)  # lab-cancel
    r = subparsers.add_parser("lab-resume", help="run a stopped grid's failed, cancelled and "
                              "unstarted runs (refused while its worker is alive)")
    r.add_argument("grid_id", help="the grid's id or study name")
    storage_flags(r)
    r.add_argument("--background", action="store_true",
                   help="queue it for a background worker and return")
    r.add_argument("--train-fn", default=None, help=argparse.SUPPRESS)  # tests
    r.set_defaults(func=run_resume)
    check_cli.add_parser(subparsers)  # suspects
    w = subparsers.add_parser("lab-worker", help="join a grid's study from this machine and "
                              "train its points until none is left")
    w.add_argument("--study", required=True, help="the study name (the app and CLI show it)")
    storage_flags(w)
    w.add_argument("--nice", type=int, default=0, help="lower this worker's CPU priority by N "
                   "(a server's own workers: 10)")
    w.add_argument("--train-fn", default=None, help=argparse.SUPPRESS)  # tests
    w.set_defaults(func=run_worker)


def _execute(kind: str, spec: dict, args, axes: list[str]) -> int:
    lab_ = open_lab(args)
    gid = lab_.create_grid(kind, spec)
    name = lab_.grid(gid)["name"]
    print(f"grid {gid} (study {name}): {lab.size(spec)} runs -> {lab_.url}", flush=True)
    t0 = time.perf_counter()
    if args.background:
        _queued(lab_, gid, launch.submit(gid, lab_))
        return 0
    status = _foreground(lab_, gid, None)
    frame = lab.grid_frame(lab_, gid)
    table = lab.aggregate(frame, axes, ("R@1", "R@2", "seconds"))
    print(f"grid {gid}: {status} in {time.perf_counter() - t0:.0f} s\n"
          f"{table.to_string(index=False)}", flush=True)
    _write(lab_, gid, args.export, getattr(args, "curves", None))
    return 0 if status == "done" else 1


def _queued(lab_: Lab, gid: int, position: int | None) -> None:
    g = lab_.grid(gid)
    if position is None:
        print(f"grid {gid}: started; join it from another machine with python -m pfml_core "
              f"lab-worker --study {g['name']} --storage URL", flush=True)
    else:
        print(f"grid {gid}: queued (position {position}); it starts when a worker slot frees",
              flush=True)


def _foreground(lab_: Lab, gid: int, train_ref: str | None) -> str:
    """Run the grid here (and in parallel - 1 more worker processes), a line per run."""
    g = lab_.grid(gid)
    total, parallel = lab.size(g["spec"]), int(g["spec"].get("parallel", 1))
    helpers = launch.spawn(lab_, gid, parallel - 1, train_ref, detached=False)
    lab_.set(gid, pid=[launch.me()] + [launch.me(p.pid) for p in helpers], launched=time.time())

    def on_run(study, t) -> None:
        runs = [r for r in lab_.runs(gid) if r["id"] is not None]
        r = next(x for x in runs if x["id"] == t._trial_id)
        said = (f" R@1={r['metrics']['R@1']:.3f}" if r["status"] in ("done", "pruned") and r["metrics"]
                and "R@1" in r["metrics"] else f" {r['error'] or ''}"[:200])
        left = runtime.eta(lab_.runs(gid), time.time(), parallel)
        eta = f" (about {left / 60:.1f} min left)" if left else ""
        print(f"[{sum(x['status'] in ('done', 'pruned') for x in runs)}/{total}] {r['params']}: "
              f"{r['status']}{said}{eta}", flush=True)

    try:
        worker.run_grid(gid, lab_, worker.load_train_fn(train_ref), on_run=on_run)
    finally:
        for p in helpers:
            p.wait()
        lab_.set(gid, pid=None)  # this run is over: the grid's status is its trials' now
        launch.dispatch(lab_)
    return lab_.grid(gid)["status"]


def run_resume(args) -> int:
    """`lab-resume GRID`: queue copies of a stopped grid's failed and cancelled runs and run
    what is left here (or --background); refused (one line, exit 2) for an unknown grid, one
    that runs or waits, and one with nothing left."""
    lab_ = open_lab(args)
    if args.background:
        _queued(lab_, args.grid_id, launch.resume(args.grid_id, lab_, args.train_fn))
        return 0
    left = launch.reopen(args.grid_id, lab_)
    print(f"grid {args.grid_id}: resuming {left} runs", flush=True)
    status = _foreground(lab_, lab_.grid(args.grid_id)["id"], args.train_fn)
    runs = [r for r in lab_.runs(args.grid_id) if r["id"] is not None]
    done = sum(r["status"] == "done" for r in runs)
    print(f"grid {args.grid_id}: {status} ({done} of {lab.size(lab_.grid(args.grid_id)['spec'])} runs done)")
    return 0 if status == "done" else 1


def _write(lab_: Lab, gid, runs_csv: str | None, curves_csv: str | None) -> None:
    gid = lab_.grid(gid)["id"]  # an unknown grid is an error, never an empty CSV
    if runs_csv:
        print(f"wrote {lab.export_csv(lab_, gid, runs_csv)} rows to {runs_csv}")
    if curves_csv:
        print(f"wrote {measure.export_curves(lab_, gid, curves_csv)} rows to {curves_csv}")


def run_noise_lab(args) -> int:
    d = regime.default_grid(args.device)
    losses = d["losses"] if args.losses is None else [x for x in args.losses.split(",") if x]
    spec = lab.noise_grid(args.data, losses, d["noise_rates"] if args.noise is None else args.noise,
                          d["seeds"] if args.seeds is None else args.seeds,
                          base=_base(args, d["base"]), parallel=d["parallel"])
    return _execute("noise", spec, args, list(lab.NOISE_AXES))


def run_sweep(args) -> int:
    spec = lab.sweep_grid(args.data, args.alpha, args.delta, args.delta_gap, args.proxies,
                          args.seeds or [0], mode=args.mode, n_trials=args.trials,
                          noise=args.noise, base=_base(args, SWEEP_BASE))
    return _execute("sweep", spec, args, list(lab.SWEEP_AXES))


def run_export(args) -> int:
    _write(open_lab(args), args.grid_id, args.out, args.curves)
    return 0


def run_worker(args) -> int:
    """`lab-worker --study NAME --storage URL`: train the study's points here until none is
    left; then start the next grids this server queued."""
    if args.nice:
        os.nice(guards.check_int("--nice", args.nice, 0, 19))
    lab_ = open_lab(args)
    g = lab_.grid(args.study)
    try:
        worker.run_grid(g["id"], lab_, worker.load_train_fn(args.train_fn))
    finally:
        launch.dispatch(lab_, args.train_fn)
    counts = lab_.grid(g["id"])["counts"]
    print(f"grid {g['id']} (study {g['name']}): this worker is done; the grid has "
          + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())), flush=True)
    return 0
