#!/usr/bin/env bash
# GPU_CHECKS items 3 and 5 for the multi-scale LM in one device call (each stage time-boxed, so
# a failure still returns what came before):
#   1. benchmarks/train_throughput.py on the 100M config, bf16, compiled, with --check
#      (FLOPs vs FlopCounterMode; flex vs spans gradients): MFU side by side with a minimal loop;
#   2. train that config on a sentence output for about TRAIN_S seconds (steps from stage 1's s/step);
#   3. generate each audio task's test set the checkpoint learned (GEN_TASKS; the simulated se /
#      dereverb / tse / sound_edit pairs when SENT held them); the wavs and why each generation
#      stopped come back in OUT/gen.tar, scored with `benchmark run --task T --system DIR` anywhere.
# Usage (repo root; wheels for packages the GPU image lacks in .whl/, see tools/device/README.md):
#   SENT=.gpu/sent10h SUITE=.gpu/suite OUT=/tmp/out bash tools/device/lm_gpu.sh
set -u
OUT=${OUT:-/tmp/lm-gpu}; SENT=${SENT:-demo-data/sentences}; SUITE=${SUITE:-demo}
CONFIG=${CONFIG:-configs/lm-100m.yaml}; DEVICE=${DEVICE:-cuda}; COMPILE=${COMPILE---compile}
TRAIN_S=${TRAIN_S:-180}; BENCH_STEPS=${BENCH_STEPS:-30}; WORKERS=${WORKERS:-4}; LIMIT=${LIMIT:-12}
GEN_TASKS=${GEN_TASKS:-"tts tta ttm se dereverb tse sound_edit"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/device.txt"
t0=$(date +%s)
echo "== 1. throughput ($CONFIG, $DEVICE $COMPILE)"
timeout "${BENCH_TIMEOUT:-300}" python3 benchmarks/train_throughput.py --config "$CONFIG" --data "$SENT" --device "$DEVICE" \
  $COMPILE --workers "$WORKERS" --steps "$BENCH_STEPS" --check 2>&1 | grep -v Warning | tee "$OUT/throughput.txt"
step_s=$(awk '/^ours \(train lm\)/ {print $(NF-1)}' "$OUT/throughput.txt")
steps=$(python3 -c "print(max(20, int($TRAIN_S / ${step_s:-1})))")
echo "== 2. train $steps steps (~${TRAIN_S}s at ${step_s:-?} s/step), $(( $(date +%s) - t0 ))s so far"
timeout "${TRAIN_TIMEOUT:-360}" python3 -m uniaudio train lm "$CONFIG" --data "$SENT" --out /tmp/lm-run --steps "$steps" \
  > "$OUT/train.txt" 2>&1; echo "train exit $?" | tee -a "$OUT/train.txt"
tail -3 "$OUT/train.txt"; cp /tmp/lm-run/log.jsonl "$OUT/log.jsonl" 2>/dev/null
grep '"val"' "$OUT/log.jsonl" | tail -3
for task in $GEN_TASKS; do  # a task the checkpoint did not learn is refused in one line and skipped
  echo "== 3. generate $task ($LIMIT items), $(( $(date +%s) - t0 ))s so far"
  timeout "${GEN_TIMEOUT:-150}" python3 -m uniaudio train generate --checkpoint /tmp/lm-run --task "$task" \
    --suite "$SUITE" --out /tmp/lm-gen/lm-gpu --limit "$LIMIT" 2>&1 | grep -v "it/s\]" | tail -3
done
tar -cf "$OUT/gen.tar" -C /tmp/lm-gen . 2>/dev/null
echo "== done in $(( $(date +%s) - t0 ))s"
