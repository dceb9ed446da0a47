#!/usr/bin/env bash
# The CUDA checks, run on a GPU machine in one go (results under $OUT, default benchmarks/results):
# - the CUDA-only tests (the fp16 gradient-penalty closed form, with and without loss scaling);
# - WGAN-GP on the digits for 2,000 steps in bf16 and in fp16 (GradScaler + scaled-output
#   penalty): both must finish without a non-finite loss; their last sample grids are kept;
# - the 2-D mixtures benchmark (dcgan, wgan-clip, wgan-gp; 3 seeds each, in parallel);
# - last, alone on the GPU: the speed benchmark at 64x64, batch 128, fp32/bf16/fp16, with the fast path
#   (SPEED=0 skips it).
set -u
OUT=${OUT:-benchmarks/results}
STEPS=${STEPS:-8000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pytest -q -p no:cacheprovider tests/test_regularizers.py > "$OUT/cuda_tests.txt" 2>&1 &
for p in bf16 fp16; do
  OMP_NUM_THREADS=1 gancore run wgan --out "/tmp/wgan-digits-$p" --set train.precision=$p \
    --set train.steps=2000 --set log.progress=false --set log.sample_every=1000 > "/tmp/wgan-digits-$p.log" 2>&1 &
done
python3 benchmarks/mixtures.py --steps "$STEPS" --jobs 9 --out "$OUT/mixtures.json"
wait
for p in bf16 fp16; do
  echo "== wgan-gp digits $p"; tail -n 2 "/tmp/wgan-digits-$p.log"
  cp "/tmp/wgan-digits-$p/samples/step_0002000.png" "$OUT/wgan_gp_digits_$p.png" 2>/dev/null
  cp "/tmp/wgan-digits-$p/metrics.jsonl" "$OUT/wgan_gp_digits_${p}_metrics.jsonl" 2>/dev/null
done
tail -n 3 "$OUT/cuda_tests.txt"
if [ "${SPEED:-1}" = 1 ]; then
  python3 benchmarks/speed/run.py --device cuda --image-size 64 --batch 128 --precisions fp32 bf16 fp16 \
    --fast --out "$OUT/speed_cuda.json"
fi
