#!/usr/bin/env bash
# The GAN-quality measurements of docs/benchmarks.md, reproduced: the shipped configs trained on 2 ranks,
# then `distgan eval` on each final model.
#   2-D mixtures: configs/grid2d.yaml and configs/ring2d.yaml over SEEDS (modes captured, share of
#     high-quality samples, each seed)
#   Fashion-MNIST: configs/fashion-mnist.yaml (2,000 steps; EMA and raw generator) and
#     configs/fashion-mnist-conditional.yaml (class accuracy), next to the real-data floor (the
#     test split scored against the training split)
#   resnet: configs/fashion-mnist-resnet.yaml over SEEDS (issue 17's FID <= 7 in every seed)
#   fashion64: configs/fashion-mnist64-resnet.yaml on Fashion-MNIST enlarged to 64x64 by `prep images`,
#     FID at steps 1,000 and 2,000 in a 64 px classifier's features beside its real-data floor
# Usage: bash bench/quality.sh [BUILD]   (ONLY=mixtures|fashion|resnet|fashion64 to run a part; SEEDS="0 1 2 3 4"; NP=2 ranks;
#   EXTRA="--set training.steps=50" adds overrides to every training run, e.g. to try the script)
# Results: $OUT (default build/bench/quality) with one run directory and JSON per measurement, and
# a summary table printed at the end. Takes about 1.5 hours on 2 cores (the mixtures about 40 minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$here/build}")
distgan=$build/launcher/distgan
out=${OUT:-$build/bench/quality}
seeds=${SEEDS:-0 1 2 3 4}
only=${ONLY:-all}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$distgan" ] || { echo "quality.sh: build first (make build): $distgan is missing" >&2; exit 2; }
mkdir -p "$out"
cd "$here"
mkdir -p datasets
prep() { [ -f "$1" ] || "$distgan" prep "${@:2}" --out "$1"; }
train() {  # CONFIG RUN_DIR [--set ...]
  local config=$1 run=$2; shift 2
  rm -rf "$run"
  # shellcheck disable=SC2086
  mpirun -np "${NP:-2}" --bind-to core "$distgan" train --config "$config" --set logging.run_dir="$run" "$@" ${EXTRA:-} \
    > "$run.log" 2>&1 \
    || { echo "quality.sh: training failed, see $run.log" >&2; exit 1; }
}
# Fashion-MNIST (train and test) and its feature classifier, made once: sets $classifier.
fashion_classifier() {
  prep datasets/fashion-mnist.h5 fashion-mnist
  prep datasets/fashion-mnist-test.h5 fashion-mnist --split test
  classifier=datasets/fashion-mnist-classifier.h5
  [ -f "$classifier" ] || "$distgan" eval train-classifier --train datasets/fashion-mnist.h5 \
    --test datasets/fashion-mnist-test.h5 -o "$classifier"
}
metric() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics'][sys.argv[2]])" "$@"; }

summary=()
if [ "$only" = all ] || [ "$only" = mixtures ]; then
  prep datasets/grid.h5 grid
  prep datasets/ring.h5 ring
  for name in grid2d ring2d; do
    modes=() hq=()
    for seed in $seeds; do
      run=$out/$name-s$seed
      train "configs/$name.yaml" "$run" --set training.seed="$seed"
      "$distgan" eval -k "$run/final.h5" --json "$run.json" >/dev/null
      modes+=("$(metric "$run.json" modes_captured | cut -d. -f1)")
      hq+=("$(/usr/bin/python3 -c "print(f'{100 * $(metric "$run.json" high_quality):.1f}%')")")
      echo "$name seed $seed: modes ${modes[-1]}, high quality ${hq[-1]}"
    done
    summary+=("| configs/$name.yaml, seeds $seeds | ${modes[*]} | ${hq[*]} |")
  done
fi
if [ "$only" = all ] || [ "$only" = fashion ]; then
  fashion_classifier
  "$distgan" eval --samples-file datasets/fashion-mnist-test.h5 --real datasets/fashion-mnist.h5 \
    --classifier "$classifier" --json "$out/floor.json"
  train configs/fashion-mnist.yaml "$out/fashion"
  "$distgan" eval -k "$out/fashion/final.h5" --classifier "$classifier" --json "$out/fashion-ema.json"
  "$distgan" eval -k "$out/fashion/final.h5" --classifier "$classifier" --no-ema --json "$out/fashion-raw.json"
  train configs/fashion-mnist-conditional.yaml "$out/conditional"
  "$distgan" eval -k "$out/conditional/final.h5" --classifier "$classifier" --json "$out/conditional-ema.json"
  for m in floor fashion-ema fashion-raw conditional-ema; do
    summary+=("| $m | $(for k in fid kid precision recall; do printf '%.4g ' "$(metric "$out/$m.json" $k)"; done)|")
  done
fi
if [ "$only" = all ] || [ "$only" = resnet ]; then
  fashion_classifier
  for seed in $seeds; do
    run=$out/resnet-s$seed
    start=$(date +%s)
    train configs/fashion-mnist-resnet.yaml "$run" --set training.seed="$seed" --set checkpoint.every=0
    took=$(( $(date +%s) - start ))
    "$distgan" eval -k "$run/final.h5" --classifier "$classifier" --json "$run.json" >/dev/null
    summary+=("| fashion-mnist-resnet seed $seed (${took} s) | $(for k in fid kid precision recall; do printf '%.4g ' "$(metric "$run.json" $k)"; done)|")
    echo "${summary[-1]}"
  done
fi
if [ "$only" = all ] || [ "$only" = fashion64 ]; then
  prep datasets/fashion-mnist.h5 fashion-mnist
  prep datasets/fashion-mnist-test.h5 fashion-mnist --split test
  if [ ! -f datasets/fashion-mnist64-test.h5 ]; then
    pngs=$(mktemp -d)
    /usr/bin/python3 bench/fashion_mnist_png.py datasets/fashion-mnist.h5 datasets/fashion-mnist-test.h5 "$pngs"
    "$distgan" prep images --dir "$pngs/train" --size 64 --channels 1 --labels folders --out datasets/fashion-mnist64.h5
    "$distgan" prep images --dir "$pngs/test" --size 64 --channels 1 --labels folders --out datasets/fashion-mnist64-test.h5
    rm -rf "$pngs"
  fi
  classifier=datasets/fashion-mnist64-classifier.h5
  [ -f "$classifier" ] || "$distgan" eval train-classifier --train datasets/fashion-mnist64.h5 \
    --test datasets/fashion-mnist64-test.h5 -o "$classifier"
  "$distgan" eval --samples-file datasets/fashion-mnist64-test.h5 --real datasets/fashion-mnist64.h5 \
    --classifier "$classifier" --json "$out/floor64.json" >/dev/null
  run=$out/fashion64
  train configs/fashion-mnist64-resnet.yaml "$run"
  "$distgan" eval -k "$run/checkpoints/ckpt_00001000.h5" --classifier "$classifier" --json "$out/fashion64-1000.json" >/dev/null
  "$distgan" eval -k "$run/final.h5" --classifier "$classifier" --json "$out/fashion64-2000.json" >/dev/null
  for m in floor64 fashion64-1000 fashion64-2000; do
    summary+=("| $m | $(for k in fid kid precision recall; do printf '%.4g ' "$(metric "$out/$m.json" $k)"; done)|")
  done
fi
echo
printf '%s\n' "${summary[@]}"
