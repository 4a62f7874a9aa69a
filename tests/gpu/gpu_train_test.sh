#!/usr/bin/env bash
# Training on a GPU end to end: 1 rank with NCCL, 2 ranks sharing one GPU with the MPI backend,
# bf16 autocast, and a GPU checkpoint resumed on the CPU. Skipped (77) without a CUDA LibTorch and
# a visible GPU.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir

if "$DISTGAN" --version | grep -q "without CUDA"; then echo "SKIP this LibTorch has no CUDA"; exit 77; fi
prep_fashion_test fm.h5
if ! out=$("$DISTGAN" train -c "$config" --set data.path=fm.h5 --set cluster.device=cuda --check 2>&1); then
  echo "SKIP no usable GPU: $out"; exit 77
fi
run() { "$@" --set data.path=fm.h5 --set training.steps=40 --set checkpoint.every=20; }

expect_ok "1 rank on cuda:0 with NCCL" "on 1 rank\(s\) \(cuda, nccl backend\)" \
  run "$DISTGAN" train -c "$config" --set cluster.device=cuda --set logging.run_dir=nccl
expect_ok "its losses are finite" "finite" $py -c "
import json, math
rows = [json.loads(l) for l in open('nccl/metrics.jsonl')]
assert rows[-1]['step'] == 40 and all(math.isfinite(r['loss_d']) and math.isfinite(r['loss_g']) for r in rows)
print('finite')"
expect_ok "2 ranks share one GPU through the MPI backend" "on 2 rank\(s\) \(cuda, mpi backend\)" \
  run mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set cluster.device=cuda \
  --set cluster.backend=mpi --set logging.run_dir=shared
expect_ok "bf16 autocast trains" "bf16 autocast" \
  run "$DISTGAN" train -c "$config" --set cluster.device=cuda --set training.amp=bf16 --set logging.run_dir=bf16
expect_ok "a GPU checkpoint resumes on the CPU" "resumed from nccl/checkpoints/ckpt_00000040.h5" \
  "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set training.steps=60 --set checkpoint.every=20 \
  --set logging.run_dir=nccl --resume auto
finish
