#!/usr/bin/env bash
# Training throughput: distgan beside the same model and step as a PyTorch DistributedDataParallel
# script, on 1 and 2 ranks bound to cores, launched the same way in the same run. Median of REPEATS
# runs. Prints a table (images/s, the ratio distgan/PyTorch, 2-rank scaling, distgan's time split)
# and writes build/bench/train[-MODEL].json.   bench/train.sh [BUILD_DIR]
#   MODEL=dcgan28  (default) DCGAN-28 on Fashion-MNIST, batch 64 per rank (bench/peer/dcgan_ddp.py)
#   MODEL=resnet64 the resnet at 64 px, ch 8, hinge, batch 16 per rank, on 2,000 synthetic RGB photos
#                  made by `prep images` (bench/peer/resnet_ddp.py)
#   env: REPEATS (3), STEPS (60 for dcgan28, 20 for resnet64), EXTRA (more --set overrides for distgan,
#        e.g. EXTRA="--set cluster.memory_format=contiguous")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${REPEATS:-3}
model=${MODEL:-dcgan28}
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "$model" in
  dcgan28)
    steps=${STEPS:-60}; warmup=10; per_rank=64; data=${DATA:-datasets/fashion-mnist.h5}; json=train
    config=configs/fashion-mnist.yaml; overrides=()
    peer=(bench/peer/dcgan_ddp.py --batch "$per_rank") ;;
  resnet64)
    steps=${STEPS:-20}; warmup=5; per_rank=16; data=${DATA:-$build/bench/photos64.h5}; json=train-resnet64
    config=configs/images64.yaml
    overrides=(--set model.ch=8 --set model.z_dim=128 --set training.augment=none --set training.ema.half_life_kimg=0
               --set eval.every=0)
    peer=(bench/peer/resnet_ddp.py --batch "$per_rank" --ch 8) ;;
  *) echo "bench/train.sh: MODEL must be dcgan28 or resnet64" >&2; exit 2 ;;
esac
$py -c 'import torch, h5py' 2>/dev/null || { echo "the PyTorch peer needs python3-torch: bash cluster/install-deps.sh --with-peer"; exit 1; }
if [ ! -f "$data" ]; then
  mkdir -p "$(dirname "$data")"
  if [ "$model" = dcgan28 ]; then "$build/launcher/distgan" prep fashion-mnist --out "$data"
  else
    $py bench/synthetic_photos.py "$build/bench/photos" 2000 80 >/dev/null
    "$build/launcher/distgan" prep images --dir "$build/bench/photos" --size 64 --out "$data" >/dev/null
  fi
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
lines=$tmp/lines.jsonl
for r in $(seq "$repeats"); do
  for np in 1 2; do
    run=$tmp/run-$np-$r
    # Log every $warmup steps; the first interval (warm-up) is left out of the rate.
    mpirun -np "$np" --bind-to core "$build/launcher/distgan" train -c "$config" "${overrides[@]}" ${EXTRA:-} \
      --set data.path="$data" --set training.batch_size=$((per_rank * np)) --set training.steps=$((steps + warmup)) \
      --set logging.every=$warmup --set logging.sample_every=0 --set checkpoint.every=0 --set logging.run_dir="$run" > "$run.log"
    $py - "$run/metrics.jsonl" "$np" <<'PY' >> "$lines"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]  # the first interval (warm-up) is left out
wall = sum(1 / r["images_per_s"] for r in rows)  # seconds per image, summed over equal-sized intervals
share = {k: sum(r["time_share"][k] for r in rows) / len(rows) for k in ("data", "compute", "comm")}
print(json.dumps({"tool": "distgan", "ranks": int(sys.argv[2]), "images_per_s": len(rows) / wall, "share": share}))
PY
    mpirun -np "$np" --bind-to core $py "${peer[@]}" --data "$data" --steps "$steps" \
      --warmup "$warmup" | tail -n 1 | $py -c 'import json,sys; d=json.loads(sys.stdin.read()); d["tool"]="pytorch"; print(json.dumps(d))' >> "$lines"
  done
done
mkdir -p "$build/bench"
$py - "$lines" "$build/bench/$json.json" "$model" "$per_rank" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda tool, n: statistics.median(r["images_per_s"] for r in runs if r["tool"] == tool and r["ranks"] == n)
print(f"{'ranks':>5} {'distgan':>10} {'pytorch':>10} {'ratio':>7}   distgan time split")
print(f"{'':>5} {'img/s':>10} {'img/s':>10} {'d/pt':>7}   data / compute / comm")
for n in (1, 2):
    share = [r["share"] for r in runs if r["tool"] == "distgan" and r["ranks"] == n]
    s = {k: statistics.median(x[k] for x in share) for k in ("data", "compute", "comm")}
    print(f"{n:>5} {med('distgan', n):>10.1f} {med('pytorch', n):>10.1f} {med('distgan', n) / med('pytorch', n):>7.2f}"
          f"   {100 * s['data']:.0f}% / {100 * s['compute']:.0f}% / {100 * s['comm']:.0f}%")
print(f"2-rank scaling: distgan {med('distgan', 2) / med('distgan', 1):.2f}x, pytorch {med('pytorch', 2) / med('pytorch', 1):.2f}x")
print(f"(median of {len(runs) // 4} runs; {sys.argv[3]}, batch {sys.argv[4]} per rank, ranks bound to cores, 1 thread each)")
json.dump(runs, open(sys.argv[2], "w"), indent=1)
PY
