# Writes Fashion-MNIST (distgan's HDF5 files) as PNG files in one folder per class, so that
# `distgan prep images` can enlarge it: bench/quality.sh's 64 px runs.
#   python3 bench/fashion_mnist_png.py TRAIN.h5 TEST.h5 OUT_DIR   -> OUT_DIR/train/<class>/*.png, OUT_DIR/test/...
import os
import sys

import h5py
from PIL import Image

CLASSES = ["0-tshirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-boot"]

for split, path in (("train", sys.argv[1]), ("test", sys.argv[2])):
    with h5py.File(path, "r") as f:
        images, labels = f["/images"][:], f["/labels"][:]
    for name in CLASSES:
        os.makedirs(os.path.join(sys.argv[3], split, name), exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image[0]).save(os.path.join(sys.argv[3], split, CLASSES[label], f"{i:05d}.png"))
