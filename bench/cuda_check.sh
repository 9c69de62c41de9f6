#!/usr/bin/env bash
# On a GPU machine: bash bench/cuda_check.sh [OUT_DIR]; about 4 minutes, at most 9.
# Runs the CUDA tests (python -m pytest -m cuda; needs requirements-dev.txt) and times the loss
# against the Gram floor at paper and SOP scale (bench/loss_speed.py --sop; target: <= 1.5x the
# floor at 1,570 points). Logs in OUT_DIR, a summary at the end, non-zero exit if a step failed.
set -uo pipefail
OUT=${1:-${OUT:-/tmp/pfml_cuda_check}}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
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

# a machine without CUDA would skip every test and still pass: fail here instead
step "CUDA device and test tools" 30 "$PY" -c "import pytest, pytest_timeout, torch
assert torch.cuda.is_available(), 'no CUDA device'
print(torch.cuda.get_device_name(), 'x', torch.cuda.device_count(), 'torch', torch.__version__)"
step "loss vs Gram floor and plain definition, paper + SOP scale" 180 "$PY" "$W/loss_bench.py"
step "pytest -m cuda" 300 "$PY" -m pytest -m cuda -q -rfEs -p no:cacheprovider \
    --continue-on-collection-errors

echo
echo "== summary ($(date -u +%FT%TZ), logs in $OUT)"
for i in "${!NAMES[@]}"; do
    printf '%-62s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
done
grep -h "target <= 1.5x" "$OUT"/*.log 2>/dev/null || true
tail -n 1 "$OUT/pytest__m_cuda.log" 2>/dev/null || true
exit "$FAILED"
