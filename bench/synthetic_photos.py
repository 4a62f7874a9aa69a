"""Writes a folder of synthetic colour "photos" for the benchmarks (no downloads here): N JPEGs of
SIZE x SIZE (quality 90), smooth random colour fields with a few ellipses, in 10 class folders,
written by Pillow on every core.   synthetic_photos.py OUT_DIR N SIZE
"""
import os, sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw


def photo(args):
    out, i, size = args
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.5 + 0.5 * np.sin(rng.uniform(2, 9) * x + rng.uniform(2, 9) * y + rng.uniform(0, 6))
                    for _ in range(3)], -1)
    im = Image.fromarray((255 * img).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = rng.uniform(0, 0.7, 2) * size
        draw.ellipse([x0, y0, x0 + rng.uniform(0.1, 0.3) * size, y0 + rng.uniform(0.1, 0.3) * size],
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    path = os.path.join(out, f"class{i % 10}", f"{i:06d}.jpg")
    im.save(path, quality=90)


def main():
    out, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for c in range(10):
        os.makedirs(os.path.join(out, f"class{c}"), exist_ok=True)
    with Pool(len(os.sched_getaffinity(0))) as pool:
        pool.map(photo, [(out, i, size) for i in range(n)], chunksize=64)
    print(f"wrote {n} JPEGs of {size}x{size} under {out}")


if __name__ == "__main__":
    main()
