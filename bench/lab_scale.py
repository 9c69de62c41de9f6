"""The lab, measured: per-trial overhead beside the lab before Optuna (commit BEFORE, from a
temporary git worktree), the default noise grid with 1 and 2 workers (wall time, then what
it finds: R@1 by loss and noise, the PFML - Proxy Anchor gap, memorization, suspect-label
detection), a TPE sweep with pruning against the full grid on MNIST-5k at 20% noise, and
"Check my labels" on data with flips in every class (--part check).
Usage: python bench/lab_scale.py [--part overhead|workers|sweep|check|all] [--docs]
       python bench/lab_scale.py --part check --data digits --noise 0.15 --seeds 0,1,2"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pfml_core.lab import grid, launch, measure, paper, regime, worker
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
    findings(lab, lab.grids()[0]["id"])


def findings(lab: Lab, gid: int) -> None:
    """What the grid found, reported whatever it is (paper, ResNet-50 at 20% noise: PFML
    +6.0 CUB / +7.6 Cars R@1 points over Proxy Anchor)."""
    agg = grid.aggregate(grid.grid_frame(lab, gid), ["loss", "noise"],
                         ["R@1", "seconds", *measure.DETECTION, "suspect_epochs"])
    for _, r in agg.iterrows():
        print(f"{r['loss']:>13} {r['noise']:.0%}: R@1 {grid.in_points(r['R@1 mean'], r['R@1 std'], r['n'])}"
              f" ({int(r['n'])} seeds, {r['seconds mean']:.0f} s/run)")
    g, cited = grid.gain(agg), paper.noise_gain()
    for noise, diff in zip(g["noise"], g["gain"]):
        print(f"PFML - Proxy Anchor R@1 at {noise:.0%}: {100 * diff:+.1f} points "
              f"(paper at 20%: CUB {cited['CUB']:+.1f}, Cars {cited['Cars']:+.1f})")
    s = measure.curves_summary(measure.curves_frame(lab.runs(gid)))
    print("memorization (mean over seeds), epoch of best R@1 -> last epoch:")
    for (loss, noise), c in s[s["noise"] > 0].groupby(["loss", "noise"]):
        best, last = c.loc[c["R@1 mean"].idxmax()], c.iloc[-1]
        print(f"  {loss:>13} {noise:.0%}: R@1 {100 * best['R@1 mean']:.1f} (epoch {int(best['epoch'])})"
              f" -> {100 * last['R@1 mean']:.1f}; flipped margin {best['margin_flipped mean']:+.4f} -> "
              f"{last['margin_flipped mean']:+.4f}; memorized {best['memorized mean']:.0%} -> "
              f"{last['memorized mean']:.0%}")
    print("suspect labels (mean ± std over seeds): AUROC, precision at the number of flips")
    for _, r in agg[agg["noise"] > 0].dropna(subset=["suspect_auroc mean"]).iterrows():
        print(f"  {r['loss']:>13} {r['noise']:.0%}: margin {r['suspect_auroc mean']:.3f} ± "
              f"{r['suspect_auroc std']:.3f}, {r['suspect_precision mean']:.3f} | cleanlab "
              f"{r['cleanlab_auroc mean']:.3f} ± {r['cleanlab_auroc std']:.3f}, "
              f"{r['cleanlab_precision mean']:.3f}")


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


def check(data: str, noise: float, seeds: list[int], epochs: int) -> None:
    """"Check my labels" with `noise` of the labels flipped over all classes, per seed:
    AUROC over every row and precision at k = flips (margin score and cleanlab's), then R@1
    after dropping or relabelling the top suspects, beside cleanlab's list and true labels."""
    from pfml_core.lab import check_labels, cleaning

    rows, runs = [], {"drop": [], "relabel": []}
    for seed in seeds:
        chk = check_labels.check(data, epochs, noise, seed, device="cpu")
        rows.append({**check_labels.detection(chk), "cutoff": chk.cutoff,
                     "cleanlab_count": chk.cleanlab_count})
        print(f"seed {seed}: {rows[-1]}", flush=True)
        for how in runs:
            runs[how].append(cleaning.retrain(chk, None, how))
    print(f"Check my labels on {data}, {noise:.0%} flipped over all classes, {len(seeds)} seeds:")
    for key in ("auroc", "precision", "cleanlab_auroc", "cleanlab_precision", "cutoff",
                "cleanlab_count", "n_flipped", "flips_in_cutoff"):
        v = np.array([r[key] for r in rows], dtype=float)
        print(f"  {key}: {v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}  {v.tolist()}")
    for how, res in runs.items():
        print(f"clean by {how}:\n{cleaning.report(res)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", choices=["overhead", "workers", "sweep", "check", "all"], default="all")
    p.add_argument("--data", default="digits", help="check: digits, mnist5k or a file")
    p.add_argument("--noise", type=float, default=0.15, help="check: share of labels flipped")
    p.add_argument("--seeds", default="0,1,2", help="check: comma list")
    p.add_argument("--epochs", type=int, default=10, help="check: epochs per run")
    p.add_argument("--docs", action="store_true", help="write the output into docs/performance.md")
    a = p.parse_args()
    os.environ.setdefault("PFML_RUNS_DIR", tempfile.mkdtemp())
    for part in (overhead, workers, sweep):
        if a.part in (part.__name__, "all"):
            part()
    if a.part in ("check", "all"):
        check(a.data, a.noise, [int(s) for s in a.seeds.split(",")], a.epochs)


if __name__ == "__main__":
    sys.exit(report.run(main))
