#!/usr/bin/env bash
# What the collective watchdog costs: DCGAN-28 (configs/fashion-mnist.yaml, global batch 128) on 2
# ranks bound to cores, every collective polled against its deadline (the default) beside plain
# blocking MPI_Wait (DISTGAN_WATCHDOG=off), alternating, REPEATS runs each (default 5), median.
#   bench/watchdog.sh [BUILD_DIR]   env: REPEATS (5), STEPS (60)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${REPEATS:-5}; steps=${STEPS:-60}
data=${DATA:-datasets/fashion-mnist.h5}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -f "$data" ] || { mkdir -p "$(dirname "$data")"; "$build/launcher/distgan" prep fashion-mnist --out "$data"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$repeats"); do
  for mode in on off; do
    DISTGAN_WATCHDOG=$mode mpirun -np 2 --bind-to core -x DISTGAN_WATCHDOG "$build/launcher/distgan" train \
      -c configs/fashion-mnist.yaml --set data.path="$data" --set training.steps=$((steps + 10)) \
      --set logging.every=10 --set logging.sample_every=0 --set checkpoint.every=0 \
      --set logging.run_dir="$tmp/$mode-$r" > "$tmp/$mode-$r.log"
  done
done
$py - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
tmp, repeats = sys.argv[1], int(sys.argv[2])
def rate(run):  # images/s over the logged intervals after the first (warm-up)
    rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][1:]
    return 10 * len(rows) / sum(10 / r["images_per_s"] for r in rows)
on = [rate(f"{tmp}/on-{r}") for r in range(1, repeats + 1)]
off = [rate(f"{tmp}/off-{r}") for r in range(1, repeats + 1)]
print(f"DCGAN-28, 2 ranks, global batch 128, {repeats} runs each (images/s, median):")
print(f"| watchdog on (polling with deadline) | {statistics.median(on):.1f} |")
print(f"| watchdog off (blocking MPI_Wait) | {statistics.median(off):.1f} |")
print(f"| on / off | {statistics.median(on) / statistics.median(off):.3f} |")
print("runs on:", " ".join(f"{x:.1f}" for x in on), " off:", " ".join(f"{x:.1f}" for x in off))
PY
