#!/usr/bin/env bash
# The GPU check: builds distgan against the GPU machine's PyTorch (a CUDA LibTorch 2.x), runs the
# GPU tests, checks that the first steps' losses on the GPU match a CPU run, trains 2 ranks on the
# one GPU with the MPI backend, and benchmarks DCGAN-28 images/s against the same model as a PyTorch
# eager script and under torch.compile, at batch 64 and 512. Prints one table (and .gpu/table.md).
#
#   bash bench/gpu-check.sh fetch   here, on Debian 12 with the project's dependencies installed:
#                                   downloads the Debian packages the build needs into .gpu/debs
#                                   (about 18 MB) and writes the Fashion-MNIST test split to .gpu/
#   bash bench/gpu-check.sh         on the GPU machine, from the repository root, .gpu/ beside it:
#                                   unpacks the packages into .gpu/prefix (never over /), keeping the
#                                   machine's own copy of every library it already has, builds in
#                                   build-gpu/, runs the checks. Needs python3 with torch and h5py,
#                                   cmake, a C++ compiler and the CUDA toolkit with NCCL.
# .gpu/ and build-gpu/ are ignored by git. Env: STEPS (100) per benchmark run, TOLERANCE (0.02).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gpu=$root/.gpu
steps=${STEPS:-100}
tolerance=${TOLERANCE:-0.02}

# What the build needs from Debian 12 beyond a CUDA machine's base system: the -dev packages and the
# runtime libraries they link against (Open MPI's transports included), without compilers.
packages=(libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libaec0 libsz2 libcurl4 libbrotli1 libldap-2.5-0 libnghttp2-14
  libpsl5 librtmp1 libsasl2-2 libsasl2-modules-db libssh2-1 libjpeg62-turbo libjpeg62-turbo-dev
  libexif-dev libexif12 libwebp-dev libwebp7 libwebpdemux2 libwebpmux3 pkg-config libpkgconf3 pkgconf pkgconf-bin
  libyaml-cpp-dev libyaml-cpp0.7 libpng-dev libpng16-16 zlib1g-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev googletest
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix-dev libpmix2 libhwloc15 libevent-2.1-7
  libevent-core-2.1-7 libevent-extra-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0
  libibverbs1 ibverbs-providers librdmacm1 libpsm2-2 libpsm-infinipath1 libnl-3-200 libnl-route-3-200 libnuma1
  libltdl7 libmunge2 libcap-ng0)

if [ "${1:-}" = fetch ]; then
  set -e
  rm -rf "$gpu/debs"; mkdir -p "$gpu/debs"
  (cd "$gpu/debs" && apt-get download "${packages[@]}")
  build=${BUILD:-build}
  [ -x "$build/launcher/distgan" ] || { echo "gpu-check fetch: build distgan first (make build)"; exit 1; }
  rm -f "$gpu/fashion-mnist-test.h5"
  "$build/launcher/distgan" prep fashion-mnist --split test --out "$gpu/fashion-mnist-test.h5"
  echo "gpu-check: $(du -sh "$gpu" | cut -f1) in $gpu; carry it to the GPU machine and run bash bench/gpu-check.sh"
  exit 0
fi

say() { echo "gpu-check: $*"; }
fail() { echo "gpu-check: FAILED: $*"; exit 1; }
[ -d "$gpu/debs" ] || fail "no $gpu/debs: run 'bash bench/gpu-check.sh fetch' on the Debian machine and carry .gpu"
build_only=${GPU_CHECK_BUILD_ONLY:-0}  # 1: unpack and build only (tests this script on a machine without a GPU)
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
py=${PYTHON:-python3}
torch_prefix=$($py -c 'import torch; print(torch.utils.cmake_prefix_path)') || fail "python3 has no torch"
torch_version=$($py -c 'import torch; print(torch.__version__)')
[ "$build_only" = 1 ] || $py -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
  fail "torch sees no GPU"
say "PyTorch $torch_version at $torch_prefix"
# NCCL: the copy PyTorch itself loads (pip's nvidia-nccl), so one NCCL is in the process; else the
# CUDA toolkit's. CMake looks for libnccl.so: the wheel has only libnccl.so.2, so link it.
nccl_dir=$($py -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
if [ -n "$nccl_dir" ] && [ -f "$nccl_dir/include/nccl.h" ]; then
  mkdir -p "$gpu/nccl/lib"
  ln -sfn "$nccl_dir/include" "$gpu/nccl/include"
  ln -sf "$nccl_dir/lib/libnccl.so.2" "$gpu/nccl/lib/libnccl.so"
  ln -sf "$nccl_dir/lib/libnccl.so.2" "$gpu/nccl/lib/libnccl.so.2"  # the soname distgan loads at run time
  export NCCL_HOME=$gpu/nccl
  export LD_LIBRARY_PATH=$gpu/nccl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "NCCL from PyTorch's wheel: $nccl_dir"
fi
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}

# 1. The packages, unpacked into a private prefix; a library the machine already has is removed
#    from the prefix, so the machine's own (newer) copy is the one loaded.
prefix=$gpu/prefix
if [ ! -f "$prefix/.done" ]; then
  rm -rf "$prefix"; mkdir -p "$prefix"
  for deb in "$gpu"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$prefix"
    else (cd "$prefix" && ar p "$deb" "$(ar t "$deb" | grep '^data.tar')" | tar -xJf -); fi ||
      fail "cannot unpack $deb (needs dpkg-deb, or ar and xz)"
  done
  # A runtime library the machine has already: the prefix's copy becomes a link to the machine's,
  # so one copy is loaded (and the -dev links of the prefix still resolve).
  ldconfig -p | awk '/=>/ && /x86-64/ {print $1, $NF}' | sort -u -k1,1 > "$gpu/system-libs.txt"
  find "$prefix" -name '*.so.*' \( -type f -o -type l \) | while read -r lib; do
    system=$(awk -v n="$(basename "$lib")" '$1 == n {print $2; exit}' "$gpu/system-libs.txt")
    [ -n "$system" ] && ln -sf "$system" "$lib"
  done
  # Debian makes mpirun, mpicxx... as alternatives links when it installs; here, by hand.
  for tool in mpirun mpiexec mpicc mpicxx mpic++; do ln -sf "$tool.openmpi" "$prefix/usr/bin/$tool"; done
  touch "$prefix/.done"
fi
multiarch=lib/x86_64-linux-gnu
libdirs=$prefix/usr/$multiarch:$prefix/usr/$multiarch/hdf5/serial:$prefix/usr/$multiarch/openmpi/lib
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPAL_PREFIX=$prefix/usr  # Open MPI finds its components, help files and wrappers here
export PATH=$prefix/usr/bin:$PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=
mpirun --version | head -n 1 || fail "Open MPI from the prefix does not start"

# 2. Build against the CUDA LibTorch, with NCCL from the CUDA toolkit.
nccl_flag=ON; [ "$build_only" = 1 ] && nccl_flag=AUTO
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDISTGAN_WITH_NCCL=$nccl_flag \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr;$prefix/usr/$multiarch/cmake" \
  -DDISTGAN_HDF5_INCLUDE_DIR="$prefix/usr/include/hdf5/serial" \
  -DDISTGAN_HDF5_LIBRARY="$prefix/usr/$multiarch/hdf5/serial/libhdf5.so" \
  -DMPI_CXX_COMPILER="$prefix/usr/bin/mpicxx" -DMPI_C_COMPILER="$prefix/usr/bin/mpicc" \
  > build-gpu.log 2>&1 || { tail -n 40 build-gpu.log; fail "cmake (build-gpu.log)"; }
cmake --build build-gpu -j "$(nproc)" >> build-gpu.log 2>&1 || { grep -m 20 -A 5 error build-gpu.log; fail "build"; }
distgan=$root/build-gpu/launcher/distgan
$distgan --version || fail "the distgan just built does not start"
if [ "$build_only" = 1 ]; then say "built (GPU_CHECK_BUILD_ONLY=1: stopping here)"; exit 0; fi
$distgan --version | grep -q "with CUDA, NCCL" || fail "the build has no CUDA LibTorch or no NCCL"
export DISTGAN_TEST_DATA=$gpu/fashion-mnist-test.h5  # the GPU machine has no dataset-fashion-mnist package

# 3. The GPU tests (and the rest of the suite that needs no Debian data package).
(cd build-gpu && ctest --output-on-failure -R 'Gpu|gpu_train|Backend|DeviceChoice|Checkpoint|mpi_shards') \
  > gpu-tests.log 2>&1
tests_rc=$?
tests_summary=$(grep -E "tests passed|tests failed" gpu-tests.log | tail -n 1)
skipped=$(grep -c "Skipped" gpu-tests.log)
say "tests: $tests_summary ($skipped skipped)"

# 4. Runs: the first losses on GPU against CPU; 2 ranks on one GPU; throughput at batch 64 and 512.
data=$gpu/fashion-mnist-test.h5
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
train() {  # NAME NP ARGS...: one distgan run; prints nothing, leaves $work/NAME
  local name=$1 np=$2; shift 2
  mpirun -np "$np" --oversubscribe "$distgan" train -c configs/fashion-mnist.yaml --set data.path="$data" \
    --set logging.sample_every=0 --set checkpoint.every=0 --set logging.run_dir="$work/$name" "$@" \
    > "$work/$name.log" 2>&1 || { tail -n 20 "$work/$name.log"; return 1; }
}
losses_ok=no
train cpu 1 --set training.steps=10 --set logging.every=1 --set cluster.device=cpu &&
train gpu 1 --set training.steps=10 --set logging.every=1 --set cluster.device=cuda &&
  losses=$($py - "$work" "$tolerance" <<'PY'
import json, sys
work, tol = sys.argv[1], float(sys.argv[2])
cpu = [json.loads(l) for l in open(f"{work}/cpu/metrics.jsonl")]
gpu = [json.loads(l) for l in open(f"{work}/gpu/metrics.jsonl")]
worst = max(abs(a[k] - b[k]) / max(1.0, abs(a[k])) for a, b in zip(cpu, gpu) for k in ("loss_d", "loss_g"))
print(f"{'yes' if worst <= tol else 'no'} {worst:.2e}")
PY
) && losses_ok=${losses%% *} && worst=${losses##* }
say "first 10 steps' losses GPU vs CPU: largest relative difference ${worst:-?} (tolerance $tolerance): $losses_ok"
shared_ok=no
train shared 2 --set training.steps=20 --set logging.every=10 --set cluster.device=cuda --set cluster.backend=mpi &&
  grep -q "on 2 rank(s) (cuda, mpi backend)" "$work/shared.log" && shared_ok=yes
say "2 ranks on one GPU with the MPI backend: $shared_ok"

rate() {  # metrics.jsonl -> images/s over the intervals after the first (warm-up); comm share
  $py - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]
print(f"{10 * len(rows) / sum(10 / r['images_per_s'] for r in rows):.0f} {sum(r['time_share']['comm'] for r in rows) / len(rows):.3f}")
PY
}
rows=""
for batch in 64 512; do
  d=- c=- e=- t=-
  if train "bench$batch" 1 --set training.steps=$((steps + 10)) --set logging.every=10 --set cluster.device=cuda \
       --set training.batch_size=$batch; then
    read -r d c < <(rate "$work/bench$batch/metrics.jsonl")
  fi
  d=${d:--} c=${c:--} e=${e:--} t=${t:--}
  e=$($py bench/peer/dcgan_gpu.py --data "$data" --batch $batch --steps "$steps" 2>/dev/null | tail -n 1 |
      $py -c 'import json, sys; print("%.0f" % json.load(sys.stdin)["images_per_s"])') || e=-
  t=$($py bench/peer/dcgan_gpu.py --data "$data" --batch $batch --steps "$steps" --compile 2>/dev/null | tail -n 1 |
      $py -c 'import json, sys; print("%.0f" % json.load(sys.stdin)["images_per_s"])') || t=-
  ratio=$($py -c "print(f'{$d / $e:.2f}')" 2>/dev/null || echo -)
  ratio_c=$($py -c "print(f'{$d / $t:.2f}')" 2>/dev/null || echo -)
  rows+="| $batch | $d | $e | $t | $ratio | $ratio_c | $c |"$'\n'
done

table="GPU check on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1), PyTorch $torch_version, $(date -u +%F)

| check | result |
| --- | --- |
| build against the CUDA LibTorch, NCCL on | yes |
| tests ($(basename "$distgan") ctest -R 'Gpu|gpu_train|...') | $tests_summary, $skipped skipped |
| first 10 steps' losses, GPU vs CPU (largest relative difference, tolerance $tolerance) | $losses_ok (${worst:-?}) |
| 2 ranks on one GPU, MPI backend | $shared_ok |

DCGAN-28, 1 rank, NCCL, $steps steps after warm-up (images/s):

| batch | distgan | PyTorch eager | torch.compile | distgan / eager | distgan / compile | distgan comm share |
| --- | --- | --- | --- | --- | --- | --- |
$rows"
echo
echo "$table" | tee "$gpu/table.md"
[ $tests_rc -eq 0 ] && [ "$losses_ok" = yes ] && [ "$shared_ok" = yes ]
