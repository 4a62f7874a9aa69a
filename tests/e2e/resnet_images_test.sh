#!/usr/bin/env bash
# Colour photos end to end: a folder of PNG/JPEG images in two class folders -> `prep images` at
# 32 px -> a class-conditional resnet with EMA, augmentation (translation, color, cutout) and
# gradient accumulation (2 micro-batches) on 2 ranks -> RGB sample grids, a model file that
# `distgan sample` reads, and an exact resume: 20 steps == 10 + 10 resumed, bitwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
enter_test_dir

$py - <<'PY'
import os, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
y, x = np.mgrid[0:40, 0:48] / 40.0
for cls, hue in (("red", 0), ("blue", 2)):
    os.makedirs(f"photos/{cls}", exist_ok=True)
    for i in range(48):
        img = np.zeros((40, 48, 3))
        img[..., hue] = 0.5 + 0.5 * np.sin(6 * x + rng.uniform(0, 6)) * np.cos(4 * y)
        img[..., 1] = rng.uniform(0, 0.3)
        Image.fromarray((255 * img).astype(np.uint8)).save(f"photos/{cls}/{i:02d}." + ("png" if i % 2 else "jpg"))
PY
expect_ok "prep images: 96 photos in 2 class folders" "imported 96 of 96" \
  "$DISTGAN" prep images --dir photos --size 32 --labels folders --out photos.h5

train() {  # train RUN_DIR [args...]
  local run=$1; shift
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c /dev/null --set data.path=photos.h5 \
    --set model.name=resnet --set model.ch=4 --set model.z_dim=16 --set model.conditional=true \
    --set training.batch_size=16 --set training.accumulate=2 --set training.augment=translation,color,cutout \
    --set training.loss=hinge --set training.ema.half_life_kimg=0.1 --set training.lr_g=2e-4 --set training.lr_d=2e-4 \
    --set logging.run_dir="$run" --set logging.every=5 --set logging.sample_every=10 --set checkpoint.every=10 "$@"
}
expect_ok "a conditional resnet with augmentation and accumulation trains on 2 ranks" "training resnet \(G [0-9]+, D [0-9]+ parameters\) on 2 rank" \
  train straight --set training.steps=20
expect_ok "its sample grid is an RGB PNG" "rgb grid ok" $py -c '
from PIL import Image
import glob
grids = sorted(glob.glob("straight/samples/*.png"))
img = Image.open(grids[-1]); assert img.mode == "RGB" and img.size[0] >= 8 * 32, (img.mode, img.size)
print("rgb grid ok", img.size)'
expect_ok "distgan sample reads the resnet model file, one class" "wrote 6 items" \
  "$DISTGAN" sample -k straight/final.h5 -n 6 --class 1 --out gen.h5 --grid gen.png
expect_ok "... RGB items in [-1, 1]" "items ok" $py -c '
import h5py, numpy as np
f = h5py.File("gen.h5"); k = [n for n in f if f[n].ndim == 4][0]; a = f[k][:]
assert a.shape[1:] == (3, 32, 32), a.shape; print("items ok", a.shape, a.min(), a.max())'

train split --set training.steps=10 >/dev/null 2>&1
expect_ok "resume the augmented, accumulated resnet run" "resumed from split/checkpoints/ckpt_00000010.h5" \
  train split --set training.steps=20 --resume auto
expect_ok "... bitwise identical to the uninterrupted run" "identical: [0-9]+ tensors" $py - <<'PY'
import h5py, numpy as np
a, b = (h5py.File(f"{r}/checkpoints/ckpt_00000020.h5", "r") for r in ("straight", "split"))
names = [l.split()[0] for l in a.attrs["manifest"].decode().splitlines()]
diff = [n for n in names if not np.array_equal(a[n][()], b[n][()])]
assert not diff, diff[:5]
assert any("gain.weight" in n for n in names), "conditional batch norm missing"
print(f"identical: {len(names)} tensors")
PY
expect_fail 2 "a per-rank batch that does not split into the micro-batches" "does not split into 3 equal micro-batches" \
  train bad --set training.steps=2 --set training.accumulate=3
expect_fail 2 "an unknown augmentation" "training.augment: unknown transform 'flip'" \
  train bad --set training.steps=2 --set training.augment=flip
finish
