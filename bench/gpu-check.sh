#!/usr/bin/env bash
# The GPU check, in phases that each fit a 10-minute command on a 16-core GPU machine:
#
#   fetch   here, on Debian 12 with the project built (make build): downloads the Debian packages
#           the build needs (bench/gpu/packages.txt) into .gpu/debs and writes the Fashion-MNIST
#           test split to .gpu/ (23 MB in all, 6 s here). Needs the network; no later phase does.
#   build   on the GPU machine: unpacks .gpu/debs into build-gpu/prefix (never over /; a library the
#           machine has already is used from the machine), checks the machine's glibc against what
#           the packed libraries need, builds build-gpu/ against the machine's PyTorch
#           (torch.utils.cmake_prefix_path) with nvcc and NCCL found by themselves. About 2-3 min
#           (12 min on 2 busy cores here, 11 CPU-minutes; a CUDA LibTorch's headers cost more).
#   test    the GPU tests (ctest -R 'Gpu|gpu_train|Nccl|...'), the first 10 steps' losses on the GPU
#           against a CPU run, 2 ranks on the one GPU with the MPI backend. About 2 min.
#   bench   DCGAN-28 images/s at batch 64 and 512 against the same model as a PyTorch eager script
#           and under torch.compile (bench/peer/dcgan_gpu.py); prints the table and writes it to
#           .gpu/table.md (with test's results when test ran on this build). About 3-4 min.
#   all     (or no argument) build, test and bench in turn, for a machine with time to spare.
# Several phases may be named (`test bench`). test and bench reuse build-gpu/ when its stamp matches
# the sources, the packed packages and the machine's PyTorch and nvcc, and build it first otherwise
# (2-3 min more). Each phase ends with one line `gpu-check PHASE: OK|FAILED ...` (its key numbers).
# The durations on 16 cores are estimates: no phase has run on a GPU machine yet.
#
# On a lent GPU machine that forgets its files when given back and keeps build outputs only while
# warm (about 30 s after a call), three calls, each within 10 minutes, .gpu carried each time:
#   1. GPU_CHECK_OUT=$OUT bash bench/gpu-check.sh build     (2-3 min)
#   2. GPU_CHECK_OUT=$OUT bash bench/gpu-check.sh test      (2 min; + 2-3 min if it has to rebuild)
#   3. GPU_CHECK_OUT=$OUT bash bench/gpu-check.sh bench     (3-4 min; likewise)
# A call that comes after the machine went back rebuilds first, so where calls cannot follow within
# the warm time, `build test` (4-5 min) then `bench` wastes the least.
# GPU_CHECK_OUT=DIR copies the logs (build.log, ctest.log, runs.log), checks.md and table.md there.
#
# Without a GPU (to check this script): GPU_CHECK_NO_GPU=1 (old name GPU_CHECK_BUILD_ONLY=1) builds
# against whatever torch python3 has, NCCL if found; `all` then stops after build, and test runs the
# ctest subset and a 10-step CPU run, then fails with "no GPU". bench/gpu/hide-dev.sh runs a command
# with this machine's -dev packages hidden, so the build can only use the prefix:
#   bash bench/gpu-check.sh fetch
#   GPU_CHECK_NO_GPU=1 PYTHON=/usr/bin/python3 bash bench/gpu/hide-dev.sh bash bench/gpu-check.sh build test
# Env: STEPS (100) per benchmark run, TOLERANCE (0.02), PYTHON (python3), CUDACXX (nvcc);
# for tests of the script: GPU_CHECK_GLIBC_NEEDED, GPU_CHECK_GLIBC_TOOL, GPU_CHECK_UNPACK (common.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source bench/gpu/common.sh
no_gpu=${GPU_CHECK_NO_GPU:-${GPU_CHECK_BUILD_ONLY:-0}}
steps=${STEPS:-100}
tolerance=${TOLERANCE:-0.02}
data=$gpu/fashion-mnist-test.h5
distgan=$build_dir/launcher/distgan

phase_fetch() {
  local t0=$SECONDS build=${BUILD:-build} tmp need packages
  command -v apt-get >/dev/null || fail "fetch runs on Debian 12 (apt-get download)"
  [ -x "$build/launcher/distgan" ] || fail "build distgan first (make build): it writes the test split"
  mapfile -t packages < <(read_packages)
  rm -rf "$gpu/debs"; mkdir -p "$gpu/debs"
  tmp=$(mktemp -d)
  (cd "$gpu/debs" && apt-get download "${packages[@]}") > "$tmp/apt.log" 2>&1 ||
    { tail -n 20 "$tmp/apt.log"; rm -rf "$tmp"; fail "apt-get download"; }
  rm -f "$data"
  "$build/launcher/distgan" prep fashion-mnist --split test --out "$data" > "$tmp/prep.log" 2>&1 ||
    { tail -n 20 "$tmp/prep.log"; rm -rf "$tmp"; fail "distgan prep fashion-mnist --split test"; }
  # What the packed files need of glibc, read here where binutils are (build reads it again there).
  mkdir "$tmp/x"
  for deb in "$gpu"/debs/*.deb; do extract_deb "$deb" "$tmp/x" || fail "cannot unpack $deb"; done
  need=$(glibc_needed "$tmp/x")
  rm -rf "$tmp"
  ok "in $((SECONDS - t0)) s: $(du -sh "$gpu" | cut -f1) in .gpu ($(ls "$gpu"/debs/*.deb | wc -l) packages, their \
libraries need glibc >= $need; test split $(du -h "$data" | cut -f1)); carry .gpu to the GPU machine, run build there"
}

# What every GPU-machine phase needs: the packages unpacked and checked, torch, nvcc and NCCL
# found, the environment set, and the stamp the build would have.
setup() {
  [ -d "$gpu/debs" ] || fail "no .gpu/debs: run 'bash bench/gpu-check.sh fetch' on Debian 12 and carry .gpu"
  [ -f "$data" ] || fail "no $data: run 'bash bench/gpu-check.sh fetch' on Debian 12 and carry .gpu"
  mkdir -p "$logs"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  find_torch
  say "PyTorch $torch_version (CUDA ${torch_cuda}) at $torch_prefix"
  # Debian's libraries use the C++11 ABI; a torch built with the old one cannot link with them.
  [ "$torch_abi" = 1 ] || fail "this PyTorch uses the pre-C++11 ABI (torch.compiled_with_cxx11_abi() is False); \
Debian's yaml-cpp, GoogleTest... use the new one: use a PyTorch >= 2.6 wheel or a cxx11-abi LibTorch"
  [ "$no_gpu" = 1 ] || [ "$torch_cuda" != None ] || fail "this PyTorch has no CUDA (torch.version.cuda is None)"
  find_nvcc
  [ -z "$nvcc" ] || say "nvcc $nvcc_version at $nvcc"
  find_nccl
  unpack_prefix
  use_prefix
  mpirun --version > /dev/null 2>&1 || fail "Open MPI from the prefix does not start: $(mpirun --version 2>&1 | head -n 3)"
  local nccl_flag=ON; [ "$no_gpu" = 1 ] && nccl_flag=AUTO
  cmake_args=(-DCMAKE_BUILD_TYPE=Release "-DDISTGAN_WITH_NCCL=$nccl_flag"
    "-DCMAKE_PREFIX_PATH=$torch_prefix;$prefix/usr;$prefix/usr/$multiarch/cmake"
    "-DDISTGAN_HDF5_INCLUDE_DIR=$prefix/usr/include/hdf5/serial"
    "-DDISTGAN_HDF5_LIBRARY=$prefix/usr/$multiarch/hdf5/serial/libhdf5.so"
    "-DMPI_CXX_COMPILER=$prefix/usr/bin/mpicxx" "-DMPI_C_COMPILER=$prefix/usr/bin/mpicc")
  [ -z "$nvcc" ] || cmake_args+=("-DCMAKE_CUDA_COMPILER=$nvcc")
  [ -z "${cuda_home:-}" ] || cmake_args+=("-DCUDAToolkit_ROOT=$cuda_home")
  key=$(build_key)
}

build_distgan() {
  local t0=$SECONDS gen=()
  rm -rf "$build_dir/.stamp" "$build_dir/results"  # test's results belong to the build they ran on
  # Ninja where the machine has it (pip's cmake and ninja): a fresh build directory only, since
  # CMake refuses to change the generator of an existing one.
  [ -f "$build_dir/CMakeCache.txt" ] || ! command -v ninja >/dev/null || gen=(-G Ninja)
  cmake -S . -B "$build_dir" "${gen[@]}" "${cmake_args[@]}" > "$logs/build.log" 2>&1 ||
    { tail -n 40 "$logs/build.log"; fail "cmake (build-gpu/log/build.log)"; }
  cmake --build "$build_dir" -j "$(nproc)" >> "$logs/build.log" 2>&1 ||
    { grep -m 20 -A 5 -E 'error|Error' "$logs/build.log"; fail "build (build-gpu/log/build.log)"; }
  version=$("$distgan" --version 2>&1) || fail "the distgan just built does not start: $version"
  [ "$no_gpu" = 1 ] || echo "$version" | grep -q "with CUDA, NCCL" ||
    fail "the build has no CUDA LibTorch or no NCCL: $version"
  echo "$key" > "$build_dir/.stamp"
  build_s=$((SECONDS - t0))
  say "built build-gpu/ in $build_s s on $(nproc) cores: $version"
}

# For test and bench: build-gpu/ as it is when its stamp matches, else built first; fails early,
# before any build, when torch sees no GPU.
ensure_build() {
  if [ -x "$distgan" ] && [ "$(cat "$build_dir/.stamp" 2>/dev/null)" = "$key" ]; then
    built="reused"
    say "reusing build-gpu/ (stamp $key matches the sources, packages, PyTorch and nvcc)"
  else
    built="built first"
    say "build-gpu/ is missing or stale (stamp $(cat "$build_dir/.stamp" 2>/dev/null || echo none), now $key): building it first"
  fi
  if [ "$no_gpu" != 1 ] && ! $py -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    fail "torch sees no GPU (torch.cuda.is_available() is False); build-gpu/ $built"
  fi
  [ "$built" = reused ] || build_distgan
  version=$("$distgan" --version 2>&1) || fail "distgan does not start: $version"
}

train() {  # NAME NP ARGS...: one distgan run in build-gpu/log/runs/NAME; prints nothing unless it fails
  local name=$1 np=$2 bind=(); shift 2
  # Open MPI binds each of up to 2 ranks to one core, and distgan then runs one compute thread:
  # a single rank gets the whole machine instead (its thread count follows its affinity mask).
  [ "$np" = 1 ] && bind=(--bind-to none)
  rm -rf "$logs/runs/$name"; mkdir -p "$logs/runs"
  mpirun -np "$np" "${bind[@]}" --oversubscribe "$distgan" train -c configs/fashion-mnist.yaml \
    --set data.path="$data" --set logging.sample_every=0 --set checkpoint.every=0 \
    --set logging.run_dir="$logs/runs/$name" "$@" > "$logs/runs/$name.log" 2>&1 ||
    { tail -n 20 "$logs/runs/$name.log"; return 1; }
}

phase_build() {
  local t0=$SECONDS
  setup
  build_distgan
  ok "in $((SECONDS - t0)) s (compiling $build_s s): PyTorch $torch_version, nvcc ${nvcc_version:-none}, NCCL from \
$nccl_from, glibc $glibc_have (needs >= $glibc_need); $version"
}

phase_test() {
  local t0=$SECONDS tests_rc tests summary losses worst="?" losses_ok=no shared_ok=no
  setup
  ensure_build
  export DISTGAN_TEST_DATA=$data  # the GPU machine has no dataset-fashion-mnist package
  (cd "$build_dir" && ctest --output-on-failure -R 'Gpu|gpu_train|Backend|DeviceChoice|Nccl|Checkpoint|mpi_shards') \
    > "$logs/ctest.log" 2>&1
  tests_rc=$?
  # ctest counts a skipped test (no GPU, or a CPU-only LibTorch) as passed: counted apart here.
  local total failed skipped
  total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$logs/ctest.log" | tail -n 1)
  failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$logs/ctest.log" | tail -n 1)
  skipped=$(grep -c '\*\*\*Skipped' "$logs/ctest.log")
  tests="ctest ${total:-?} tests: $((${total:-0} - ${failed:-0} - skipped)) passed, $skipped skipped, ${failed:-?} failed"
  say "$tests"
  train cpu 1 --set training.steps=10 --set logging.every=1 --set cluster.device=cpu || fail "the CPU run; $tests"
  [ "$no_gpu" = 1 ] && fail "no GPU (GPU_CHECK_NO_GPU=1): build-gpu/ $built; $tests; a 10-step CPU run trained; no GPU run tried"
  if train gpu 1 --set training.steps=10 --set logging.every=1 --set cluster.device=cuda &&
     losses=$($py - "$logs/runs" "$tolerance" <<'PY'
import json, sys
runs, tol = sys.argv[1], float(sys.argv[2])
cpu = [json.loads(l) for l in open(f"{runs}/cpu/metrics.jsonl")]
gpu = [json.loads(l) for l in open(f"{runs}/gpu/metrics.jsonl")]
worst = max(abs(a[k] - b[k]) / max(1.0, abs(a[k])) for a, b in zip(cpu, gpu) for k in ("loss_d", "loss_g"))
print(f"{'yes' if worst <= tol else 'no'} {worst:.2e}")
PY
     ); then losses_ok=${losses%% *} worst=${losses##* }; fi
  say "first 10 steps' losses GPU vs CPU: largest relative difference $worst (tolerance $tolerance): $losses_ok"
  train shared 2 --set training.steps=20 --set logging.every=10 --set cluster.device=cuda --set cluster.backend=mpi &&
    grep -q "on 2 rank(s) (cuda, mpi backend)" "$logs/runs/shared.log" && shared_ok=yes
  say "2 ranks on one GPU with the MPI backend: $shared_ok"
  mkdir -p "$build_dir/results"
  cat > "$build_dir/results/checks.md" <<EOF
| check | result |
| --- | --- |
| build against the CUDA LibTorch, NCCL on | yes: $version |
| tests (ctest -R 'Gpu\|gpu_train\|Backend\|DeviceChoice\|Nccl\|Checkpoint\|mpi_shards') | ${tests#ctest } |
| first 10 steps' losses, GPU vs CPU (largest relative difference, tolerance $tolerance) | $losses_ok ($worst) |
| 2 ranks on one GPU, MPI backend | $shared_ok |
EOF
  summary="$tests; losses GPU vs CPU $worst (tolerance $tolerance): $losses_ok; 2 ranks on one GPU: $shared_ok; build $built"
  # On a GPU nothing of this subset may skip: a skip means distgan or the tests saw no usable GPU.
  if [ "$tests_rc" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$losses_ok" != yes ] || [ "$shared_ok" != yes ]; then
    fail "$summary"
  fi
  ok "in $((SECONDS - t0)) s: $summary"
}

phase_bench() {
  local t0=$SECONDS batch d c e t rows="" line="" table gpu_name
  setup
  ensure_build
  [ "$no_gpu" = 1 ] && fail "no GPU (GPU_CHECK_NO_GPU=1): build-gpu/ $built; nothing to measure"
  peer() {  # NAME BATCH [--compile]: the PyTorch peer's images/s, or -
    local log=$logs/runs/$1.log; shift
    $py bench/peer/dcgan_gpu.py --data "$data" --steps "$steps" --batch "$@" > "$log" 2>&1 &&
      tail -n 1 "$log" | $py -c 'import json, sys; print("%.0f" % json.load(sys.stdin)["images_per_s"])' || echo -
  }
  for batch in 64 512; do
    d=- c=-
    if train "bench$batch" 1 --set training.steps=$((steps + 10)) --set logging.every=10 --set cluster.device=cuda \
         --set training.batch_size=$batch; then
      # images/s over the logging intervals after the first (warm-up), and the share spent in collectives
      read -r d c < <($py - "$logs/runs/bench$batch/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]
print(f"{10 * len(rows) / sum(10 / r['images_per_s'] for r in rows):.0f} {sum(r['time_share']['comm'] for r in rows) / len(rows):.3f}")
PY
      )
    fi
    e=$(peer eager$batch $batch) t=$(peer compile$batch $batch --compile)
    rows+="| $batch | $d | $e | $t | $($py -c "print(f'{$d / $e:.2f}')" 2>/dev/null || echo -) \
| $($py -c "print(f'{$d / $t:.2f}')" 2>/dev/null || echo -) | $c |"$'\n'
    line+="${line:+, }batch $batch $d/$e/$t"
    say "batch $batch: distgan $d, PyTorch eager $e, torch.compile $t images/s"
  done
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
  table="GPU check on ${gpu_name:-?}, PyTorch $torch_version, $(date -u +%F)

$(cat "$build_dir/results/checks.md" 2>/dev/null || echo "(test has not run on this build: its checks are not in this table)")

DCGAN-28, 1 rank, NCCL, $steps steps after warm-up (images/s):

| batch | distgan | PyTorch eager | torch.compile | distgan / eager | distgan / compile | distgan comm share |
| --- | --- | --- | --- | --- | --- | --- |
$rows"
  echo
  echo "$table" | tee "$gpu/table.md"
  echo
  case $line in *"batch 64 -/"* | *"batch 512 -/"*) fail "in $((SECONDS - t0)) s: a distgan run failed (build-gpu/log/runs): images/s distgan/eager/compile $line";; esac
  ok "in $((SECONDS - t0)) s: DCGAN-28 images/s distgan/eager/compile $line; build $built; table in .gpu/table.md"
}

copy_out() {  # the logs and tables to $GPU_CHECK_OUT, flat (a lent machine returns only such files)
  [ -n "${GPU_CHECK_OUT:-}" ] || return 0
  mkdir -p "$GPU_CHECK_OUT"
  cp -f "$logs/build.log" "$logs/ctest.log" "$build_dir/results/checks.md" "$gpu/table.md" "$GPU_CHECK_OUT/" 2>/dev/null
  for f in "$logs"/runs/*.log; do [ -f "$f" ] && { echo "==> $f"; tail -n 50 "$f"; }; done > "$GPU_CHECK_OUT/runs.log"
}

phases=("${@:-all}")
[ "${phases[*]}" = all ] && { phases=(build test bench); [ "$no_gpu" = 1 ] && phases=(build); }
for p in "${phases[@]}"; do
  case $p in
    fetch | build | test | bench) ;;
    *) echo "usage: bash bench/gpu-check.sh [fetch|build|test|bench|all]... (see the header)"; exit 2 ;;
  esac
done
for p in "${phases[@]}"; do
  (phase=$p; "phase_$p"); rc=$?
  [ "$p" = fetch ] || copy_out
  [ $rc -eq 0 ] || exit $rc
done
