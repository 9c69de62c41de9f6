"""The paper's strongest claim on a small scale, in the noise lab's default grid
(pfml_core.lab.regime: MNIST-5k zero-shot, digits 0-4 train and 5-9 held out, PFML and Proxy
Anchor, noise 0% and 20%, 3 seeds; the MLP for 30 epochs on a CPU, the CNN on a GPU). Prints,
from one run of the grid: R@1 per loss and noise rate with its spread over seeds, the PFML -
Proxy Anchor gap, the wall time (with the machine's load), the memorization summary (held-out
R@1 and the flipped/clean label margins at the best and last epochs, the share of flipped
samples memorized), and the suspect-label detection AUROC and precision of the margin
score beside cleanlab's. Paper (ResNet-50, CUB/Cars): PFML +6.0 / +7.6 R@1 over Proxy Anchor
at 20% noise. Reports what it finds, whatever it is.

Usage: python bench/noise_lab.py [--epochs N] [--seeds 0,1,2] [--noise 0,0.2] [--device auto]
       [--store PATH | --storage URL]   (flags left out: the default grid, a temporary study)
       python bench/noise_lab.py --check-labels digits --noise 0.15 --seeds 0,1,2 --epochs 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pfml_core.lab import grid as lab
from pfml_core.lab import launch, measure, regime, worker
from pfml_core.lab import paper as lab_paper
from pfml_core.lab.procs import me
from pfml_core.lab.studies import Lab, run_status

import report


def _grid(a) -> dict:
    d = regime.default_grid(a.device)
    base = {**d["base"], **({"epochs": a.epochs} if a.epochs else {})}
    rates = [float(x) for x in a.noise.split(",")] if a.noise else d["noise_rates"]
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else d["seeds"]
    print(d["why"])
    return lab.noise_grid(d["data"], d["losses"], rates, seeds, base=base, parallel=d["parallel"])


def _memorization(store: Lab, gid: int) -> None:
    s = measure.curves_summary(measure.curves_frame(store.runs(gid)))
    print("memorization (mean over seeds): epoch of best R@1 -> last epoch")
    for (loss, noise), g in s[s["noise"] > 0].groupby(["loss", "noise"]):
        best, last = g.loc[g["R@1 mean"].idxmax()], g.iloc[-1]
        print(f"  {loss:>13} {noise:.0%}: R@1 {100 * best['R@1 mean']:.1f} (epoch {int(best['epoch'])}) -> "
              f"{100 * last['R@1 mean']:.1f}; margin flipped {best['margin_flipped mean']:+.4f} -> "
              f"{last['margin_flipped mean']:+.4f}, clean {best['margin_clean mean']:+.4f} -> "
              f"{last['margin_clean mean']:+.4f}; memorized {best['memorized mean']:.0%} -> "
              f"{last['memorized mean']:.0%}")


def check_my_labels(a) -> None:
    """"Check my labels" (issue 20) on a data set with a share of its labels flipped over all
    classes, per seed: detection AUROC over every row and precision at k = number of flips
    for the margin score and cleanlab's, the cut-off, and R@1 after dropping and after
    relabelling the top suspects against noisy, cleanlab-cleaned and true labels."""
    from pfml_core.lab import check_labels, cleaning

    rows, runs = [], {"drop": [], "relabel": []}
    for seed in [int(s) for s in (a.seeds or "0,1,2").split(",")]:
        t0 = time.perf_counter()
        chk = check_labels.check(a.check_labels, a.epochs or 10, float(a.noise or 0.15), seed,
                                 device="cpu" if a.device == "auto" else a.device)
        d = check_labels.detection(chk)
        rows.append({**d, "cutoff": chk.cutoff, "cleanlab_count": chk.cleanlab_count})
        print(f"seed {seed}: {d} cutoff {chk.cutoff} cleanlab count {chk.cleanlab_count} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for how in runs:
            runs[how].append(cleaning.retrain(chk, None, how))
    for key in ("auroc", "precision", "cleanlab_auroc", "cleanlab_precision", "cutoff",
                "cleanlab_count", "n_flipped", "flips_in_cutoff"):
        v = np.array([r[key] for r in rows], dtype=float)
        print(f"{key}: {v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}  {v.tolist()}")
    for how, res in runs.items():
        print(f"clean by {how}:\n{cleaning.report(res)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-labels", metavar="DATA", default=None,
                    help="instead of the grid: Check my labels on DATA (digits, mnist5k, a file) "
                         "with --noise (default 0.15) flipped over all classes")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", default=None)
    ap.add_argument("--noise", default=None, help="comma list of fractions")
    ap.add_argument("--device", default="auto")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--store", default=None, help="a SQLite file as the lab's storage "
                       "(default: a temporary one)")
    where.add_argument("--storage", default=None, metavar="URL", help="an Optuna storage URL")
    a = ap.parse_args()
    if a.check_labels:
        return check_my_labels(a)
    spec = _grid(a)
    path = Path(a.store) if a.store else Path(tempfile.mkdtemp(prefix="pfml_bench_")) / "studies.sqlite"
    store = Lab(a.storage or f"sqlite:///{path.resolve()}")
    gid = store.create_grid("noise", spec)
    print(f"{lab.size(spec)} runs, {spec['parallel']} at a time; study {store.grid(gid)['name']} in "
          f"{store.url}; load average before {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    t0 = time.perf_counter()
    status = _run(store, gid, int(spec["parallel"]))
    wall = time.perf_counter() - t0
    agg = lab.aggregate(lab.grid_frame(store, gid), ["loss", "noise"],
                        ["R@1", "seconds", *measure.DETECTION, "suspect_epochs"])
    print(f"grid {status} in {wall:.0f} s wall ({wall / 60:.1f} min); load average after "
          f"{os.getloadavg()[0]:.1f}")
    for _, r in agg.iterrows():
        print(f"{r['loss']:>13} {r['noise']:.0%}: R@1 {100 * r['R@1 mean']:.1f} ± {100 * r['R@1 std']:.1f} "
              f"({int(r['n'])} seeds, {r['seconds mean']:.0f} s/run)")
    g = lab.gain(agg)
    paper_gain = lab_paper.noise_gain()
    for noise, diff in zip(g["noise"], g["gain"]):
        print(f"measured PFML - Proxy Anchor R@1 at {noise:.0%}: {100 * diff:+.1f} points "
              f"(paper at 20%: CUB {paper_gain['CUB']:+.1f}, Cars {paper_gain['Cars']:+.1f})")
    _memorization(store, gid)
    print("suspect labels (mean ± std over seeds): AUROC and precision at the number of flips")
    for _, r in agg[agg["noise"] > 0].iterrows():
        if np.isnan(r.get("suspect_auroc mean", np.nan)):
            continue
        print(f"  {r['loss']:>13} {r['noise']:.0%}: margin AUROC {r['suspect_auroc mean']:.3f} ± "
              f"{r['suspect_auroc std']:.3f}, precision {r['suspect_precision mean']:.3f} | cleanlab AUROC "
              f"{r['cleanlab_auroc mean']:.3f} ± {r['cleanlab_auroc std']:.3f}, precision "
              f"{r['cleanlab_precision mean']:.3f} (window {r['suspect_epochs mean']:.1f} epochs)")


def _run(store: Lab, gid: int, parallel: int) -> str:
    """The grid here and in parallel - 1 more lab-worker processes (as the CLI's foreground
    noise-lab), a line per run trained here; the grid's status once all have ended."""
    helpers = launch.spawn(store, gid, parallel - 1, detached=False)
    store.set(gid, pid=[me()] + [me(p.pid) for p in helpers], launched=time.time())
    try:
        worker.run_grid(gid, store, on_run=lambda study, t: print(
            f"  {t.params}: {run_status(t, set())}", flush=True))
    finally:
        for p in helpers:
            p.wait()
        store.set(gid, pid=None)  # over: the grid's status is its trials' now
    return store.grid(gid)["status"]


if __name__ == "__main__":
    sys.exit(report.run(main))
