#!/usr/bin/env bash
# What a checkpoint costs: DCGAN-28 (configs/fashion-mnist.yaml, batch 128) on 2 ranks bound to
# cores, checkpointing every 10 steps, beside the same run checkpointing only at the end. Reports
# the median pause of training per checkpoint (rank 0: BatchNorm averaging, RNG gather, host copy),
# the background write time, the file size, the time of one step, and the throughput of both runs
# (the write thread shares rank 0's core). Median over REPEATS runs.
#   bench/checkpoint.sh [BUILD_DIR]   env: REPEATS (3), STEPS (100)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${REPEATS:-3}; steps=${STEPS:-100}
data=${DATA:-datasets/fashion-mnist.h5}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f "$data" ] || { mkdir -p "$(dirname "$data")"; "$build/launcher/distgan" prep fashion-mnist --out "$data"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$repeats"); do
  for every in 10 0; do
    run=$tmp/run-$every-$r
    mpirun -np 2 --bind-to core "$build/launcher/distgan" train -c configs/fashion-mnist.yaml \
      --set data.path="$data" --set training.steps="$steps" --set checkpoint.every=$every \
      --set checkpoint.keep=2 --set logging.every=10 --set logging.sample_every=0 \
      --set logging.run_dir="$run" > "$run.log"
  done
done
$py - "$tmp" "$repeats" "$steps" <<'PY'
import glob, json, re, statistics, sys
tmp, repeats, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rate(run):  # images/s over the logged intervals after the first (warm-up)
    rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][1:]
    return 10 * len(rows) / sum(10 / r["images_per_s"] for r in rows) * 128 / 128
pause, write, size = [], [], []
for r in range(1, repeats + 1):
    for m in re.finditer(r"\((\S+) MB\): training paused (\d+) ms, written in the background in (\d+) ms",
                         open(f"{tmp}/run-10-{r}.log").read()):
        size.append(float(m.group(1))); pause.append(int(m.group(2))); write.append(int(m.group(3)))
with_ck = statistics.median(rate(f"{tmp}/run-10-{r}") for r in range(1, repeats + 1))
without = statistics.median(rate(f"{tmp}/run-0-{r}") for r in range(1, repeats + 1))
step_ms = 1000 * 128 / without
print(f"DCGAN-28, 2 ranks, global batch 128, {repeats} runs of {steps} steps, a checkpoint every 10 steps:")
print(f"| checkpoint file | {statistics.median(size):.1f} MB |")
print(f"| training paused per checkpoint (median of {len(pause)}) | {statistics.median(pause)} ms |")
print(f"| background write (HDF5 + fsync + rename) | {statistics.median(write)} ms |")
print(f"| one training step (no checkpoints) | {step_ms:.0f} ms |")
print(f"| pause / step | {statistics.median(pause) / step_ms:.2f} |")
print(f"| images/s: checkpoint every 10 steps / only at the end | {with_ck:.0f} / {without:.0f} = {with_ck / without:.3f} |")
PY
