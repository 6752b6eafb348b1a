#!/usr/bin/env bash
# The Fashion-MNIST lever search (benchmarks/gpu/gpu_fmnist.py) on one H200, no network: reads the repository and
# benchmarks/gpu/bundle/{wheels,fmnist}/ (pure-Python wheels as in make_bundle.py; the four Fashion-MNIST IDX files,
# xz-compressed so that they travel in 64 MiB beside the repository; dp_synth md5-checks them when it decodes them).
#
#   here:  python benchmarks/gpu/make_bundle.py --fmnist           # wheels/ + fmnist/*.xz (27.5 MiB)
#   GPU:   run(command='bash benchmarks/gpu/gpu_fmnist.sh', carry=['benchmarks/gpu/bundle'], timeout_s=600)
#   CPU:   bash benchmarks/gpu/gpu_fmnist.sh --dry-run            # toy sizes, the same plumbing
set -uo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${DP_SYNTH_BUNDLE:-benchmarks/gpu/bundle}
PY=${PYTHON:-python3}
OUTDIR=${OUT:-runs/gpu}; mkdir -p "$OUTDIR"
t0=$(date +%s)
SITE=$(mktemp -d)
if [ "${1:-}" != "--dry-run" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $BUNDLE/wheels/*.whl || exit 1
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 DP_SYNTH_OFFLINE=1
export DP_SYNTH_DATA=$(mktemp -d); mkdir -p "$DP_SYNTH_DATA/fashion_mnist/raw"
for f in $BUNDLE/fmnist/*.xz; do $PY -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" "$f" "$DP_SYNTH_DATA/fashion_mnist/raw/$(basename "$f" .xz)" || exit 1; done
$PY -c "import torch, dp_synth.finetune; print('torch', torch.__version__, '| cuda:', torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 1
echo "== [$(( $(date +%s) - t0 )) s] set up"
RUNS=$(mktemp -d)   # run folders stay on the machine: $OUT brings back only the rows, the log and two sample grids
timeout ${DP_SYNTH_GPU_LIMIT:-560} $PY benchmarks/gpu/gpu_fmnist.py --out "$RUNS" --results "$OUTDIR/gpu_fmnist.json" "$@" 2>&1 | tee "$OUTDIR/gpu_fmnist.log"; rc=${PIPESTATUS[0]}
for r in recipe recipe-no-noise; do [ -f "$RUNS/$r/ft/samples_final.png" ] && cp "$RUNS/$r/ft/samples_final.png" "$OUTDIR/$r-samples.png"; done
rm -rf "$SITE" "$DP_SYNTH_DATA" "$RUNS"
echo "== [$(( $(date +%s) - t0 )) s] done (exit $rc)"
exit $rc
