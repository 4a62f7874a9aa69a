#!/usr/bin/env bash
# Interoperability with h5py (Debian's python3-h5py, under /usr/bin/python3):
#  1. a file written by h5py (uint8 NHWC images, float32 vectors, int labels) is read by distgan;
#  2. `distgan prep fashion-mnist` writes a file h5py reads back to the same pixels and labels as
#     the IDX files (when the dataset-fashion-mnist package is installed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
enter_test_dir

if ! $py -c 'import h5py, numpy' 2>/dev/null; then
  echo "FAIL h5py is not installed for $py (cluster/install-deps.sh installs python3-h5py)"; exit 1
fi

$py - <<'PY'
import h5py, numpy as np
with h5py.File("from_h5py.h5", "w") as f:
    imgs = (np.arange(5 * 28 * 28 * 3) % 251).astype(np.uint8).reshape(5, 28, 28, 3)  # NHWC
    f.create_dataset("data/imgs", data=imgs, chunks=(2, 28, 28, 3), compression="gzip")
    f.create_dataset("data/y", data=np.array([4, 3, 2, 1, 0], dtype=np.int32))
    f.create_dataset("vec", data=np.linspace(-1, 1, 40, dtype=np.float32).reshape(10, 4))
PY
expect_ok "distgan reads h5py NHWC images" "/data/imgs uint8 \[5, 28, 28, 3\] \(NHWC images\), labels /data/y" \
  "$DISTGAN" inspect from_h5py.h5 --dataset /data/imgs --labels /data/y --layout NHWC
expect_ok "h5py labels histogram" "labels: 5 classes: 0:1 1:1 2:1 3:1 4:1" \
  "$DISTGAN" inspect from_h5py.h5 --dataset /data/imgs --labels /data/y --layout NHWC
expect_ok "distgan reads h5py vectors" "min -1, max 1" "$DISTGAN" inspect from_h5py.h5 --dataset /vec

# Values through the training loader: a 1-rank --check reads a batch of the NHWC file.
cat > nhwc.yaml <<'YAML'
data: {path: from_h5py.h5, dataset: /data/imgs, labels: /data/y, layout: NHWC}
training: {batch_size: 5}
YAML
expect_ok "train --check on the h5py file" "5 samples, 1 batches of 5" "$DISTGAN" train -c nhwc.yaml --check

fm=/usr/share/datasets/fashion-mnist
if [ -f "$fm/t10k-images-idx3-ubyte.gz" ]; then
  expect_ok "prep fashion-mnist test split" "\[10000, 1, 28, 28\]" "$DISTGAN" prep fashion-mnist --split test --out fm.h5
  expect_ok "h5py reads the same pixels and labels as the IDX files" "pixels equal" $py - <<PY
import gzip, h5py, numpy as np
def idx(path):
    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)
images = idx("$fm/t10k-images-idx3-ubyte.gz")
labels = idx("$fm/t10k-labels-idx1-ubyte.gz")
with h5py.File("fm.h5", "r") as f:
    got = f["/images"][...]
    assert got.dtype == np.uint8 and got.shape == (10000, 1, 28, 28), (got.dtype, got.shape)
    assert np.array_equal(got[:, 0], images), "pixels differ"
    assert np.array_equal(f["/labels"][...], labels), "labels differ"
    assert f["/images"].chunks is not None and f["/images"].compression == "gzip"
print("pixels equal, labels equal")
PY
else
  echo "SKIP fashion-mnist comparison: $fm not installed"
fi

finish
