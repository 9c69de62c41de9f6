"""PotentialFieldLoss speed and how it scales: forward+backward time and peak memory vs the
number of points (batch + proxies) from 200 to 4,000, each next to the Gram-matrix floor
(X @ X.T forward+backward of the same X) and to the loss's definition written plainly
(pfml_core.physics.definition, autograd on pairwise distances), all in one run.
Points: batch = n/10, the rest proxies (M = 15 per class), 512-d, float32; plus the
paper's Cars scale (B = 100, 98 classes x 15 proxies = 1,570 points, docs/method.md,
section 5) and, with --sop, SOP scale (B = 100, 11,318 classes x 2 = 22,736 points).

--ranks 1,2,4: the sharded energy on SOP-like sizes shrunk to fit a small machine
(--rank-shape B CLASSES M), two ways: (1) each rank's pair work alone, its block of rows
timed one rank after another in this process (what a rank computes, free of the other
ranks competing for 2 cores); (2) the real thing, G gloo processes each running one
training loss step (gather, sharded energy, all-gathered gradient), sharded and
replicated, per-rank CPU time. Then the expected SOP step on G GPUs as a formula.

Memory on CPU: peak resident set growth (Linux /proc: VmHWM reset via clear_refs, glibc
told to return large blocks to the system); on CUDA: torch.cuda.max_memory_allocated.
CPU threads default to 1 and CPU times use the process clock (--clock cpu): on a shared
2-core machine wall time mostly measures the neighbours.

Usage: python bench/loss_speed.py [--device cpu|cuda] [--repeats 5] [--sizes 200 ...]
       [--sop] [--ranks 1,2,4 [--rank-shape 100 2000 2]]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

from pfml_core.physics import definition
from pfml_core.physics.loss import PotentialFieldLoss

import report

SIZES = (200, 400, 800, 1600, 2400, 3200, 4000)
PAPER = (100, 98, 15)  # B, classes, proxies per class (Cars, docs/method.md, section 5)
SOP = (100, 11318, 2)  # SOP: 11,318 training classes, M = 2 (docs/method.md, section 3)
DIM = 512
H200_BACKBONE_MS, H200_SOP_LOSS_MS = 32.0, 37.0  # README: one H200, ResNet-50 bf16 / SOP loss


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_seconds(fn, repeats: int, device: str = "cpu", warmup: int = 1,
                   clock: str = "wall") -> float:
    """Median time of fn() over `repeats` calls after `warmup` calls, synchronising CUDA
    around each call so GPU work is counted. clock="cpu" counts this process's CPU time
    (all its threads): on a shared CPU machine it ignores other processes' load, which
    wall time does not; use it for CPU-only work."""
    return interleaved_medians({"fn": fn}, repeats, device, warmup, clock)["fn"]


def interleaved_medians(fns: dict, repeats: int, device: str = "cpu", warmup: int = 1,
                        clock: str = "wall") -> dict:
    """{name: median seconds}, the calls taken in turns (a, b, c, a, b, c, ...) so that a
    burst of load elsewhere hits every case alike: ratios stay fair on a busy machine."""
    now, times = CLOCKS[clock], {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t = now()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(now() - t)
    return {name: sorted(v)[len(v) // 2] for name, v in times.items()}


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD fixed at 64 KiB: big blocks go back to the OS
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _libc()


def _rss_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise OSError(name)


def peak_mib(fn, device) -> float:
    """Peak extra memory of one fn() call in MiB (nan where it cannot be measured)."""
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    try:
        if LIBC is not None:
            LIBC.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
        base = _rss_kib("VmRSS")
        fn()
        return (_rss_kib("VmHWM") - base) / 1024
    except OSError:
        return float("nan")


def cases(batch, classes, m, device):
    """The loss step, its definition written plainly, and the Gram floor on the same
    (batch + classes*m, DIM) points."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(batch, DIM, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, classes, (batch,), generator=g).to(device)
    loss = PotentialFieldLoss(classes, DIM, proxies_per_class=m, check=False).to(device)
    points = torch.cat([emb.detach(), loss.proxies.detach()]).requires_grad_()  # (B + N*M, D)

    def step():
        emb.grad = loss.proxies.grad = None
        loss(emb, labels).backward()

    def plain():
        emb.grad = loss.proxies.grad = None
        definition.total_energy(emb, labels, loss.proxies, loss.proxy_labels,
                                alpha=loss.alpha, delta=loss.delta).backward()

    def floor():
        points.grad = None
        (points @ points.T).sum().backward()

    return step, plain, floor


def measure(batch, classes, m, repeats, device, clock) -> dict:
    fns = dict(zip(("loss", "plain", "floor"), cases(batch, classes, m, device)))
    out = {"n": batch + classes * m, "B": batch, "P": classes * m}
    for key, t in interleaved_medians(fns, repeats, device, clock=clock).items():
        out["t_" + key], out["m_" + key] = t, peak_mib(fns[key], device)
    return out


def shapes(sizes):
    """(B, classes, M) with B = n/10 and the rest as M = 15 proxies per class."""
    for n in sizes:
        b = max(n // 10, 2)
        yield b, max((n - b) // 15, 1), 15


def scaling(args) -> list[dict]:
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{DIM}-d float32, forward+backward, {args.clock} clock; plain = physics.definition")
    head = (f"{'points':>7} {'B':>5} {'proxies':>7} | {'loss ms':>8} {'plain':>8} {'floor ms':>8} "
            f"{'x':>5} {'plain x':>8} | {'loss MiB':>8} {'plain':>7} {'floor MiB':>9} {'x':>5}")
    print(head + "\n" + "-" * len(head))
    rows, extra = [], [PAPER] + ([SOP] if args.sop else [])
    for b, c, m in [*shapes(args.sizes), *extra]:
        r = measure(b, c, m, args.repeats, args.device, args.clock)
        rows.append(r)
        tag = {PAPER: "  <- paper scale (Cars)", SOP: "  <- SOP scale"}.get((b, c, m), "")
        print(f"{r['n']:7d} {r['B']:5d} {r['P']:7d} | {r['t_loss'] * 1e3:8.1f} "
              f"{r['t_plain'] * 1e3:8.1f} {r['t_floor'] * 1e3:8.1f} "
              f"{r['t_loss'] / r['t_floor']:5.2f} {r['t_plain'] / r['t_floor']:8.2f} | "
              f"{r['m_loss']:8.1f} {r['m_plain']:7.1f} {r['m_floor']:9.1f} "
              f"{r['m_loss'] / max(r['m_floor'], 1e-9):5.2f}{tag}")
    fit = [r for r in rows[:len(args.sizes)] if r["n"] >= 1600] or rows[:len(args.sizes)]
    if len(fit) > 1:
        logs = torch.tensor([[math.log(r["n"]), math.log(r["t_loss"])] for r in fit])
        slope = float(torch.linalg.lstsq(torch.stack([logs[:, 0], torch.ones(len(fit))], 1),
                                         logs[:, 1:]).solution[0])
        print(f"loss time ~ n^{slope:.2f} over n = {fit[0]['n']}..{fit[-1]['n']} "
              f"(2 = quadratic; below 2 while fixed per-call overheads still dominate)")
    return rows


def _rank_worker(rank, world, port, shape, repeats, out_dir):
    """One rank: its share of the batch through GatheredLoss, sharded then replicated."""
    from pfml_core.training import distributed

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
        distributed.init_from_env(backend="gloo", timeout_s=600)
    b, classes, m = shape
    g = torch.Generator().manual_seed(0)
    emb_all, y_all = torch.randn(b, DIM, generator=g), torch.randint(0, classes, (b,), generator=g)
    torch.manual_seed(0)
    loss = PotentialFieldLoss(classes, DIM, proxies_per_class=m, check=False)
    share = torch.arange(b).tensor_split(world)[rank]
    emb, y = emb_all[share].clone().requires_grad_(), y_all[share]
    out = {}
    for mode in ("sharded", "replicated"):  # replicated last: it hooks the proxies
        step_loss = distributed.GatheredLoss(loss, shard=mode == "sharded")

        def step(step_loss=step_loss):
            emb.grad = loss.proxies.grad = None
            step_loss(emb, y).backward()
        out[mode] = median_seconds(step, repeats, clock="cpu")
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(out))
    if world > 1:
        distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pair_work(shape, worlds, repeats) -> dict:
    """{G: max over ranks of the CPU time of that rank's block (fwd+bwd)}, in-process:
    the collectives are local stand-ins (sum: identity, gather: own rows in place)."""
    from pfml_core.physics import total_energy
    from pfml_core.physics.kernel import RowShard

    b, classes, m = shape
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, DIM, generator=g).requires_grad_()
    y = torch.randint(0, classes, (b,), generator=g)
    loss = PotentialFieldLoss(classes, DIM, proxies_per_class=m)
    pad = lambda r: lambda rows, sizes: torch.nn.functional.pad(  # noqa: E731
        rows, (0, 0, sum(sizes[:r]), sum(sizes[r + 1:])))
    fns = {}
    for world in worlds:
        for r in range(world):
            shard = None if world == 1 else RowShard(r, world, sum=lambda e: e, gather=pad(r))

            def step(shard=shard):
                emb.grad = loss.proxies.grad = None
                total_energy(emb, y, loss.proxies, loss.proxy_labels, alpha=3.0, delta=0.2,
                             check=False, shard=shard).backward()
            fns[world, r] = step
    times = interleaved_medians(fns, repeats, clock="cpu")
    return {w: max(t for (w2, _), t in times.items() if w2 == w) for w in worlds}


def ranks(args) -> dict:
    """Per-rank CPU time for each process count (max over ranks), two ways."""
    import torch.multiprocessing as mp

    shape = tuple(args.rank_shape)
    n = shape[0] + shape[1] * shape[2]
    print(f"sharded energy on CPU, {n} points (B = {shape[0]}, {shape[1]} classes x "
          f"M = {shape[2]}: SOP-like, shrunk), {DIM}-d, 1 thread per rank, per-rank CPU time")
    work = pair_work(shape, args.ranks, args.repeats)
    res = {}
    for world in args.ranks:
        with tempfile.TemporaryDirectory() as tmp:
            if world == 1:  # one process: the plain loss, no process group
                _rank_worker(0, 1, 0, shape, args.repeats, tmp)
            else:
                mp.spawn(_rank_worker, args=(world, _free_port(), shape, args.repeats, tmp),
                         nprocs=world, join=True)
            per = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in range(world)]
        res[world] = {k: max(p[k] for p in per) for k in ("sharded", "replicated")}
    w1, one = work[min(work)], res[min(res)]["sharded"]
    print(f"{'ranks':>5} | {'pair work ms':>12} {'x 1':>5} {'ideal':>5} | "
          f"{'gloo step: sharded ms':>21} {'x 1':>5} | {'replicated ms':>13} {'x 1':>5}")
    for world, r in res.items():
        print(f"{world:5d} | {work[world] * 1e3:12.1f} {work[world] / w1:5.2f} {1 / world:5.2f} | "
              f"{r['sharded'] * 1e3:21.1f} {r['sharded'] / one:5.2f} | "
              f"{r['replicated'] * 1e3:13.1f} {r['replicated'] / one:5.2f}")
    print(f"expected SOP step on G GPUs, a FORMULA from the pair-work ratios above (CPU, not "
          f"measured on GPUs): {H200_BACKBONE_MS:.0f}/G + {H200_SOP_LOSS_MS:.0f} x ratio(G) ms "
          f"(one H200: ResNet-50 step {H200_BACKBONE_MS:.0f} ms, "
          f"SOP loss {H200_SOP_LOSS_MS:.0f} ms)")
    for world in res:
        ratio = work[world] / w1
        print(f"  G = {world}: {H200_BACKBONE_MS / world + H200_SOP_LOSS_MS * ratio:5.1f} ms "
              f"(replicated: {H200_BACKBONE_MS / world + H200_SOP_LOSS_MS:5.1f} ms)")
    return {"pair_work": work, "gloo": res}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    ap.add_argument("--sop", action="store_true", help="add the SOP-scale row (22,736 points)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default=None,
                    help="default: cpu on the CPU, wall on CUDA")
    ap.add_argument("--ranks", type=lambda s: [int(v) for v in s.split(",")], default=None,
                    help="e.g. 1,2,4: the sharded energy under gloo instead of the size sweep")
    ap.add_argument("--rank-shape", type=int, nargs=3, default=(100, 2000, 2),
                    metavar=("B", "CLASSES", "M"))
    args = ap.parse_args(argv)
    args.clock = args.clock or ("wall" if args.device == "cuda" else "cpu")
    torch.set_num_threads(args.threads)
    return ranks(args) if args.ranks else scaling(args)


if __name__ == "__main__":
    sys.exit(report.run(main))
