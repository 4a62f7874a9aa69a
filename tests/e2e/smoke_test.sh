#!/usr/bin/env bash
# End to end on 2 MPI ranks: `distgan train` on configs/smoke.yaml (a narrow DCGAN on the
# Fashion-MNIST test split) writes its run directory (config, metrics.jsonl, PNG grids, final.h5),
# and `distgan sample` reads the result.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir

expect_ok "prep the test split" "10000, 1, 28, 28" "$DISTGAN" prep fashion-mnist --split test --out fm.h5
expect_ok "train smoke on 2 ranks" "distgan: done in" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir=run
expect_ok "metrics: one JSON line per 5 steps with every field" "metrics ok" $py - <<'PY'
import json
lines = [json.loads(l) for l in open("run/metrics.jsonl")]
assert [l["step"] for l in lines] == [5, 10, 15, 20], [l["step"] for l in lines]
for l in lines:
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "eta_s", "epoch"):
        assert key in l, key
    assert l["images_per_s"] > 0 and 0 <= l["d_real"] <= 1 and 0 <= l["d_fake"] <= 1
    share = l["time_share"]
    assert abs(share["data"] + share["compute"] + share["comm"] - 1) < 1e-6, share
print("metrics ok")
PY
expect_ok "sample grids are 8x8 PNGs of 28x28 images" "png ok" $py - <<'PY'
import struct
for name in ("run/samples/step_0000010.png", "run/samples/step_0000020.png", "run/samples/final.png"):
    head = open(name, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", name
    w, h = struct.unpack(">II", head[16:24])
    assert (w, h) == (8 * 30 + 2, 8 * 30 + 2), (name, w, h)
print("png ok")
PY
expect_ok "the run directory keeps the config it ran with" "path: \"fm.h5\"" cat run/config.yaml
expect_ok "h5py reads the model file" "model ok" $py - <<'PY'
import h5py
with h5py.File("run/final.h5", "r") as f:
    assert f.attrs["format"].decode() == "distgan-model-2"  # a tensor file: manifest and CRCs
    assert "generator/0.weight float32 [16,32,7,7]" in f.attrs["manifest"].decode()
    assert f.attrs["step"].decode() == "20"
    assert f["generator/0.weight"].shape == (16, 32, 7, 7), f["generator/0.weight"].shape
    assert "discriminator/0.weight" in f
print("model ok")
PY
expect_ok "sample writes images" "wrote 50 items" "$DISTGAN" sample -k run/final.h5 -n 50 --out gen.h5 --grid gen.png
expect_ok "the samples file holds uint8 images" "/images uint8 \[50, 1, 28, 28\]" "$DISTGAN" inspect gen.h5
expect_fail 1 "sample refuses to overwrite" "gen.h5: file exists" "$DISTGAN" sample -k run/final.h5 -n 5 --out gen.h5
expect_fail 2 "sample needs an output" "give --out" "$DISTGAN" sample -k run/final.h5
expect_fail 1 "sample of a dataset file is refused" "attribute 'format' is missing" \
  "$DISTGAN" sample -k fm.h5 --out x.h5
expect_fail_any "dcgan on vector data is refused on every rank" "dcgan needs image data" \
  bash -c "'$DISTGAN' prep ring -n 1000 --out ring.h5 >/dev/null && mpiexec -n 2 --oversubscribe '$DISTGAN' train -c '$config' --set data.path=ring.h5 --set data.dataset=/samples"
# 1-D vectors: nothing to scatter-plot, but training and the model file work.
$py -c "import numpy as np; np.save('line.npy', np.random.default_rng(0).normal(size=(512, 1)).astype(np.float32))"
"$DISTGAN" prep npy --data line.npy --out line.h5 >/dev/null
expect_ok "an MLP on 1-D vectors trains and saves its model" "distgan: done" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=line.h5 --set data.dataset=/samples \
  --set model.name=mlp --set training.steps=10 --set logging.run_dir=line-run
expect_ok "its model file samples" "wrote 5 items" "$DISTGAN" sample -k line-run/final.h5 -n 5 --out line-gen.h5

# Rank 0 alone fails (it alone writes the run directory) while rank 1 enters the first collective:
# the job must end, non-zero, with rank 0's message, not hang.
start=$(date +%s)
expect_fail_any "one rank failing brings the whole job down" "logging.run_dir: cannot create '/proc/distgan-unwritable/samples'" \
  timeout 120 mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 \
  --set logging.run_dir=/proc/distgan-unwritable
elapsed=$(( $(date +%s) - start ))
if [ "$elapsed" -lt 100 ]; then echo "PASS ended after ${elapsed}s"; passed=$((passed + 1));
else echo "FAIL took ${elapsed}s (hang?)"; failed=$((failed + 1)); fi
finish
