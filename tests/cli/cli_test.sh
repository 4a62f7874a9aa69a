#!/usr/bin/env bash
# Drives the built `distgan` (path in $DISTGAN) through its command line: help, prep, inspect,
# train --print-config / --check, and every bad input of the foundation issue. Each bad input must
# give one clear message and a non-zero exit, and must leave no file behind.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
enter_test_dir

expect_ok "--version names the LibTorch, whether NCCL is in and the transposed convolutions' kernel" \
  "^distgan [0-9.]+ \(LibTorch [0-9.]+ with(out)? CUDA, (NCCL [0-9.]+ compiled in, [0-9.]+ loaded|no NCCL), (oneDNN [0-9.]+|LibTorch) transposed convolutions\)$" \
  "$DISTGAN" --version
# Where libdnnl-dev 2.x is (install-deps.sh installs it) and LibTorch is a CPU one, oneDNN is compiled in.
if [ -f /usr/include/oneapi/dnnl/dnnl.hpp ] && "$DISTGAN" --version | grep -q "without CUDA"; then
  expect_ok "oneDNN runs the transposed convolutions where libdnnl-dev is" "oneDNN [0-9.]+ transposed convolutions" \
    "$DISTGAN" --version
fi
# Where the CUDA toolkit is (the build machines, CI), the NCCL backend must be compiled in.
if [ -f /usr/local/cuda/include/nccl.h ]; then
  expect_ok "the NCCL backend is compiled in where the toolkit is" "NCCL [0-9.]+ compiled in" "$DISTGAN" --version
  # The NCCL found at run time is named beside the one compiled against (here: the toolkit's, both).
  nccl_header=$(awk '/#define NCCL_(MAJOR|MINOR|PATCH) /{printf "%s%s", sep, $3; sep="."}' /usr/local/cuda/include/nccl.h)
  expect_ok "--version names the NCCL loaded at run time" "NCCL $nccl_header compiled in, $nccl_header loaded," \
    "$DISTGAN" --version
fi
if "$DISTGAN" --version | grep -q "without CUDA"; then
  expect_fail 1 "cuda on a CPU-only LibTorch is refused at start" "this LibTorch build has no CUDA" \
    "$DISTGAN" train --set cluster.device=cuda --set data.path=/nonexistent.h5 --check
fi

# --- help lists every subcommand and its options ---
expect_ok "top-level help" "prep" "$DISTGAN" --help
expect_ok "top-level help lists train" "train" "$DISTGAN" --help
expect_ok "prep help lists importers" "fashion-mnist" "$DISTGAN" prep --help
expect_ok "train help lists --set" "--set KEY=VALUE" "$DISTGAN" train --help
expect_fail 2 "unknown subcommand" "" "$DISTGAN" frobnicate

# --- prep: small IDX files, the synthetic mixtures, overwrite refusal ---
python3 - <<'PY'
import gzip, struct
def idx(path, dims, data):
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data))
idx("img.gz", [6, 4, 4], [(i * 5) % 256 for i in range(96)])
idx("lab.gz", [6], [0, 1, 2, 0, 1, 2])
idx("short.gz", [6, 4, 4], [0] * 50)
PY
expect_ok "prep idx" "/images uint8 \[6, 1, 4, 4\]" "$DISTGAN" prep idx --images img.gz --labels lab.gz --out small.h5
expect_ok "inspect shows labels" "labels: 3 classes: 0:2 1:2 2:2" "$DISTGAN" inspect small.h5
expect_fail 1 "prep refuses to overwrite" "small.h5: file exists; refusing to overwrite it (pass --force" \
  "$DISTGAN" prep idx --images img.gz --out small.h5
expect_ok "prep --force overwrites" "wrote small.h5" "$DISTGAN" prep idx --images img.gz --out small.h5 --force
expect_fail 1 "truncated IDX" "short.gz: truncated IDX file: the header declares 96 values but only 50" \
  "$DISTGAN" prep idx --images short.gz --out short.h5
expect_no_file "no output after a failed prep" short.h5
expect_ok "prep ring" "/samples float32 \[500, 2\]" "$DISTGAN" prep ring -n 500 --out ring.h5
expect_ok "prep grid" "labels: 25 classes" "$DISTGAN" inspect "$( "$DISTGAN" prep grid -n 2000 --out grid.h5 >/dev/null && echo grid.h5)"
expect_fail 2 "prep without --out" "--out is required" "$DISTGAN" prep ring
expect_no_file "no temporary files left" ".*.tmp.*"

# --- an interrupted prep leaves either the finished file or nothing, never a temporary ---
for delay in 0.3 0.6 0.9 1.2; do
  "$DISTGAN" prep ring -n 3000000 --out interrupted.h5 >/dev/null 2>&1 &
  pid=$!; sleep "$delay"; kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  expect_no_file "SIGTERM after ${delay}s leaves no temporary file" "\.interrupted\.h5\.tmp\..*"
  if [ -f interrupted.h5 ]; then
    expect_ok "a file left after SIGTERM at ${delay}s is complete" "\[3000000, 2\]" "$DISTGAN" inspect interrupted.h5
  fi
  rm -f interrupted.h5
done

# --- train --print-config and config errors ---
cat > good.yaml <<'YAML'
data:
  path: ring.h5
  dataset: /samples
model:
  name: mlp
training:
  batch_size: 64
YAML
expect_ok "print-config shows file values" "name: \"mlp\"" "$DISTGAN" train -c good.yaml --print-config
expect_ok "print-config applies --set" "lr_d: 0.0001" "$DISTGAN" train -c good.yaml --set training.lr_d=1e-4 --print-config
"$DISTGAN" train -c good.yaml --set training.steps=7 --print-config > printed.yaml
expect_ok "printed config loads again" "steps: 7 " "$DISTGAN" train -c printed.yaml --print-config
printf 'training:\n  lr_dd: 0.1\n' > typo.yaml
expect_fail 2 "unknown key" "typo.yaml:2: unknown key 'training.lr_dd'; did you mean 'training.lr_d'?" \
  "$DISTGAN" train -c typo.yaml --print-config
printf 'training:\n  steps: [1, 2\n' > broken.yaml
expect_fail 2 "malformed YAML" "broken.yaml:.*malformed YAML" "$DISTGAN" train -c broken.yaml --print-config
printf 'training:\n  steps: lots\n' > type.yaml
expect_fail 2 "wrong type" "type.yaml:2: training.steps: expected an integer" "$DISTGAN" train -c type.yaml --print-config
expect_fail 2 "bad --set" "--set training.lr_g=2: training.lr_g: expected a number in (0, 1], found '2'" \
  "$DISTGAN" train --set training.lr_g=2 --print-config
expect_fail 2 "missing config" "missing.yaml" "$DISTGAN" train -c missing.yaml --print-config
mkdir adir
expect_fail 2 "config that is a directory" "adir" "$DISTGAN" train -c adir --print-config
chmod 000 good.yaml 2>/dev/null
if [ "$(id -u)" != 0 ]; then
  expect_fail 2 "unreadable config" "good.yaml: cannot read the config file" "$DISTGAN" train -c good.yaml --print-config
fi
chmod 644 good.yaml

# --- train --check on 2 ranks: config and dataset validated on every rank ---
mpi=(mpiexec -n 2 --oversubscribe)
expect_ok "check passes on 2 ranks" "config OK on 2 rank\\(s\\)" "${mpi[@]}" "$DISTGAN" train -c good.yaml --check
expect_fail_any "missing dataset file" "nothere.h5: dataset file not found" \
  "${mpi[@]}" "$DISTGAN" train -c good.yaml --set data.path=nothere.h5 --check
expect_fail_any "wrong dataset path" "dataset '/images' not found; the file holds: /labels, /samples" \
  "${mpi[@]}" "$DISTGAN" train -c good.yaml --set data.dataset=/images --check
expect_fail_any "batch does not divide" "the global batch 63 does not divide evenly across 2 ranks" \
  "${mpi[@]}" "$DISTGAN" train -c good.yaml --set training.batch_size=63 --check
expect_fail_any "fewer samples than ranks x batch" "holds 500 samples, fewer than one step needs: 2 ranks x batch size 256" \
  "${mpi[@]}" "$DISTGAN" train -c good.yaml --set training.batch_size=512 --check
expect_fail_any "wrong dtype (labels as samples)" "has dtype int64; expected uint8 (images) or float32" \
  "${mpi[@]}" "$DISTGAN" train -c good.yaml --set data.dataset=/labels --check

finish
