"""The lab on Optuna, measured: per-trial overhead beside the lab before it (commit BEFORE,
from a temporary git worktree, same instant train function), the default noise grid's wall
time with 1 and 2 worker processes, and a TPE sweep with pruning against the full grid on
MNIST-5k at 20% noise (alpha 5 values x delta 5 values): best R@1 and epochs trained.
Usage: python bench/lab_scale.py [--part overhead|workers|sweep|all] [--docs]"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from pfml_core.lab import grid, launch, regime, worker
from pfml_core.lab.studies import Lab

import report

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "786859b"  # the last commit with the home-made store, queue and worker
N = 40
ALPHAS, DELTAS = [1.0, 2.0, 4.0, 8.0, 16.0], [0.05, 0.1, 0.2, 0.4, 0.8]
SWEEP = {"epochs": 6, "model": "mlp", "embedding_size": 64, "eval_subset": 1000, "device": "cpu"}


def instant(config, should_stop=None, on_epoch=None):
    """A run that trains nothing: what is left of a trial's time is the lab's own."""
    history = [SimpleNamespace(epoch=e, seconds=0.0, metrics={"R@1": 0.5}, margins=None,
                               train_flipped=None) for e in (0, 1)]
    for snap in history:
        if on_epoch:
            on_epoch(snap)
    return SimpleNamespace(history=history, stopped=False)


OLD = """
import sys, time, tempfile
from types import SimpleNamespace
from pfml_core.lab import grid, worker
from pfml_core.lab.store import Store
{instant}
spec, runs = grid.noise_grid("digits", ["pfml"], [0.0], list(range({n})), base={{"epochs": 1}})
s = Store(tempfile.mkdtemp() + "/lab.sqlite")
gid = s.create_grid("noise", spec, runs)
t0 = time.perf_counter()
assert worker.run_grid(gid, s, instant) == "done"
print((time.perf_counter() - t0) / {n})
"""


def overhead() -> None:
    import inspect

    spec = grid.noise_grid("digits", ["pfml"], [0.0], list(range(N)), base={"epochs": 1})
    lab = Lab(f"sqlite:///{tempfile.mkdtemp()}/studies.sqlite")
    gid = lab.create_grid("noise", spec)
    t0 = time.perf_counter()
    assert worker.run_grid(gid, lab, instant) == "done"
    new = (time.perf_counter() - t0) / N
    tree = Path(tempfile.mkdtemp()) / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BEFORE],
                   check=True, capture_output=True)
    try:
        code = OLD.format(instant=inspect.getsource(instant), n=N)
        out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(tree)}, check=True)
        old = float(out.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"per-trial overhead, {N} instant runs in one process, SQLite:")
    print(f"  Optuna study    {new:.3f} s per trial   (target <= 0.2 s)")
    print(f"  lab before      {old:.3f} s per run     (commit {BEFORE})")
    print(f"  ratio           {new / old:.2f}x")


def _wall(lab: Lab, spec: dict, workers: int) -> float:
    gid = lab.create_grid("noise", {**spec, "parallel": workers})
    t0 = time.perf_counter()
    procs = launch.spawn(lab, gid, workers, detached=False)
    for p in procs:
        p.wait()
    assert lab.grid(gid)["status"] == "done", lab.grid(gid)
    return time.perf_counter() - t0


def workers() -> None:
    d = regime.default_grid("cpu")
    spec = grid.noise_grid(d["data"], d["losses"], d["noise_rates"], d["seeds"], base=d["base"])
    lab = Lab(f"sqlite:///{tempfile.mkdtemp()}/studies.sqlite")
    print(f"the default noise grid ({grid.size(spec)} runs x {d['base']['epochs']} epochs, "
          f"{os.cpu_count()} cores), lab-worker processes started together:")
    one = _wall(lab, spec, 1)
    print(f"  1 worker   {one:6.0f} s")
    two = _wall(lab, spec, 2)
    print(f"  2 workers  {two:6.0f} s   ({one / two:.2f}x faster)")


def _epochs(runs: list[dict]) -> int:
    return sum(max(r["progress"], 0) for r in runs if r["id"] is not None)


def sweep() -> None:
    lab = Lab(f"sqlite:///{tempfile.mkdtemp()}/studies.sqlite")
    full = grid.sweep_grid("mnist5k", ALPHAS, DELTAS, mode="grid", noise=0.2, base=SWEEP)
    tpe = grid.sweep_grid("mnist5k", ALPHAS, DELTAS, mode="tpe", n_trials=12, noise=0.2, base=SWEEP)
    out = {}
    for name, spec in (("grid", full), ("tpe", tpe)):
        gid = lab.create_grid("sweep", {**spec, "parallel": 2})
        t0 = time.perf_counter()
        for p in launch.spawn(lab, gid, 2, detached=False):
            p.wait()
        runs = [r for r in lab.runs(gid) if r["id"] is not None]
        done = [r for r in runs if r["status"] == "done"]
        top = max(done, key=lambda r: r["metrics"]["R@1"])
        out[name] = (100 * top["metrics"]["R@1"], _epochs(runs), time.perf_counter() - t0,
                     sum(r["status"] == "pruned" for r in runs), len(runs), top["params"])
    print(f"sweep, MNIST-5k at 20% noise, alpha {ALPHAS} x delta {DELTAS}, {SWEEP['epochs']} epochs per run:")
    for name, (r1, epochs, wall, pruned, n, params) in out.items():
        print(f"  {name:4}  best R@1 {r1:5.1f} at alpha {params['alpha']}, delta {params['delta']};  "
              f"{n} trials ({pruned} pruned), {epochs} epochs, {wall:.0f} s")
    gap, share = out["grid"][0] - out["tpe"][0], out["tpe"][1] / out["grid"][1]
    print(f"  TPE: {gap:+.1f} R@1 points from the grid's best (target within 1), {share:.0%} of its epochs "
          f"(target <= 50%): {'met' if gap <= 1 and share <= 0.5 else 'NOT met'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", choices=["overhead", "workers", "sweep", "all"], default="all")
    p.add_argument("--docs", action="store_true", help="write the output into docs/performance.md")
    a = p.parse_args()
    os.environ.setdefault("PFML_RUNS_DIR", tempfile.mkdtemp())
    for part in (overhead, workers, sweep):
        if a.part in (part.__name__, "all"):
            part()


if __name__ == "__main__":
    sys.exit(report.run(main))
