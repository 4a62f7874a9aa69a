#!/usr/bin/env bash
# Loader throughput benchmark: samples/s per rank reading Fashion-MNIST through the sampler and the
# prefetching loader on 1 and 2 ranks (bound to cores), median of REPEATS runs, beside what a
# DCGAN-28 training step consumes per rank in the same runs. Prints a table; writes JSON.
#   bench/loader.sh [BUILD_DIR]      env: REPEATS (5), BATCH (64), BATCHES (400), DATA
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${REPEATS:-5}; batch=${BATCH:-64}; batches=${BATCHES:-400}
data=${DATA:-datasets/fashion-mnist.h5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -f "$data" ]; then
  mkdir -p "$(dirname "$data")"
  "$build/launcher/distgan" prep fashion-mnist --out "$data"
fi
out=$build/bench/loader.json
: > "$out.lines"
for np in 1 2; do
  for r in $(seq "$repeats"); do
    mpirun -np "$np" --bind-to core "$build/bench/distgan_bench_loader" --data "$data" --batch "$batch" \
      --batches "$batches" --consumer-steps 8 | tail -n 1 >> "$out.lines"
  done
done
python3 - "$out.lines" "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = []
for np in sorted({r["ranks"] for r in runs}):
    mine = [r for r in runs if r["ranks"] == np]
    load = statistics.median(min(r["samples_per_s"]) for r in mine)        # slowest rank of each run
    train = statistics.median(max(r["train_samples_per_s"]) for r in mine)  # fastest consumer: the worst case
    rss = max(max(r["peak_rss_mib"]) for r in mine)
    base = max(max(r["rss_before_loader_mib"]) for r in mine)
    rows.append(dict(ranks=np, runs=len(mine), loader_samples_per_s=load, train_samples_per_s=train,
                     ratio=load / train, peak_rss_mib=rss, rss_before_loader_mib=base))
print(f"{'ranks':>5} {'runs':>4} {'loader':>12} {'training':>12} {'ratio':>7} {'peak RSS':>9} {'before':>8}")
print(f"{'':>5} {'':>4} {'samples/s':>12} {'samples/s':>12} {'x':>7} {'MiB':>9} {'MiB':>8}")
for r in rows:
    print(f"{r['ranks']:>5} {r['runs']:>4} {r['loader_samples_per_s']:>12.0f} {r['train_samples_per_s']:>12.0f} "
          f"{r['ratio']:>7.1f} {r['peak_rss_mib']:>9.1f} {r['rss_before_loader_mib']:>8.1f}")
ok = all(r["ratio"] >= 20 for r in rows)
print("per rank; loader = slowest rank, median of runs; training = a DCGAN-28 D+G step at the same batch, 1 thread")
print("OK: the loader delivers >= 20x what training consumes" if ok else "FAILED: loader below 20x training")
json.dump(dict(rows=rows, runs=runs), open(sys.argv[2], "w"), indent=1)
PY
rm -f "$out.lines"
echo "wrote $out"
