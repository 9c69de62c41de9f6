"""CLI for the lab: `python -m pfml_core noise-lab ...` and `python -m pfml_core sweep ...`
run a grid in the foreground (or --background) into the same store the app reads;
`lab-export GRID OUT.csv` writes a stored grid's runs as CSV. The parsers are added to
pfml_core.cli's, the one entry point."""
from __future__ import annotations

import argparse

from pfml_core.lab import grid as lab
from pfml_core.lab import worker
from pfml_core.lab.store import Store


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="mnist5k", help="mnist5k | digits | path")
    p.add_argument("--seeds", type=_ints, default=[0], help="comma list, e.g. 0,1,2")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max-batches", type=int, default=None, help="batches per epoch (default all)")
    p.add_argument("--model", default="auto")
    p.add_argument("--embedding-size", type=int, default=64)
    p.add_argument("--eval-subset", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--store", default=None, help="SQLite store (default runs_dir()/lab.sqlite)")
    p.add_argument("--background", action="store_true", help="start a worker and return")
    p.add_argument("--export", default=None, metavar="OUT.csv", help="write the runs as CSV")


def _base(args) -> dict:
    return {"epochs": args.epochs, "max_batches_per_epoch": args.max_batches, "model": args.model,
            "embedding_size": args.embedding_size, "eval_subset": args.eval_subset,
            "device": args.device}


def add_parsers(subparsers) -> None:
    """Add the noise-lab, sweep and lab-export subcommands to pfml_core.cli's parser, and the
    hidden lab-worker that worker.start launches as a detached process."""
    p = subparsers.add_parser("noise-lab", help="losses x label-noise rates x seeds")
    _common(p)
    p.add_argument("--losses", default="pfml,proxy_anchor", help="comma list of LOSSES names")
    p.add_argument("--noise", type=_floats, default=[0.0, 0.2], help="fractions, e.g. 0,0.1,0.2,0.4")
    p.set_defaults(func=run_noise_lab)
    s = subparsers.add_parser("sweep", help="PFML over alpha, delta, delta_rep - delta, proxies")
    _common(s)
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
    e.set_defaults(func=run_export)
    w = subparsers.add_parser("lab-worker")  # no help=: hidden; started by worker.start
    w.add_argument("grid_id", type=int)
    w.add_argument("--store", default=None, help="SQLite store (default: runs_dir()/lab.sqlite)")
    w.add_argument("--train-fn", default=None, help="package.module:function (tests)")
    w.set_defaults(func=run_worker)


def _execute(kind: str, spec: dict, runs: list, args, axes: list[str]) -> int:
    store = Store(args.store)
    gid = store.create_grid(kind, spec, runs)
    print(f"grid {gid}: {len(runs)} runs -> {store.path}", flush=True)
    if args.background:
        print(f"worker pid {worker.start(gid, store)}", flush=True)
        return 0

    def on_run(run, status):
        r = next(x for x in store.runs(gid) if x["id"] == run["id"])
        r1 = f" R@1={r['metrics']['R@1']:.3f}" if status == "done" else f" {r['error'] or ''}"[:200]
        print(f"[{run['idx'] + 1}/{len(runs)}] {run['params']}: {status}{r1}", flush=True)

    status = worker.run_grid(gid, store, on_run=on_run)
    frame = lab.grid_frame(store, gid)
    table = lab.aggregate(frame, axes, ("R@1", "R@2", "seconds"))
    print(f"grid {gid}: {status}\n{table.to_string(index=False)}", flush=True)
    if args.export:
        print(f"wrote {lab.export_csv(store, gid, args.export)} rows to {args.export}")
    return 0 if status == "done" else 1


def run_noise_lab(args) -> int:
    spec, runs = lab.noise_grid(args.data, [x for x in args.losses.split(",") if x], args.noise,
                                args.seeds, base=_base(args))
    return _execute("noise", spec, runs, args, list(lab.NOISE_AXES))


def run_sweep(args) -> int:
    spec, runs = lab.sweep_grid(args.data, args.alpha, args.delta, args.delta_gap, args.proxies,
                                args.seeds, mode=args.mode, n_trials=args.trials, noise=args.noise,
                                base=_base(args))
    return _execute("sweep", spec, runs, args, list(lab.SWEEP_AXES))


def run_export(args) -> int:
    store = Store(args.store)
    print(f"wrote {lab.export_csv(store, args.grid_id, args.out)} rows to {args.out}")
    return 0


def run_worker(args) -> int:
    """The body of a background worker: `python -m pfml_core lab-worker GRID --store PATH`."""
    status = worker.run_grid(args.grid_id, Store(args.store), worker.load_train_fn(args.train_fn))
    print(f"grid {args.grid_id}: {status}", flush=True)
    return 0
