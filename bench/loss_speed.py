"""Forward+backward time and peak memory of PotentialFieldLoss vs the Gram-matrix floor,
the same loss with the previous kernel ("before", kept as the exact reference in
tests/kernel_reference.py) and pytorch-metric-learning's ProxyAnchorLoss, at paper and
small scale (one run, ratios; cases timed in turns; CPU time on the CPU, since wall time
on a shared machine mostly measures the neighbours).

Usage: python bench/loss_speed.py [--repeats 20] [--device cpu] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import ProxyAnchorLoss
from timing import interleaved_medians

from pfml_core.physics import EPS, POTENTIALS
from pfml_core.physics.loss import PotentialFieldLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kernel_reference import previous_kernel  # noqa: E402

PFML = POTENTIALS["pfml"]

SCALES = {  # name: (batch, classes, proxies per class, dim)
    "paper (B=100, 98x15, 512-d)": (100, 98, 15, 512),  # docs/method.md, section 5
    "small (B=128, 10x3, 128-d)": (128, 10, 3, 128),
}


def plain_autograd_energy(emb, labels, proxies, plabels, alpha=3.0, delta=0.2):
    """Eq. 6 written naively with autograd (POTENTIALS["pfml"] on torch.cdist), for
    comparison only."""
    x = F.normalize(torch.cat([emb, proxies]), dim=-1)
    y = torch.cat([labels, plabels])
    d = torch.cdist(x, x).clamp(min=EPS)
    same = y[:, None] == y[None, :]
    psi = torch.where(same, PFML.attraction(d, alpha, delta, EPS),
                      PFML.repulsion(d, alpha, delta, EPS))
    return psi.masked_fill(torch.eye(len(x), dtype=torch.bool, device=x.device), 0).sum()


def peak(fn, device):
    """Peak extra memory of fn() (forward+backward) in MiB."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return _cpu_peak(fn)  # CPU tensors come from malloc, which tracemalloc does not see


def _cpu_peak(fn):
    """Peak extra CPU memory of fn() in MiB, via torch's CPU profiler memory records."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    events = sorted((e for e in prof.events() if e.cpu_memory_usage), key=lambda e: e.time_range.start)
    for e in events:
        current += e.cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def bench_scale(b, n_cls, m, dim, repeats, device):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, dim, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, n_cls, (b,), generator=g).to(device)
    pfml = PotentialFieldLoss(n_cls, dim, proxies_per_class=m, check=False).to(device)
    pa = ProxyAnchorLoss(n_cls, dim).to(device)
    points = torch.cat([emb.detach(), pfml.proxies.detach()]).requires_grad_()  # (B + N*M, D)

    def floor():
        (points @ points.T).sum().backward()

    def before():
        with previous_kernel():
            pfml(emb, labels).backward()

    cases = {
        "Gram floor X@X.T": floor,
        "PotentialFieldLoss": lambda: pfml(emb, labels).backward(),
        "before: previous kernel": before,
        "plain autograd Eq. 6": lambda: plain_autograd_energy(
            emb, labels, pfml.proxies, pfml.proxy_labels).backward(),
        "PML ProxyAnchorLoss": lambda: pa(emb, labels).backward(),
    }
    clock = "wall" if device == "cuda" else "cpu"
    times = interleaved_medians(cases, repeats, device, clock=clock)
    return {name: (times[name], peak(fn, device)) for name, fn in cases.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    for scale, (b, n_cls, m, dim) in SCALES.items():
        res = bench_scale(b, n_cls, m, dim, args.repeats, args.device)
        t0, m0 = res["Gram floor X@X.T"]
        print(f"\n{scale}: {b + n_cls * m} points")
        print(f"{'':24s} {'ms':>8s} {'x floor':>8s} {'peak MiB':>9s} {'x floor':>8s}")
        for name, (t, mem) in res.items():
            print(f"{name:24s} {t * 1e3:8.2f} {t / t0:8.2f} {mem:9.1f} {mem / max(m0, 1e-9):8.2f}")


if __name__ == "__main__":
    main()
