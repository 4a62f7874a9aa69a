#!/usr/bin/env bash
# GAN quality and observability end to end, on a small slice of Fashion-MNIST and 2 MPI ranks:
#   distgan eval train-classifier  -> a classifier file and its test accuracy
#   a conditional, spectrally normalised DCGAN with R1, EMA and eval.every -> eval.jsonl lines with
#     FID/KID/precision/recall and per-class accuracy, TensorBoard events (read back with Python's
#     protobuf), the EMA generator in the checkpoint (h5py)
#   distgan sample --class / --no-ema, distgan eval on the model and on real held-out data (floor),
#   the cached real features next to the dataset, and the errors of bad requests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
proto=$(realpath "$here/../../trainer/outputs/events/tensorboard_event.proto")
enter_test_dir

prep_fashion_test fm.h5
expect_ok "split into 8,000 training and 2,000 held-out images" "split ok" $py - <<'PY'
import h5py
src = h5py.File("fm.h5", "r")
for name, part in (("train.h5", slice(0, 8000)), ("heldout.h5", slice(8000, 10000))):
    with h5py.File(name, "w") as f:
        f["images"] = src["images"][part]
        f["labels"] = src["labels"][part]
print("split ok")
PY

expect_ok "train the feature classifier" "test accuracy 0\.[6-9]" \
  "$DISTGAN" eval train-classifier --train train.h5 --test heldout.h5 --epochs 1 --limit 4000 -o clf.h5
$py -c "import h5py; f = h5py.File('nolabels.h5', 'w'); f['images'] = h5py.File('heldout.h5', 'r')['images'][:100]"
expect_fail 1 "a classifier needs labels" "nolabels.h5: no labels at '/labels'" \
  "$DISTGAN" eval train-classifier --train nolabels.h5 --test heldout.h5 -o clf2.h5
expect_fail 2 "image metrics need a feature extractor" "eval.every: image metrics need a feature extractor" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=train.h5 --set logging.run_dir=bad \
  --set eval.every=10

expect_fail 2 "a categorical latent is for MLP generators only" \
  "model.latent_categories: only for unconditional mlp models (this one is dcgan)" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=train.h5 --set logging.run_dir=bad \
  --set model.latent_categories=4

expect_ok "train conditional + spectral norm + R1 + EMA with in-loop evaluation" "distgan: done" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=train.h5 --set logging.run_dir=run \
  --set model.conditional=true --set model.d_spectral_norm=true --set training.r1.gamma=1 --set training.r1.every=4 \
  --set eval.every=10 --set eval.samples=500 --set eval.classifier=clf.h5 --set eval.real=heldout.h5
expect_ok "eval.jsonl: FID, KID, precision, recall and class accuracy at steps 10 and 20" "eval lines ok" $py - <<'PY'
import json, math
lines = [json.loads(l) for l in open("run/eval.jsonl")]
assert [l["step"] for l in lines] == [10, 20], lines
for l in lines:
    m = l["metrics"]
    assert l["generator"] == "ema", l
    assert m["fid"] > 0 and math.isfinite(m["fid"]), m
    for k in ("precision", "recall", "class_accuracy"):
        assert 0 <= m[k] <= 1, (k, m)
    assert len(l["class_accuracy"]) == 10, l
print("eval lines ok")
PY
expect_ok "run_info.json names the ranks and versions" "info ok" $py - <<'PY'
import json
info = json.load(open("run/run_info.json"))
assert info["world_size"] == 2 and len(info["hosts"]) == 2 and info["backend"] == "mpi", info
assert "10 classes" in info["model"], info
print("info ok")
PY
expect_ok "the checkpoint holds the EMA generator and the spectral norm state" "ckpt ok" $py - <<'PY'
import h5py
f = h5py.File("run/checkpoints/ckpt_00000020.h5", "r")
names = []
f.visit(names.append)
assert any(n.startswith("generator_ema/") and n.endswith("class_embedding.weight") for n in names), names[:20]
assert any(n.startswith("discriminator/") and n.endswith("sn_u") for n in names)
assert any(n.endswith("class_projection.weight") for n in names)
print("ckpt ok")
PY

if command -v protoc >/dev/null && $py -c "import google.protobuf" 2>/dev/null; then
  mkdir pb && protoc --proto_path="$(dirname "$proto")" --python_out=pb "$proto"
  expect_ok "TensorBoard events: losses every 5 steps, eval metrics, sample grids" "events ok" $py - <<'PY'
import glob, struct, sys
sys.path.insert(0, "pb")
import tensorboard_event_pb2 as pb
path, = glob.glob("run/tensorboard/events.out.tfevents.*")
data = open(path, "rb").read()
events, pos = [], 0
while pos < len(data):
    n, = struct.unpack("<Q", data[pos:pos + 8])
    e = pb.Event()
    e.ParseFromString(data[pos + 12:pos + 12 + n])
    events.append(e)
    pos += 16 + n
assert events[0].file_version == "brain.Event:2"
scalars = {}
images = []
for e in events[1:]:
    for v in e.summary.value:
        if v.HasField("image"):
            images.append((e.step, v.image.width, v.image.height))
        else:
            scalars.setdefault(v.tag, []).append((e.step, v.simple_value))
assert [s for s, _ in scalars["loss/d"]] == [5, 10, 15, 20], scalars["loss/d"]
assert [s for s, _ in scalars["eval/fid"]] == [10, 20], scalars.get("eval/fid")
import json
metrics = [json.loads(l) for l in open("run/metrics.jsonl")]
for (step, value), line in zip(scalars["loss/g"], metrics):
    assert step == line["step"] and abs(value - line["loss_g"]) < 1e-4 * max(1, abs(line["loss_g"])), (value, line)
# R1 ran every 4th D step, so in every logging interval of 5 steps: its mean is logged each time.
assert [s for s, _ in scalars["loss/penalty"]] == [5, 10, 15, 20], scalars.get("loss/penalty")
for (step, value), line in zip(scalars["loss/penalty"], metrics):
    assert line["penalty"] > 0 and abs(value - line["penalty"]) < 1e-4 * max(1, line["penalty"]), (value, line)
# The grids as the PNG files have them (one row of 8 per class: 10 rows).
w, h = struct.unpack(">II", open("run/samples/final.png", "rb").read()[16:24])
assert images == [(10, w, h), (20, w, h), (20, w, h)] and h > w, (images, w, h)
print("events ok")
PY
else
  echo "SKIP TensorBoard read-back: protoc or python3-protobuf missing (cluster/install-deps.sh installs them)"
fi

expect_ok "sample one class with the EMA generator" "EMA generator" \
  "$DISTGAN" sample -k run/final.h5 --class 3 -n 20 --out class3.h5 --grid class3.png
expect_ok "the samples carry the class asked for" "labels ok" $py - <<'PY'
import h5py, numpy as np
f = h5py.File("class3.h5", "r")
assert f["images"].shape == (20, 1, 28, 28) and (f["labels"][...] == 3).all() and f.attrs["generator"] in (b"ema", "ema")
print("labels ok")
PY
expect_ok "sample with the raw generator" "raw generator" "$DISTGAN" sample -k run/final.h5 --no-ema -n 4 --grid raw.png
expect_fail 2 "a class the model does not have" "--class: 12 is not a class of this model (0 to 9)" \
  "$DISTGAN" sample -k run/final.h5 --class 12 --grid x.png

expect_ok "eval the model: metrics and JSON" "wrote m.json" \
  "$DISTGAN" eval -k run/final.h5 --classifier clf.h5 --real heldout.h5 -n 500 --reference 1000 --json m.json
expect_ok "eval real held-out data: the floor" "wrote floor.json" \
  "$DISTGAN" eval --samples-file heldout.h5 --real train.h5 --classifier clf.h5 -n 1000 --reference 2000 --json floor.json
expect_ok "the floor is far below the barely trained model; cached features sit next to the data" "floor ok" $py - <<'PY'
import json, glob
m = json.load(open("m.json"))["metrics"]
f = json.load(open("floor.json"))["metrics"]
assert f["fid"] < m["fid"] / 3, (f, m)
assert f["precision"] > 0.5 and f["recall"] > 0.5, f
assert len(glob.glob("heldout.h5.eval-cache/*.h5")) >= 1 and len(glob.glob("train.h5.eval-cache/*.h5")) == 1
print("floor ok")
PY
expect_fail 2 "eval needs a model or a samples file" "give --model FILE" "$DISTGAN" eval --classifier clf.h5
expect_fail 1 "a file that is not a classifier" "is not a distgan classifier" \
  "$DISTGAN" eval -k run/final.h5 --classifier run/final.h5 -n 100
finish
