#!/usr/bin/env bash
# The GPU rows, on one H200 in under 9 minutes, with no network: reads only the repository and benchmarks/gpu/bundle/.
#
#   1. here (PyPI reachable):   python benchmarks/gpu/make_bundle.py        # ~36 MiB: wheels, MNIST, int8 Inception
#   2. on the GPU machine:      bash benchmarks/gpu/gpu_run.sh               # writes $OUT (or runs/gpu): sections and rows
#      (with the device tool:   run(command='bash benchmarks/gpu/gpu_run.sh', carry=['benchmarks/gpu/bundle'], timeout_s=600))
#   3. here:                    copy the returned sections of RESULTS.template.md and the results.json rows into
#                               benchmarks/results/, then python benchmarks/render.py (RESULTS.md is rendered from them)
#
#   bash benchmarks/gpu/gpu_run.sh --dry-run     # on CPU: the same steps at toy sizes, through the bundle (tests/test_benchmarks.py)
#
# Budget on the H200 (seconds; each step is killed at its limit so the rest still runs): install 15, DP step throughput 45,
# sampling throughput 45, FID features 45, end to end MNIST eps=10 at full size 360 (fine-tuning fitted to 3 minutes by
# timing the real step first, then 10,000 samples, FID on 10,000, CNN, memorisation): at most 8.5 minutes in all.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${DP_SYNTH_BUNDLE:-benchmarks/gpu/bundle}
PY=${PYTHON:-python3}
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
OUTDIR=${OUT:-runs/gpu}; RUNS=${DP_SYNTH_GPU_RUNS:-runs/gpu/runs}; mkdir -p "$OUTDIR" "$RUNS"   # $OUT gets 4 files back: keep run folders apart
[ -f $BUNDLE/MANIFEST.json ] || { echo "no $BUNDLE: run python benchmarks/gpu/make_bundle.py first (where PyPI is reachable)"; exit 1; }
t0=$(date +%s)
step() { echo "== [$(( $(date +%s) - t0 )) s] $*"; }

step "installing the bundle's wheels (no network)"
SITE=$(mktemp -d)
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $BUNDLE/wheels/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export DP_SYNTH_DATA=$(mktemp -d); mkdir -p "$DP_SYNTH_DATA/mnist/raw"; cp $BUNDLE/mnist/*.gz "$DP_SYNTH_DATA/mnist/raw/"
export DP_SYNTH_INCEPTION="$(cd "$BUNDLE" && pwd)/inception-int8.npz"
$PY -c "import torch, dp_synth.pipeline; print('torch', torch.__version__, '| cuda:', torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 1

if [ $DRY = 1 ]; then
  DEV=cpu; W=--no-write
  DP="--preset tiny --K 1 2 --batch 4 --rows 8 --repeats 1"; SA="--n 4 --batch 4 --ddim 2 --ddpm 2"; FI="--n 12 --batch 6 --no-bf16"
  E2E="--dry-run --rows mnist-eps10"; T=600; TE=900
else
  DEV=cuda; W=
  DP="--batch 256 --rows 1024 --K 1 4 16 --repeats 3"; SA="--n 2048 --batch 1024 --ddim 10 25 50 100 --ddpm 100 250 --bf16 --channels-last"
  FI="--n 2000 --batch 250"; E2E="--rows mnist-eps10 --size full --finetune-minutes 3"; T=45; TE=360
fi
failed=""
check() { local rc=$?; [ $rc = 0 ] || { failed="$failed $1(exit $rc)"; echo "!! $1 failed with exit status $rc"; }; }
step "DP step throughput";   timeout $T $PY benchmarks/speed/dp_step.py --device $DEV $DP $W;                    check dp_step
step "sampling throughput";  timeout $T $PY benchmarks/speed/sampling.py --device $DEV $SA $W;                   check sampling
step "FID features";         timeout $T $PY benchmarks/speed/fid_features.py --device $DEV $FI $W;               check fid_features
step "end to end";           timeout $TE $PY benchmarks/experiments/end_to_end.py --device $DEV $E2E --out "$RUNS";    check end_to_end
cp benchmarks/results/RESULTS.template.md benchmarks/results/results.json "$OUTDIR/" 2>/dev/null
[ -f "$RUNS/mnist-eps10-full/report.md" ] && cp "$RUNS/mnist-eps10-full/report.md" "$RUNS/mnist-eps10-full/samples.png" "$OUTDIR/" 2>/dev/null
rm -rf "$SITE" "$DP_SYNTH_DATA"
if [ -n "$failed" ]; then step "done; failed:$failed"; exit 3; fi   # 3, not timeout's 124: the device tool reads 124 as its own limit
step "done; every step succeeded"
