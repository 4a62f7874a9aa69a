#!/usr/bin/env bash
# Import speed of `distgan prep images`: a folder of N synthetic 256x256 JPEGs (bench/synthetic_photos.py)
# to 64x64, beside the same work done by Pillow (open, draft, RGB, centre crop, bicubic resize, one
# process per core: what a torchvision-style preprocessing script does). Median of REPEATS runs
# each; prints files/s for both and the ratio.   bench/images.sh [BUILD_DIR]
#   env: N (20000), SIZE (256), OUT_SIZE (64), REPEATS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${N:-20000}; size=${SIZE:-256}; out_size=${OUT_SIZE:-64}; repeats=${REPEATS:-3}
py=/usr/bin/python3
$py -c 'import PIL' 2>/dev/null || { echo "bench/images.sh needs python3-pil (cluster/install-deps.sh)"; exit 1; }
folder=$build/bench/photos-$size-$n
[ -d "$folder" ] || $py bench/synthetic_photos.py "$folder" "$n" "$size"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
distgan_rates=(); pillow_rates=()
for r in $(seq "$repeats"); do
  start=$(date +%s.%N)
  "$build/launcher/distgan" prep images --dir "$folder" --size "$out_size" --out "$tmp/x.h5" --force >/dev/null 2>&1
  distgan_rates+=("$($py -c "import sys; print($n / ($(date +%s.%N) - $start))")")
  pillow_rates+=("$($py - "$folder" "$out_size" <<'PY'
import os, sys, time
from multiprocessing import Pool
import numpy as np
from PIL import Image

def load(path):
    im = Image.open(path)
    im.draft("RGB", (2 * size, 2 * size))  # libjpeg's DCT scaling, as distgan's decoder uses
    im = im.convert("RGB")
    w, h = im.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(im.crop(box).resize((size, size), Image.BICUBIC)).transpose(2, 0, 1)

folder, size = sys.argv[1], int(sys.argv[2])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
start = time.perf_counter()
with Pool(len(os.sched_getaffinity(0))) as pool:
    images = np.stack(pool.map(load, paths, chunksize=64))
print(len(paths) / (time.perf_counter() - start))
PY
)")
done
$py - "${distgan_rates[*]}" "${pillow_rates[*]}" "$n" "$size" "$out_size" <<'PY'
import statistics, sys
d = statistics.median(map(float, sys.argv[1].split())); p = statistics.median(map(float, sys.argv[2].split()))
print(f"import {sys.argv[3]} JPEGs {sys.argv[4]}x{sys.argv[4]} -> {sys.argv[5]}x{sys.argv[5]}: distgan {d:.0f} files/s "
      f"(including the HDF5 write), Pillow {p:.0f} files/s (decode and resize only), ratio {d / p:.2f}")
print(f"runs: distgan {sys.argv[1]}; Pillow {sys.argv[2]}")
PY
