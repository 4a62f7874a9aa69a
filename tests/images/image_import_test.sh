#!/usr/bin/env bash
# `distgan prep images` and `distgan prep cifar10` on folders and files this test writes itself:
#  - every good file kind (PNG RGB/grey/RGBA/palette/16-bit, JPEG baseline/progressive/CMYK/grey/
#    EXIF-rotated, WebP, nested class folders) matches Pillow's decode + centre crop + bicubic
#    resize within 1 grey level (tolerance: max |diff| <= 2, mean <= 0.5), labels from folders;
#  - each bad file (truncated, corrupt, empty, non-image, decompression bombs, dangling link,
#    unreadable) is skipped with a warning naming it, or stops the import with --on-error abort;
#  - empty folders and files outside class folders are errors; no output file is left behind;
#  - CIFAR-10 binary files: values, labels, class names; truncated files and bad labels refused.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
enter_test_dir
$py -c 'import PIL, h5py, numpy' 2>/dev/null || { echo "FAIL python3-pil, python3-h5py and python3-numpy are needed (cluster/install-deps.sh)"; exit 1; }
$py "$here/make_image_folder.py" f >/dev/null || { echo "FAIL could not write the test images"; exit 1; }

# compare H5 REFERENCE-KEY: the file's images against Pillow's, and the labels
compare() {
  $py - "$1" "$2" <<'PY'
import sys, h5py, json, numpy as np
path, mode = sys.argv[1], sys.argv[2]
ref = np.load("f/reference.npz")
with h5py.File(path) as f:
    got, labels = f["images"][:], f["labels"][:] if "labels" in f else None
    names = json.loads(f.attrs["class_names"]) if "class_names" in f.attrs else None
want = ref["images"] if mode == "rgb" else ref["grey"]
d = np.abs(got.astype(int) - want.astype(int))
worst = ref["names"][d.reshape(len(d), -1).max(1).argmax()]
print(f"shape {got.shape} max diff {d.max()} mean {d.mean():.3f} (worst: {worst}) labels {labels is not None and (labels == ref['labels']).all()} classes {names}")
sys.exit(0 if got.shape == want.shape and d.max() <= 2 and d.mean() <= 0.5 else 1)
PY
}

expect_ok "prep images: a folder of every good kind" "imported 16 of 16 image files" \
  "$DISTGAN" prep images --dir f/good --size 16 --labels folders --out good.h5
expect_ok "the pixels match Pillow's, labels and class names from the folders" \
  "labels True classes \['a', 'b', 'c'\]" compare good.h5 rgb
expect_ok "--channels 1 matches Pillow's L" "shape \(16, 1, 16, 16\)" \
  bash -c "'$DISTGAN' prep images --dir f/good --size 16 --channels 1 --out grey.h5 >/dev/null && $(declare -f compare); py=$py; compare grey.h5 grey"
expect_ok "--crop none stretches the whole image" "" bash -c "
  mkdir -p wide && cp f/good/a/rgb_wide.png wide/ && '$DISTGAN' prep images --dir wide --size 16 --crop none --out wide.h5 >/dev/null &&
  $py -c '
import h5py, numpy as np
from PIL import Image
want = np.asarray(Image.open(\"wide/rgb_wide.png\").convert(\"RGB\").resize((16, 16), Image.BICUBIC)).transpose(2, 0, 1)
got = h5py.File(\"wide.h5\")[\"images\"][0]
d = np.abs(got.astype(int) - want.astype(int)); print(d.max()); assert d.max() <= 2'"
expect_ok "progress lines when not on a terminal" "prep images: 16/16 files, [0-9]+ files/s, ETA 0:00:00" \
  "$DISTGAN" prep images --dir f/good --size 16 --out progress.h5

# Bad files: each one warned about by name, the good ones kept.
chmod 000 f/bad/c/exif3.jpg 2>/dev/null  # unreadable (only when not root; root reads it anyway)
out=$("$DISTGAN" prep images --dir f/bad --size 16 --out bad.h5 2>&1); rc=$?
for bad in "z_bomb.jpg: the header declares 60000x60000 pixels, more than the limit" \
           "z_bomb.png: the header declares 50000x50000 pixels" "z_corrupt.png: corrupt PNG" \
           "z_dangling.png: cannot read: No such file or directory" "z_empty.png: empty file (0 bytes)" \
           "z_text.jpg: not an image: the content is not JPEG, PNG or WebP" \
           "z_truncated.jpg: corrupt JPEG: Premature end of JPEG file" "z_truncated.png: corrupt PNG: truncated"; do
  if [ $rc -eq 0 ] && grep -qF "warning: skipped f/bad/c/$bad" <<<"$out"; then _report "skips ${bad%%:*} with a warning" 1
  else _report "skips ${bad%%:*} with a warning" 0 "exit $rc; output:"$'\n'"$out"; fi
done
expect_ok "the bad folder's summary counts the skipped files" "skipped 8 bad files" echo "$out"
expect_ok "the good files of the bad folder are kept" "images uint8 \[16, 3, 16, 16\]" "$DISTGAN" inspect bad.h5
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # As root every file is readable: read as nobody to see a permission error.
  mkdir -p perm && cp f/good/a/*.png perm/ && chmod 000 perm/rgba.png && chmod 777 . perm
  expect_ok "an unreadable file is skipped with the reason" "skipped perm/rgba.png: cannot read: Permission denied" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$DISTGAN" prep images --dir perm --size 16 --out perm.h5
fi
expect_fail 1 "--on-error abort stops at the first bad file" "z_bomb.jpg: the header declares 60000x60000 pixels" \
  "$DISTGAN" prep images --dir f/bad --size 16 --on-error abort --out abort.h5
expect_fail 1 "--max-pixels refuses large images" "more than the limit of 100" \
  "$DISTGAN" prep images --dir f/good --size 16 --max-pixels 100 --on-error abort --out small.h5
expect_no_file "nothing written by a failed import" "(abort|small)\.h5.*"

# Folder-level errors.
mkdir -p empty notes && echo hi > notes/readme.txt
expect_fail 1 "an empty folder is an error" "empty: no image files (.jpg, .jpeg, .png, .webp)" \
  "$DISTGAN" prep images --dir empty --size 16 --out e.h5
expect_fail 1 "a folder without images is an error" "notes: no image files" \
  "$DISTGAN" prep images --dir notes --size 16 --out e.h5
expect_fail 1 "a missing folder is an error" "missing: not a directory" \
  "$DISTGAN" prep images --dir missing --size 16 --out e.h5
cp f/good/a/rgba.png f/good/loose.png
expect_fail 1 "--labels folders: a file outside every class folder" "loose.png: with --labels folders every image must be inside a class sub-folder" \
  "$DISTGAN" prep images --dir f/good --size 16 --labels folders --out e.h5
mkdir -p allbad && cp f/bad/c/z_*.jpg allbad/
expect_fail 1 "a folder of bad files only is an error" "allbad: none of its 3 image files could be imported" \
  "$DISTGAN" prep images --dir allbad --size 16 --out e.h5
expect_fail 2 "--size is required" "--size is required" "$DISTGAN" prep images --dir f/good --out e.h5
expect_no_file "no output from the refused imports" "e\.h5.*"

# CIFAR-10's binary format: 3 records per file here (the official files hold 10,000).
$py - <<'PY'
import os, numpy as np
rng = np.random.default_rng(3)
os.makedirs("cifar/cifar-10-batches-bin")
records = {}
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    labels = rng.integers(0, 10, 3, dtype=np.uint8)
    pixels = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    open(f"cifar/cifar-10-batches-bin/{name}", "wb").write(np.concatenate([labels[:, None], pixels], 1).tobytes())
    records[name] = (labels, pixels)
open("cifar/cifar-10-batches-bin/batches.meta.txt", "w").write("\n".join(f"class{i}" for i in range(10)) + "\n\n")
train = [records[f"data_batch_{i}.bin"] for i in range(1, 6)]
np.savez("cifar_ref.npz", train_labels=np.concatenate([l for l, _ in train]),
         train_images=np.concatenate([p for _, p in train]).reshape(-1, 3, 32, 32),
         test_labels=records["test_batch.bin"][0], test_images=records["test_batch.bin"][1].reshape(-1, 3, 32, 32))
PY
expect_ok "prep cifar10 (train) warns about the short files" "holds 3 records; the official files hold 10000" \
  "$DISTGAN" prep cifar10 --dir cifar --out cifar.h5
expect_ok "prep cifar10 --split test" "images uint8 \[3, 3, 32, 32\]" "$DISTGAN" prep cifar10 --dir cifar --split test --out cifar-test.h5
expect_ok "CIFAR-10 pixels, labels and class names as written" "ok" $py -c '
import h5py, json, numpy as np
ref = np.load("cifar_ref.npz")
for path, split in (("cifar.h5", "train"), ("cifar-test.h5", "test")):
    f = h5py.File(path)
    assert (f["images"][:] == ref[split + "_images"]).all() and (f["labels"][:] == ref[split + "_labels"]).all(), split
    assert json.loads(f.attrs["class_names"]) == [f"class{i}" for i in range(10)]
print("ok")'
head -c 5000 cifar/cifar-10-batches-bin/test_batch.bin > short.bin && mv short.bin cifar/cifar-10-batches-bin/test_batch.bin
expect_fail 1 "a truncated CIFAR-10 file: sizes expected and found" "test_batch.bin: truncated or not a CIFAR-10 binary file: 5000 bytes, expected 30730000" \
  "$DISTGAN" prep cifar10 --dir cifar --split test --out t.h5
printf '\x0c' | dd of=cifar/cifar-10-batches-bin/data_batch_2.bin bs=1 seek=3073 conv=notrunc 2>/dev/null
expect_fail 1 "a label outside 0..9" "data_batch_2.bin: record 1 has label 12 (expected 0 to 9)" \
  "$DISTGAN" prep cifar10 --dir cifar --out t.h5
expect_fail 1 "a folder without the files" "data_batch_1.bin: cannot read" "$DISTGAN" prep cifar10 --dir empty --out t.h5
expect_no_file "no output from the refused CIFAR-10 imports" "t\.h5.*"
finish
