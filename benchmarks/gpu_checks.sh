#!/usr/bin/env bash
# GPU checks, one prepared script for a lent CUDA machine (or `DEVICE=cpu` here to try it).
#   bash benchmarks/gpu_checks.sh CORPUS OUT_DIR
# 1. the tracker's CUDA test (accumulation equals a direct computation; no host sync
#    between flushes, under torch.cuda.set_sync_debug_mode("error"));
# 2. the tracker overhead benchmark on the device (JSON);
# 3. a 16-mixture proxy sweep with the builtin trainer, then fit and validate (JSON);
# 4. the allocation benchmark's protocol v2 (docs/climb.md "The recommendation") at a GPU
#    size: the same 409,600 tokens per run (at e_max 1 the skewed corpus's 2.38M tokens
#    bound the budget), a model 4x wider and 2x deeper (about 30x the parameters), 8 seeds
#    instead of 6; 24 proxies, refinement, recommendation, 6 arms (JSON; tables after).
#    Estimated, not yet measured: 6-10 minutes of one H100. ALLOCATION=0 skips it; it needs
#    /usr/share/locale (Debian's gettext catalogs).
# Needs only python3 with torch, numpy, scipy, numba, pyyaml, tqdm, matplotlib, pytest, and a
# prepared corpus (the demo's: out/demo/corpus); it runs from the repository root.
set -uo pipefail
CORPUS=${1:-out/demo/corpus}
OUT=${2:-out/gpu}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-160}
RUNS=${RUNS:-16}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NUMBA_THREADING_LAYER=workqueue
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
echo "== tracker CUDA test"
python3 -m pytest -q -p no:cacheprovider tests/train/test_tracker_accumulation.py 2>&1 | tail -3
echo "== tracker overhead"
python3 benchmarks/tracker_overhead.py --device "$DEVICE" > "$OUT/tracker_overhead.json"; tail -c 1500 "$OUT/tracker_overhead.json"; echo
echo "== sweep: $RUNS mixtures x $STEPS steps on $DEVICE"
LANGS=$(python3 -c "import json,sys; print(','.join(sorted(json.load(open(sys.argv[1]+'/climbstream-manifest.json'))['languages'])))" "$CORPUS")
python3 -m climbstream design --langs "$LANGS" --runs "$RUNS" --method dirichlet --seed 0 --out "$OUT/design.yaml"
start=$(date +%s)
python3 -m climbstream sweep "$OUT/design.yaml" --corpus "$CORPUS" --out "$OUT/runs.csv" --device "$DEVICE" \
  --steps "$STEPS" --quiet --json | tee "$OUT/sweep.json"
echo "sweep wall seconds: $(( $(date +%s) - start ))"
python3 -m climbstream validate "$OUT/runs.csv" --counts "$CORPUS/climbstream-manifest.json" --out "$OUT/validate" --json > "$OUT/validate.json" 2> "$OUT/validate.err"; echo "validate rc=$?"
python3 - "$OUT/validate.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("cv mae (nats):", {k: round(v["mae_nats"], 4) for k, v in d["cv"].items()})
print("pred mean loss under the climb law:",
      {k: (round(v["pred_mean_loss"], 4) if v.get("pred_mean_loss") is not None else None) for k, v in d["allocations"].items()})
print("climb ratios:", {k: round(v["ratio"], 3) for k, v in d["allocations"]["climb"]["languages"].items()})
PY
if [ "${ALLOCATION:-1}" = 1 ]; then
  echo "== allocation protocol v2 at a GPU size on $DEVICE"
  start=$(date +%s)
  python3 benchmarks/allocation.py --device "$DEVICE" --out "$OUT/allocation" --seeds 8 --d-model 512 --layers 4 \
    --workers 2 --threads 4 > "$OUT/allocation.json" 2> "$OUT/allocation.err"
  echo "allocation rc=$? wall seconds: $(( $(date +%s) - start ))"
  python3 benchmarks/allocation.py --render "$OUT/allocation.json" 2>/dev/null || tail -5 "$OUT/allocation.err"
fi
