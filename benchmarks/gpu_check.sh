#!/usr/bin/env bash
# A GPU machine's check of sublora's GPU path, in under 5 minutes; prints one table.
#
#   bash benchmarks/gpu_check.sh            # on a machine with CUDA (DEVICE=cuda)
#   DEVICE=cpu bash benchmarks/gpu_check.sh # the same commands on a CPU (how it was checked here)
#
# Rows: training step time (GPT-2 small shape, bf16 autocast + fused AdamW on CUDA), scoring forward
# tokens/s of the trained model, one smoke run (`sublora run --preset smoke`: train, bound, verify), one
# 2-process DDP run (`sublora train --nproc 2`: NCCL on 2 GPUs, gloo on CPU; skipped with 1 GPU).
set -euo pipefail

DEVICE="${DEVICE:-cuda}"
SUBLORA="${SUBLORA:-.venv/bin/sublora}"
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="$(mktemp -d -t sublora-gpu-check-XXXX)"
STEPS="${STEPS:-20}"
if [ "$DEVICE" = cuda ]; then
  NGPU="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')"
  SHAPE=(--model.preset=small --model.block_size=512 --train.batch_size=8 --sublora.intrinsic_dim=25000)
else
  NGPU=0
  SHAPE=(--model.preset=mini --model.block_size=128 --train.batch_size=8 --sublora.intrinsic_dim=4000)
fi
COMMON=(--device "$DEVICE" --train.log_interval=1 --train.eval_interval="$STEPS" --train.checkpoint_interval="$STEPS"
        --train.eval_batches=1)

step_time() {  # median seconds per step after 5 warm-up steps, from RUN/metrics.jsonl
  "$PYTHON" - "$1" <<'EOF'
import json, statistics, sys
t = {e["step"]: e["elapsed"] for e in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")) if e["event"] == "train"}
s = sorted(t)
print(f"{statistics.median(t[b] - t[a] for a, b in zip(s, s[1:]) if a >= 5):.4f}")
EOF
}

# 1. training step time
T0=$SECONDS
"$SUBLORA" train --out "$OUT/step" --preset smoke "${COMMON[@]}" "${SHAPE[@]}" --train.max_steps="$STEPS" >/dev/null 2>&1
STEP="$(step_time "$OUT/step")"
DTYPE="$("$PYTHON" -c "import json; print(json.load(open('$OUT/step/manifest.json'))['dtype'])")"

# 2. scoring: forward tokens/s of the trained model on validation blocks (inference mode, the run's dtype)
SCORE="$("$PYTHON" - "$OUT/step" "$DEVICE" <<'EOF'
import sys, time, torch
from sublora.core.distributed import resolve_device
from sublora.core.train import load_trained
model, config, data = load_trained(sys.argv[1], which="last")
device = resolve_device(sys.argv[2]); model.to(device)
amp = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
gen = torch.Generator().manual_seed(0)
batches = [data.get_batch("val", 16, config.model.block_size, gen) for _ in range(12)]
with torch.inference_mode(), amp:
    theta = model.flat_params()
    for i, (x, y) in enumerate(batches):
        if i == 2:  # two warm-up batches
            (torch.cuda.synchronize() if device.type == "cuda" else None); t0 = time.perf_counter()
        model.loss(x.to(device), y.to(device), theta)
    (torch.cuda.synchronize() if device.type == "cuda" else None)
print(f"{10 * 16 * config.model.block_size / (time.perf_counter() - t0):.0f}")
EOF
)"

# 3. one smoke run: train, compress + bound, verify
T1=$SECONDS
"$SUBLORA" run --preset smoke --out "$OUT/smoke" --train.device="$DEVICE" >/dev/null 2>&1
SMOKE_S=$((SECONDS - T1))
STATUS="$("$PYTHON" -c "import json; print(json.load(open('$OUT/smoke/manifest.json'))['status'])")"

# 4. one 2-process DDP run
if [ "$DEVICE" = cpu ] || [ "$NGPU" -ge 2 ]; then
  T2=$SECONDS
  "$SUBLORA" train --out "$OUT/ddp" --nproc 2 --preset smoke "${COMMON[@]}" --train.threads=1 --train.grad_accum=2 \
    --train.max_steps="$STEPS" >/dev/null 2>&1
  DDP="$(step_time "$OUT/ddp") s/step, $((SECONDS - T2)) s total, $("$PYTHON" -c "import json; m = json.load(open('$OUT/ddp/manifest.json')); print(m['world_size'], 'ranks,', m['allreduce']['bytes_per_step'], 'B all-reduced/step')")"
else
  DDP="skipped: $NGPU GPU (needs 2)"
fi

printf '\n| check (%s, %s) | result |\n| --- | --- |\n' "$DEVICE" "$DTYPE"
printf '| train step (%s) | %s s/step |\n' "${SHAPE[*]}" "$STEP"
printf '| scoring forward | %s tokens/s |\n' "$SCORE"
printf '| smoke run (sublora run --preset smoke) | %s in %s s |\n' "$STATUS" "$SMOKE_S"
printf '| 2-process DDP (sublora train --nproc 2) | %s |\n' "$DDP"
printf '| total | %s s |\n' "$((SECONDS - T0))"
rm -rf "$OUT"
