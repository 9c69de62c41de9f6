#!/usr/bin/env bash
# The CUDA path end to end, for a machine with at least one GPU (about 6 minutes):
#   bash bench/cuda_check.sh [OUT_DIR]
# 1. the loss on the GPU: float16/bfloat16 embeddings give the float32 loss; NO host sync
#    inside the energy (torch.cuda.set_sync_debug_mode("error") around forward+backward);
#    the sync-free kernel equals the loss's definition (pfml_core.physics.definition)
#    in float64; bad labels still raise a ValueError (on-device flags, verify()).
# 2. an in-memory run with --device cuda --amp.
# 3. torchrun (NCCL, one process) on a generated SOP-layout folder with the paper's SOP
#    config shrunk (ResNet-50, weights=None, batch 100 = 50 classes x 2, bf16, frozen BN).
# 4. the loss vs the Gram floor and vs its plain definition at paper and SOP scale
#    (bench/loss_speed.py --sop); target: <= 1.5x the floor at 1,570 points.
# 5. the sharded energy under torchrun, 2 processes, float64: loss and gradients equal one
#    process. NCCL with 2+ GPUs; on one GPU the 2 processes share it over gloo, because
#    NCCL (>= 2.5) refuses two ranks on one device. PFML_SHARD_BACKEND overrides.
# Every step has a time limit; a summary follows; the exit status is non-zero if any
# step failed. Logs go to OUT_DIR.
set -uo pipefail
OUT=${1:-${OUT:-/tmp/pfml_cuda_check}}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:${PYTHONPATH:-}
NAMES=() RESULTS=() FAILED=0

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log, record the result
    local name=$1 limit=$2 log rc start
    shift 2
    log="$OUT/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').log"
    echo "== $name (limit ${limit}s)"
    start=$SECONDS
    timeout --kill-after=20 "$limit" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then RESULTS+=("PASS  $((SECONDS - start))s")
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then RESULTS+=("FAIL  timed out after ${limit}s"); FAILED=1
    else RESULTS+=("FAIL  exit $rc (see $log)"); FAILED=1
    fi
    NAMES+=("$name")
}

cat > "$W/gpu_loss.py" <<'PY'
import sys, torch
from pfml_core.physics import definition
from pfml_core.physics import PotentialFieldLoss, total_energy
from pfml_core.physics.kernel import gram_energy
assert torch.cuda.is_available(), "no CUDA device"
dev = "cuda"
print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
loss = PotentialFieldLoss(10, 64, proxies_per_class=3).to(dev)
y = torch.arange(40, device=dev) % 10
for dt in (torch.float16, torch.bfloat16):
    x = torch.randn(40, 64, device=dev).to(dt).requires_grad_()
    v = loss(x, y); v.backward()
    ref = loss(x.detach().float(), y)
    assert torch.isfinite(v) and x.grad.dtype == dt and torch.isfinite(x.grad).all()
    assert torch.allclose(v.float(), ref, rtol=1e-3), (v, ref)
    print(f"PASS loss with {dt} embeddings: {float(v):.4f} == float32 {float(ref):.4f}")
# no host sync inside the energy, paper scale (B = 100, 98 classes x 15 proxies, 512-d)
emb = torch.randn(100, 512, device=dev).requires_grad_()
lab = torch.randint(0, 98, (100,), device=dev)
for check in (False, None):  # None: the default, on-device flags instead of value checks
    paper = PotentialFieldLoss(98, 512, proxies_per_class=15, check=check).to(dev)
    paper(emb, lab).backward()  # warm-up outside the debug mode (handles, workspaces)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            paper(emb, lab).backward()
            total_energy(emb, lab, paper.proxies, paper.proxy_labels, alpha=3.0, delta=0.2,
                         check=False).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    print(f"PASS no host sync in forward+backward (check={check})")
# the sync-free kernel equals the definition on the GPU (float64)
g = torch.Generator(device=dev).manual_seed(0)
x = torch.nn.functional.normalize(torch.randn(1570, 512, device=dev, dtype=torch.float64, generator=g), dim=-1)
yy = torch.randint(0, 98, (1570,), device=dev, generator=g)
for alpha in (3.0, 2.5):
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    new = gram_energy(torch.nn.functional.normalize(a, dim=-1), yy, alpha, 0.2, 0.2, 1e-6)
    old = definition.total_energy(b, yy, alpha=alpha, delta=0.2, delta_rep=0.2, eps=1e-6)
    new.backward(); old.backward()
    torch.testing.assert_close(new, old, rtol=1e-10, atol=0)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-8 * float(b.grad.abs().max()))
    print(f"PASS sync-free kernel == definition on cuda, float64, alpha {alpha}")
# bad input still raises: on-device flags read by verify()
paper = PotentialFieldLoss(98, 512, proxies_per_class=15).to(dev)
paper(emb, torch.full((100,), 98, device=dev))
try:
    paper.verify()
    raise SystemExit("FAIL verify() did not raise for label 98 with num_classes=98")
except ValueError as err:
    print("PASS verify() raised:", err)
PY

cat > "$W/make_data.py" <<'PY'
import sys, pathlib, numpy as np
from PIL import Image
w = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(0)
yy = np.repeat(np.arange(20), 30); X = rng.normal(size=(20, 32))[yy] + rng.normal(size=(600, 32))
np.savez(w / "blobs.npz", X=X.astype(np.float32), y=yy)
root = w / "sop"; header = "image_id class_id super_class_id path\n"; i = 1
for fname, classes in (("Ebay_train.txt", range(1, 61)), ("Ebay_test.txt", range(61, 121))):
    lines = []
    for c in classes:
        for j in range(3):
            rel = f"chair_final/{c}_{j}.JPG"; (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((rng.random((72, 96, 3)) * 60 + 1.5 * c).astype(np.uint8)).save(root / rel)
            lines.append(f"{i} {c} 1 {rel}"); i += 1
    (root / fname).write_text(header + "\n".join(lines) + "\n")
src = next(p for p in (pathlib.Path("configs/sop_resnet50.toml"),
                       pathlib.Path("pfml_core/training/configs/sop_resnet50.toml")) if p.exists())
text = src.read_text()
for a, b in (("pretrained = true", "pretrained = false"), ("epochs = 200", "epochs = 2"),
             ("eval_subset = 60502", "eval_subset = 180")):
    text = text.replace(a, b)
(w / "sop_tiny.toml").write_text(text)
print("data and config in", w)
PY

cat > "$W/loss_bench.py" <<'PY'
import sys
sys.path.insert(0, "bench")
import loss_speed
rows = loss_speed.main(["--device", "cuda", "--sizes", "200", "1600", "4000", "--sop", "--repeats", "20"])
paper = next(r for r in rows if r["n"] == 1570)
ratio = paper["t_loss"] / paper["t_floor"]
print(f"paper scale: loss {paper['t_loss'] * 1e3:.2f} ms, plain definition {paper['t_plain'] * 1e3:.2f} ms, "
      f"floor {paper['t_floor'] * 1e3:.2f} ms: {ratio:.2f}x the floor (target <= 1.5x: "
      f"{'MET' if ratio <= 1.5 else 'NOT MET'})")
PY

cat > "$W/sharded.py" <<'PY'
"""torchrun, 2 processes: the sharded energy on CUDA equals one process (float64)."""
import os, time, torch
from pfml_core.physics import PotentialFieldLoss
from pfml_core.training import distributed
n_gpu = torch.cuda.device_count()
backend = os.environ.get("PFML_SHARD_BACKEND") or ("nccl" if n_gpu >= 2 else "gloo")
local = int(os.environ["LOCAL_RANK"])
dev = torch.device("cuda", local % n_gpu)
torch.cuda.set_device(dev)
assert distributed.init_from_env(backend=backend, timeout_s=300)
rank, world = distributed.rank(), distributed.world_size()
splits = [23, 41][:world] if world == 2 else [64 // world] * world
def data(dtype, b, classes, m, dim):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(b, dim, generator=g, dtype=dtype), torch.randint(0, classes, (b,), generator=g)
    torch.manual_seed(0)
    return x.to(dev), y.to(dev), PotentialFieldLoss(classes, dim, proxies_per_class=m).to(dev, dtype)
x, y, loss = data(torch.float64, sum(splits), 50, 3, 128)
start = sum(splits[:rank]); mine = slice(start, start + splits[rank])
worst = 0.0
for shard in (True, False):
    step = distributed.GatheredLoss(loss, shard=shard)
    assert step.sharded == shard
    emb = x[mine].clone().requires_grad_(); loss.proxies.grad = None
    value = step(emb, y[mine]); value.backward()
    got = (value.detach(), emb.grad / world, loss.proxies.grad.clone())  # / world: DDP's share
    whole = x.clone().requires_grad_(); loss.proxies.grad = None
    ref = loss(whole, y); ref.backward()
    want = (ref.detach(), whole.grad[mine], loss.proxies.grad.clone())
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    worst = max(worst, max(float(((a - b).abs() / b.abs().clamp(min=1e-30)).max()) for a, b in zip(got, want)))
print(f"PASS rank {rank}/{world} ({backend}, {torch.cuda.get_device_name(dev)}): sharded and "
      f"replicated loss and gradients == one process, float64, worst relative error {worst:.1e}")
x, y, loss = data(torch.float32, 100, 11318, 2, 512)  # SOP scale: 22,736 points
emb_all = x.clone()
for shard in (True, False):
    step = distributed.GatheredLoss(loss, shard=shard)
    emb = emb_all.tensor_split(world)[rank].clone().requires_grad_()
    for i in range(6):
        if i == 1:
            torch.cuda.synchronize(); t = time.perf_counter()
        emb.grad = loss.proxies.grad = None
        step(emb, y.tensor_split(world)[rank]).backward()
    torch.cuda.synchronize()
    print(f"rank {rank}: SOP-scale loss step, {'sharded' if shard else 'replicated'}: "
          f"{(time.perf_counter() - t) / 5 * 1e3:.1f} ms per step"
          f"{' (processes share one GPU: not a speed-up figure)' if n_gpu < world else ''}")
distributed.shutdown()
PY

step "loss on the GPU (half precision, no host sync, kernel == definition, bad labels)" 300 \
    "$PY" "$W/gpu_loss.py"
step "generate data" 120 "$PY" "$W/make_data.py" "$W"
step "in-memory data, one process, --device cuda --amp" 600 bash -c "
    '$PY' -m pfml_core train --data '$W/blobs.npz' --model mlp --epochs 3 --amp --device cuda \
        --embedding-size 128 --out '$W/run_mem' &&
    '$PY' -c \"import torch; c = torch.load('$W/run_mem/checkpoint.pt', weights_only=True); \
print('config amp/device:', c['config']['amp'], c['config']['device'])\" &&
    cp '$W/run_mem/metrics.csv' '$OUT/metrics_mem.csv'"
step "torchrun, NCCL, SOP layout, ResNet-50 bf16" 900 bash -c "
    '$PY' -m torch.distributed.run --standalone --nproc_per_node=1 -m pfml_core train \
        --config '$W/sop_tiny.toml' --data-root '$W/sop' --max-batches 5 --out '$W/run_sop' &&
    cp '$W/run_sop/metrics.csv' '$OUT/metrics_sop.csv' && cat '$OUT/metrics_sop.csv'"
step "loss vs Gram floor and plain definition, paper + SOP scale" 900 "$PY" "$W/loss_bench.py"
step "sharded energy under torchrun, 2 processes, float64 == one process" 600 \
    "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 "$W/sharded.py"

echo
echo "== summary ($(date -u +%FT%TZ), logs in $OUT)"
for i in "${!NAMES[@]}"; do
    printf '%-80s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
done
grep -h "target <= 1.5x" "$OUT"/*.log 2>/dev/null || true
exit "$FAILED"
