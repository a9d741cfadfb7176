#!/usr/bin/env bash
# The one prepared GPU run for ee-backend (under 9 minutes): a machine with one NVIDIA GPU, a
# CUDA 13 driver, PyTorch + torchvision + transformers + safetensors + numpy, no cargo, no
# network.
#
#   scripts/gpu/validate.sh PATH/TO/ee-backend [OUT_DIR]
#
# Environment: BUDGET_S (default 530), DEVICE (cuda; cpu for a dry run), PYTHON (python3).
#
# PATH/TO/ee-backend: the stripped binary built elsewhere with
#   cargo build --release --workspace --features backend/cuda --bin ee-backend
#   strip -o ee-backend target/release/ee-backend
#
# Steps (each under its own time limit; a failing step is recorded and the run goes on):
#   1. ee-backend probe --run --device cuda: driver, NVRTC, headers, one JIT-compiled kernel;
#   2. torch_ref.py make: random-init torchvision ResNet-50 (seeded), weights as safetensors, a
#      fixed input, PyTorch's logits; ee-backend forward on the same weights and input;
#   3. torch_ref.py profile and ee-backend profile at batch sizes 1..64 (ResNet-50);
#   4. the same for BERT-base while time is left;
#   5. ee-backend profile --from-json on PyTorch's profile (the fallback path);
#   6. torch_ref.py report: OUT_DIR/validate.json (parity, V ours vs PyTorch and ratios, site and
#      ramp shares, p95/median, time to first result, every step's status). It is written on
#      every exit, also when the run is cut short, from whatever the steps left.
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/ee-backend [OUT_DIR]" >&2
  exit 2
fi
BIN=$(realpath "$1")
OUT=$(realpath -m "${2:-validate-out}")
HERE=$(cd "$(dirname "$0")" && pwd)
REF="$HERE/torch_ref.py"
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-530}
# DEVICE=cpu makes a dry run of the whole flow on a machine without a GPU (slow; for testing).
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
STEPS="$OUT/steps.json"
echo "[]" > "$STEPS"
START=$(date +%s)

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET_S - $(elapsed))); }

# Appends {name, rc, seconds, log} to steps.json (python: no jq on the GPU machine).
record_step() {
  "$PY" - "$STEPS" "$1" "$2" "$3" "$4" <<'EOF'
import json, sys
path, name, rc, secs, log = sys.argv[1:]
steps = json.load(open(path))
steps.append({"name": name, "rc": int(rc), "seconds": int(secs), "log": log})
json.dump(steps, open(path, "w"), indent=1)
EOF
}

# step NAME LIMIT_S CMD...: runs CMD under `timeout` (never past the budget), logs to
# OUT/NAME.log, records the result; returns CMD's status.
step() {
  local name=$1 limit=$2
  shift 2
  local remaining
  remaining=$(left)
  if [ "$remaining" -le 5 ]; then
    echo "== $name: skipped (budget spent)"
    record_step "$name" 125 0 "skipped: budget spent"
    return 125
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  echo "== $name (limit ${limit}s, $(elapsed)s used)"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  tail -n 5 "$OUT/$name.log"
  record_step "$name" "$rc" $(($(date +%s) - t0)) "$name.log"
  echo "   -> rc $rc in $(($(date +%s) - t0))s"
  return "$rc"
}

finish() {
  "$PY" "$REF" report --dir "$OUT" --out "$OUT/validate.json" || true
  echo "total $(elapsed)s; report: $OUT/validate.json"
}
trap finish EXIT
trap 'exit 143' TERM INT

# CUDA libraries shipped with PyTorch's wheels (NVRTC, headers) when the system has none: cudarc
# loads NVRTC by name (LD_LIBRARY_PATH), cubecl compiles kernels against $CUDA_PATH/include.
SITE=$("$PY" -c 'import os, nvidia; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
if [ -n "$SITE" ] && [ -d "$SITE/nvidia" ]; then
  NVRTC=$(find "$SITE/nvidia" -name 'libnvrtc.so*' 2>/dev/null | grep -v builtins | head -n 1)
  if [ -n "$NVRTC" ]; then
    LD_LIBRARY_PATH="$(dirname "$NVRTC")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
  fi
  if [ -z "${CUDA_PATH:-}" ] && [ ! -d /usr/local/cuda ] && [ ! -d /opt/cuda ]; then
    FP16=$(find "$SITE/nvidia" -path '*/include/cuda_fp16.h' 2>/dev/null | head -n 1)
    if [ -n "$FP16" ]; then
      CUDA_PATH=$(dirname "$(dirname "$FP16")")
      export CUDA_PATH
    fi
  fi
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} CUDA_PATH=${CUDA_PATH:-}" | tee "$OUT/env.txt"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

step probe 90 "$BIN" probe --run --device "$DEVICE"
cp "$OUT/probe.log" "$OUT/probe.txt"

for MODEL in resnet50 bert-base; do
  if [ "$MODEL" = bert-base ] && [ "$(left)" -lt 200 ]; then
    echo "== bert-base: skipped ($(left)s left)"
    record_step "bert-base" 125 0 "skipped: not enough time left"
    break
  fi
  step "make_$MODEL" 90 "$PY" "$REF" make --model "$MODEL" --out "$OUT/ref" --device "$DEVICE"
  step "forward_$MODEL" 120 "$BIN" forward --model "$MODEL" \
    --weights "$OUT/ref/$MODEL.safetensors" --input "$OUT/ref/${MODEL}_input.safetensors" \
    --device "$DEVICE" --out "$OUT/ours_${MODEL}_logits.json"
  if [ -f "$OUT/ours_${MODEL}_logits.json" ]; then
    step "parity_$MODEL" 30 "$PY" "$REF" compare --ours "$OUT/ours_${MODEL}_logits.json" \
      --ref "$OUT/ref/${MODEL}_torch_logits.json" --tol 1e-3
  fi
  step "torch_profile_$MODEL" 120 "$PY" "$REF" profile --model "$MODEL" --device "$DEVICE" \
    --budget-s 90 --out "$OUT/torch_profile_$MODEL.json"
  step "ours_profile_$MODEL" 150 "$BIN" profile --model "$MODEL" --device "$DEVICE" \
    --weights "$OUT/ref/$MODEL.safetensors" --out "$OUT/ours_$MODEL"
  if [ -f "$OUT/torch_profile_$MODEL.json" ]; then
    step "from_json_$MODEL" 30 "$BIN" profile --from-json "$OUT/torch_profile_$MODEL.json" \
      --out "$OUT/fallback_$MODEL"
  fi
done
