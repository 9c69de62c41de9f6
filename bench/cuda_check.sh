#!/usr/bin/env bash
# The CUDA path end to end, for a machine with one GPU (about 3 minutes):
#   bash bench/cuda_check.sh [OUT_DIR]
# 1. half-precision embeddings through the loss on the GPU, 2. an in-memory run with
# --device cuda --amp, 3. torchrun (NCCL) on a generated SOP-layout folder with the paper's
# SOP config shrunk (ResNet-50, weights=None, batch 100 = 50 classes x 2, bf16, frozen BN),
# 4. the loss at paper scale vs the Gram floor on the GPU (bench/loss_scaling.py).
set -euo pipefail
OUT=${1:-${OUT:-/tmp/pfml_cuda_check}}
mkdir -p "$OUT"
W=$(mktemp -d)
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:${PYTHONPATH:-}
python3 - "$W" <<'PY'
import sys, pathlib, numpy as np, torch
from PIL import Image
from pfml_core.loss import PotentialFieldLoss
w = pathlib.Path(sys.argv[1])
assert torch.cuda.is_available(), "no CUDA device"
print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
loss = PotentialFieldLoss(10, 64, proxies_per_class=3).cuda()
y = torch.arange(40, device="cuda") % 10
for dt in (torch.float16, torch.bfloat16):
    x = torch.randn(40, 64, device="cuda").to(dt).requires_grad_()
    v = loss(x, y); v.backward()
    ref = loss(x.detach().float(), y)
    assert torch.isfinite(v) and x.grad.dtype == dt and torch.isfinite(x.grad).all()
    assert torch.allclose(v.float(), ref, rtol=1e-3), (v, ref)
    print(f"PASS loss with {dt} embeddings on cuda: {float(v):.4f} == float32 {float(ref):.4f}")
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
text = pathlib.Path("configs/sop_resnet50.toml").read_text()
for a, b in (("pretrained = true", "pretrained = false"), ("epochs = 200", "epochs = 2"),
             ("eval_subset = 60502", "eval_subset = 180")):
    text = text.replace(a, b)
(w / "sop_tiny.toml").write_text(text)
PY
echo "== in-memory data, one process, --device cuda --amp"
python3 -m pfml_core train --data "$W/blobs.npz" --model mlp --epochs 3 --amp --device cuda \
    --embedding-size 128 --out "$W/run_mem"
python3 -c "import torch,sys; c=torch.load('$W/run_mem/checkpoint.pt',weights_only=True); print('config amp/device:', c['config']['amp'], c['config']['device'])"
cp "$W/run_mem/metrics.csv" "$OUT/metrics_mem.csv"
echo "== torchrun, NCCL, SOP layout, ResNet-50 bf16"
python3 -m torch.distributed.run --standalone --nproc_per_node=1 -m pfml_core train \
    --config "$W/sop_tiny.toml" --data-root "$W/sop" --max-batches 5 --out "$W/run_sop"
cp "$W/run_sop/metrics.csv" "$OUT/metrics_sop.csv"; cat "$OUT/metrics_sop.csv"
echo "== loss vs Gram floor on the GPU"
python3 bench/loss_scaling.py --device cuda | tee "$OUT/loss_scaling_cuda.txt"
