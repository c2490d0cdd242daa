#!/usr/bin/env bash
# One session on a lent GPU machine, as a single command with a deadline:
#   1. benchmarks/solver_cuda.py   (the solver's torch engine on cuda against the CPU; idle machine)
#   2. the CIFAR-10 K=1 grids at convergence (table4-converged-long, table4-converged-long-seeds: the
#      CPU campaign's slowest part, 80 epochs a run; claim 2's λ first), split into
#      WORKERS sweeps that share the GPU (CPU_PER_WORKER threads each); runs whose small files are
#      already in results/images are skipped, finished ones are exported there
#   3. benchmarks/gpu_check.py --compile, beside the sweeps (a correctness check: its timings are
#      taken under that load)
# Every 20 s, and once at the end, the finished runs' small files are packed into OUT/results.tar
# and the logs into OUT/logs.tar (atomically: written beside, then renamed), so a run cut off by
# the deadline loses only the runs in flight; they resume on any machine.
#
#   usage: benchmarks/device_session.sh OUT DATA_DIR DEADLINE_S [PROFILE]
#   e.g.   OTFLOW_GIT_REVISION=$(git rev-parse HEAD) benchmarks/device_session.sh $OUT .devdata 540
# PROFILE (default: the grids' own, converged-long) lets a CPU-only machine try the script: smoke.
# On CUDA the runs train under bf16 autocast (the CPU's in float32): environment.json records it.
set -u
OUT=$1 DATA=$2 DEADLINE=$3 PROFILE=${4:-}
PY=${PY:-python3} WORKERS=${WORKERS:-8} CPU_PER_WORKER=${CPU_PER_WORKER:-2}
START=$(date +%s)
export PYTHONUNBUFFERED=1
LOGS=runs/device_logs  # outside OUT: only a few files come back from there
mkdir -p "$LOGS" runs/device
left() { echo $((DEADLINE - ($(date +%s) - START))); }

pack() {  # small files of every finished run, and the logs, into two tars (atomic renames)
  tar -cf "$OUT/.results.tar" -C results images 2>/dev/null && mv "$OUT/.results.tar" "$OUT/results.tar"
  tar -cf "$OUT/.logs.tar" -C "$LOGS" . 2>/dev/null && mv "$OUT/.logs.tar" "$OUT/logs.tar"
}

{ nvidia-smi; $PY -c "import torch, numpy, scipy, numba; print('torch', torch.__version__, 'numpy', numpy.__version__, \
'scipy', scipy.__version__, 'numba', numba.__version__, 'cuda', torch.cuda.is_available())"; nproc; free -g; } \
  > "$LOGS/machine.txt" 2>&1
cat "$LOGS/machine.txt"

if [ -z "$PROFILE" ]; then
  timeout 120 $PY benchmarks/solver_cuda.py --out "$LOGS/solver_cuda.json" 2>&1 | tee "$LOGS/solver_cuda.log"
fi

# the shards: (grid, filters); each a sweep of its own (own manifest), all exporting to results/images
SHARDS=(
  "table4-converged-long --archs resnet --wds 1e-3,5e-3,5e-2,0.1"
  "table4-converged-long --archs plain --wds 1e-3,5e-3,5e-2,0.1"
  "table4-converged-long-seeds --archs resnet --seeds 1"
  "table4-converged-long-seeds --archs plain --seeds 1"
  "table4-converged-long-seeds --archs resnet --seeds 2"
  "table4-converged-long-seeds --archs plain --seeds 2"
  "table4-converged-long --archs resnet --wds 0,1e-4,5e-4,1e-2,0.2"
  "table4-converged-long --archs plain --wds 0,1e-4,5e-4,1e-2,0.2"
)
common="--out runs/device --results results/images --data-dir $DATA --no-download --no-progress --resume
  --cpus-per-task $CPU_PER_WORKER"
[ -n "$PROFILE" ] && common="$common --profile $PROFILE"
# one worker's BLAS, OpenMP and numba threads (numba's default, every core, would oversubscribe)
export OMP_NUM_THREADS=$CPU_PER_WORKER MKL_NUM_THREADS=$CPU_PER_WORKER NUMBA_NUM_THREADS=$CPU_PER_WORKER
pids=()
for i in "${!SHARDS[@]}"; do
  [ "$i" -ge "$WORKERS" ] && break
  # shellcheck disable=SC2086
  timeout "$(left)" $PY -m image_experiments.sweep ${SHARDS[$i]} $common > "$LOGS/shard$i.log" 2>&1 &
  pids+=($!)
done

if [ -z "$PROFILE" ]; then
  timeout 240 $PY benchmarks/gpu_check.py --compile --out "$LOGS/gpu_check.json" 2>&1 | tee "$LOGS/gpu_check.log"
fi

alive() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while alive; do
  pack
  grep -h "completed\|failed\|finished" "$LOGS"/shard*.log 2>/dev/null | tail -n 3
  sleep 20
done
wait
pack
echo "== $(ls -d results/images/*/ | wc -l) run folders in results/images after $(( $(date +%s) - START )) s"
grep -h "epoch .*/" "$LOGS"/shard*.log | tail -n 8
