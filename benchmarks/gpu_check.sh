#!/usr/bin/env bash
# Every GPU check of vitrecon in one run (about 5-8 minutes on an H100/H200), for the day a GPU is lent:
#   bash benchmarks/gpu_check.sh OUT_DIR
# Needs python with torch (CUDA), timm, h5py, numpy, fastmri (--no-deps) and runstats; no Qt.
# Writes into OUT_DIR: env.json, pytest-cuda.log, bench-bf16.json, bench-fp32.json, sdpa.json,
# train-throughput.json, torchrun.log, and summary.txt (one line per check, PASS/FAIL/SKIP).
# Each step has its own time limit, so one hung step cannot eat the others' time.
set -u
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # name seconds command...: run, record PASS/FAIL with the wall time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  if timeout "$limit" "$@"; then echo "PASS $name ($((SECONDS - t0)) s)" >> "$SUMMARY"
  else echo "FAIL $name (exit $?, $((SECONDS - t0)) s)" >> "$SUMMARY"; fi
}

step env 60 $PY - "$OUT/env.json" <<'EOF'
import json, sys, torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "available": torch.cuda.is_available(),
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported()}
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(info)
sys.exit(0 if info["available"] else 1)
EOF
if ! grep -q '"available": true' "$OUT/env.json" 2>/dev/null; then
  echo "SKIP everything else: CUDA is not available" >> "$SUMMARY"; cat "$SUMMARY"; exit 1
fi

# 1. the test suite's CUDA tests (engine and trainer; no Qt on the GPU machine)
step pytest-cuda 240 $PY -m pytest -q -x -p no:cacheprovider -k "cuda or gpu or autocast" tests/engine tests/trainer \
  > "$OUT/pytest-cuda.log" 2>&1

# 2. inference: batch 1..64, bf16 autocast (the default on CUDA) with the official-code comparison, then fp32
step bench-bf16 180 $PY -m engine.bench --device cuda --models vit-s,unet-s,vit-l,unet-m --batch 1,8,32,64 \
  --warmup 3 --iters 20 --reference --json > "$OUT/bench-bf16.json"
step bench-fp32 120 $PY -m engine.bench --device cuda --models vit-s,unet-s,vit-l --batch 1,32 \
  --warmup 3 --iters 10 --precision fp32 --json > "$OUT/bench-fp32.json"

# 3. attention: the flash SDPA kernel takes the ViT's shapes under bf16 (an error if it cannot)
step sdpa-flash 60 $PY - "$OUT/sdpa.json" <<'EOF'
import json, sys, torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from engine.models import create_model
model = create_model("vit-l").cuda().eval()
x = torch.randn(8, 1, 320, 320, device="cuda")
with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        flash = model(x).float()
    with sdpa_kernel([SDPBackend.MATH]):
        math_ = model(x).float()
err = float((flash - math_).abs().max() / math_.abs().max())
json.dump({"flash_ok": True, "max_rel_diff_vs_math": err}, open(sys.argv[1], "w"), indent=2)
print("flash attention ok, max relative difference to the math kernel", err)
EOF

# 4. training throughput of the trainer's own step, vit-s and unet-s, 320 x 320
step train-throughput 150 $PY benchmarks/train_throughput.py --device cuda --size 320 --batch 32 --steps 20 \
  --warmup 3 --json "$OUT/train-throughput.json"

# 5. a torchrun step: two processes (NCCL on two GPUs; gloo on the CPU when there is one GPU)
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
DEV=cuda; [ "$NGPU" -lt 2 ] && DEV=cpu
step "torchrun-2proc-$DEV" 120 $PY -m torch.distributed.run --standalone --nproc_per_node=2 -m trainer pretrain \
  --device $DEV --model vit-s --model-args depth=2 --crop 64 --batch-size 4 --max-steps 6 --epoch-size 64 \
  --num-workers 0 --out-dir "$OUT/torchrun-run" --progress-json "$OUT/torchrun-events.jsonl" \
  > "$OUT/torchrun.log" 2>&1
rm -rf "$OUT/torchrun-run/checkpoints"

cat "$SUMMARY"
! grep -q '^FAIL' "$SUMMARY"
