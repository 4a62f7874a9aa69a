# shellcheck shell=bash disable=SC2034,SC2154  # sourced by bench/gpu-check.sh, which sets and reads these
# Helpers of bench/gpu-check.sh (sourced from the repository root): finding the machine's PyTorch,
# nvcc and NCCL, unpacking .gpu/debs into a private prefix, the glibc check, the environment that
# uses the prefix, and the build stamp that lets a later phase reuse build-gpu/.

gpu=$PWD/.gpu                  # what `fetch` packed (carried to the GPU machine; read only there)
build_dir=$PWD/build-gpu       # everything made on the GPU machine: the build, the prefix, logs
prefix=$build_dir/prefix       # not under .gpu: carrying .gpu again replaces .gpu on the machine
logs=$build_dir/log
multiarch=lib/x86_64-linux-gnu
phase=${phase:-gpu-check}

say() { echo "gpu-check: $*"; }
ok() { echo "gpu-check $phase: OK $*"; }
fail() { echo "gpu-check $phase: FAILED $*"; exit 1; }
ver_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }  # A >= B

read_packages() { grep -v '^#' "$PWD/bench/gpu/packages.txt" | tr -s ' \n' '\n' | grep .; }

# The python that holds torch: $PYTHON, else python3, else Debian's /usr/bin/python3.
find_torch() {
  local p
  for p in ${PYTHON:-python3} /usr/bin/python3; do
    if torch_prefix=$($p -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
      py=$p
      read -r torch_version torch_cuda torch_abi < <($py -c 'import torch
print(torch.__version__, torch.version.cuda, int(torch.compiled_with_cxx11_abi()))')
      return 0
    fi
  done
  fail "no python3 with torch (tried ${PYTHON:-python3} and /usr/bin/python3; set PYTHON)"
}

# nvcc: $CUDACXX, $CUDA_HOME/bin, /usr/local/cuda/bin, PATH, then the CUDA wheels beside torch.
# A CUDA LibTorch's CMake config looks for the CUDA toolkit (FindCUDAToolkit) through it.
find_nvcc() {
  local c
  nvcc=
  for c in "${CUDACXX:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc "$(command -v nvcc)" \
      $($py -c 'import glob, os, nvidia; print(" ".join(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "bin", "nvcc"))))' 2>/dev/null); do
    [ -n "$c" ] && [ -x "$c" ] && "$c" --version > /dev/null 2>&1 && { nvcc=$(readlink -f "$c"); break; }
  done
  if [ -z "$nvcc" ]; then
    [ "$no_gpu" = 1 ] && { say "no nvcc (no-GPU mode: not needed)"; return 0; }
    fail "no nvcc: looked at \$CUDACXX, \$CUDA_HOME/bin, /usr/local/cuda/bin, PATH and the nvidia wheels; set CUDACXX=/path/to/nvcc"
  fi
  nvcc_version=$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  # The toolkit's root: $CUDA_HOME when it is one, else nvcc's (a wrapper script's is no root).
  cuda_home=${CUDA_HOME:-}
  [ -f "$cuda_home/include/cuda_runtime_api.h" ] || cuda_home=$(dirname "$(dirname "$nvcc")")
  [ -f "$cuda_home/include/cuda_runtime_api.h" ] || cuda_home=
  export CUDACXX=$nvcc
  [ -z "$cuda_home" ] || export CUDA_HOME=$cuda_home
  export PATH=$(dirname "$nvcc"):$PATH
  # No CUDA code of ours: the arch list only spares Torch's config its detection by a test program.
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
}

# NCCL: the copy PyTorch itself loads (pip's nvidia-nccl), so one NCCL is in the process; else the
# CUDA toolkit's. CMake looks for libnccl.so: the wheel has only libnccl.so.2, so link it.
find_nccl() {
  local dir
  nccl_from="CUDA toolkit"
  dir=$($py -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null) || dir=
  if [ -n "$dir" ] && [ -f "$dir/include/nccl.h" ]; then
    mkdir -p "$build_dir/nccl/lib"
    ln -sfn "$dir/include" "$build_dir/nccl/include"
    ln -sf "$dir/lib/libnccl.so.2" "$build_dir/nccl/lib/libnccl.so"
    ln -sf "$dir/lib/libnccl.so.2" "$build_dir/nccl/lib/libnccl.so.2"  # the soname distgan loads
    export NCCL_HOME=$build_dir/nccl
    export LD_LIBRARY_PATH=$build_dir/nccl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    nccl_from="PyTorch's wheel ($dir)"
  fi
}

# One .deb's files into DIR: dpkg-deb, else ar and tar, else python (a bare machine may lack binutils).
extract_deb() {
  local tool=${GPU_CHECK_UNPACK:-}
  [ -n "$tool" ] || { command -v dpkg-deb >/dev/null && tool=dpkg-deb; } ||
    { command -v ar >/dev/null && tool=ar; } || tool=python
  case $tool in
    dpkg-deb) dpkg-deb -x "$1" "$2" ;;
    ar) (cd "$2" && ar p "$1" "$(ar t "$1" | grep '^data.tar')" | tar -xJf -) ;;
    python) "${py:-python3}" - "$1" "$2" <<'PY'
import io, sys, tarfile
deb, dest = sys.argv[1:]
with open(deb, "rb") as f:
    assert f.read(8) == b"!<arch>\n", "not a .deb"
    while len(header := f.read(60)) == 60:
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        data = f.read(size + size % 2)
        if name.startswith("data.tar"):  # Debian's own links (absolute ones too) must survive
            kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
            tarfile.open(fileobj=io.BytesIO(data[:size])).extractall(dest, **kw)
            sys.exit(0)
sys.exit(f"no data.tar in {deb}")
PY
    ;;
  esac
}

# The highest GLIBC_x.y symbol version that the ELF files in DIR need. readelf or objdump read the
# version needs exactly; without binutils, grep finds the same names in the dynamic string table.
# GPU_CHECK_GLIBC_TOOL forces one (to test each), GPU_CHECK_GLIBC_NEEDED pretends a requirement.
glibc_tool=${GPU_CHECK_GLIBC_TOOL:-}
[ -n "$glibc_tool" ] || { command -v readelf >/dev/null && glibc_tool=readelf; } ||
  { command -v objdump >/dev/null && glibc_tool=objdump; } || glibc_tool=grep
[ -z "${GPU_CHECK_GLIBC_NEEDED:-}" ] || glibc_tool="GPU_CHECK_GLIBC_NEEDED"
glibc_needed() {
  if [ -n "${GPU_CHECK_GLIBC_NEEDED:-}" ]; then echo "$GPU_CHECK_GLIBC_NEEDED"; return; fi
  find "$1" -type f \( -name '*.so' -o -name '*.so.*' -o -path '*/bin/*' \) -print0 | xargs -0 -r sh -c '
    case $0 in
      readelf) readelf -V -W "$@" 2>/dev/null | grep -oE "Name: GLIBC_[0-9]+(\.[0-9]+)+" | cut -d" " -f2 ;;
      objdump) objdump -p "$@" 2>/dev/null | grep -oE "GLIBC_[0-9]+(\.[0-9]+)+" ;;
      *) LC_ALL=C grep -aohE "GLIBC_[0-9]+(\.[0-9]+)+" "$@" ;;
    esac' "$glibc_tool" | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}

machine_glibc() {
  local v
  v=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  [ -n "$v" ] || v=$(ldd --version 2>/dev/null | awk 'NR == 1 {print $NF}')
  [ -n "$v" ] || v=$("${py:-python3}" -c 'import platform; print(platform.libc_ver()[1])' 2>/dev/null)
  echo "$v"
}

# Fails unless this machine's glibc is at least what the prefix's own files need (Debian 12: 2.36;
# an older glibc would fail later, at link or load time, with "version `GLIBC_2.xx' not found").
check_glibc() {
  glibc_have=$(machine_glibc)
  glibc_need=$(glibc_needed "$prefix")
  [ -n "$glibc_have" ] || fail "cannot tell this machine's glibc version (getconf, ldd and python all failed)"
  [ -n "$glibc_need" ] || glibc_need=0
  if ! ver_ge "$glibc_have" "$glibc_need"; then
    local needers
    needers=$(grep -rlas "GLIBC_$glibc_need" "$prefix" | head -n 2 | sed "s|$prefix/||" | tr '\n' ' ')
    fail "this machine's glibc $glibc_have is older than the $glibc_need that the packed Debian 12 libraries \
need (read with $glibc_tool${needers:+: ${needers% }}); use a machine with glibc >= $glibc_need"
  fi
  say "glibc $glibc_have here; the packed libraries need >= $glibc_need (read with $glibc_tool)"
}

# The packages, unpacked into the private prefix (never over /); a library the machine has already
# becomes a link to the machine's copy, so one copy is loaded and the -dev links still resolve.
# Redone only when .gpu/debs changed.
unpack_prefix() {
  local debs_key deb lib system tool
  debs_key=$(cd "$gpu/debs" && ls -l ./*.deb | awk '{print $5, $NF}' | cksum | cut -d' ' -f1)
  if [ "$(cat "$prefix/.done" 2>/dev/null)" != "$debs_key" ]; then
    rm -rf "$prefix"; mkdir -p "$prefix"
    for deb in "$gpu"/debs/*.deb; do
      extract_deb "$deb" "$prefix" || fail "cannot unpack $deb (needs dpkg-deb, ar and tar, or python3)"
    done
    # The machine's sonames (ldconfig -p); a file libX.so.7.0.1 of the prefix is the machine's libX.so.7.
    ldconfig -p | awk '/=>/ && /x86-64/ {print $1, $NF}' | sort -u -k1,1 > "$prefix/.system-libs"
    find "$prefix" -name '*.so.*' \( -type f -o -type l \) | awk 'NR == FNR {mine[$1] = $2; next}
      {n = $0; sub(/.*\//, "", n); while (!(n in mine) && n ~ /\.so\.[^.]*\./) sub(/\.[^.]*$/, "", n)
       if (n in mine) print $0 "\t" mine[n]}' "$prefix/.system-libs" - |
      while IFS=$'\t' read -r lib system; do ln -sf "$system" "$lib"; done
    # Debian makes mpirun, mpicxx... as alternatives links when it installs; here, by hand.
    for tool in mpirun mpiexec mpicc mpicxx mpic++; do ln -sf "$tool.openmpi" "$prefix/usr/bin/$tool"; done
    echo "$debs_key" > "$prefix/.done"
    say "unpacked $(ls "$gpu"/debs/*.deb | wc -l) packages into $prefix"
  fi
  check_glibc
}

# The environment every phase runs in: the prefix's libraries, Open MPI and pkg-config first.
use_prefix() {
  export LD_LIBRARY_PATH=$prefix/usr/$multiarch:$prefix/usr/$multiarch/hdf5/serial:$prefix/usr/$multiarch/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export OPAL_PREFIX=$prefix/usr  # Open MPI finds its components, help files and wrappers here
  export PATH=$prefix/usr/bin:$PATH
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=
  # The .pc files say prefix=/usr: the sysroot puts their -I and -L under the prefix instead.
  export PKG_CONFIG_LIBDIR=$prefix/usr/$multiarch/pkgconfig:$prefix/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$prefix
  # jpeglib.h includes jconfig.h from the multiarch directory, which only the system's is searched.
  export CPATH=$prefix/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}
  # CMake 4 refuses configs that ask for a policy level below 3.5; Debian's are older than that.
  export CMAKE_POLICY_VERSION_MINIMUM=3.5
}

# What the build depends on: the sources and CMake files, the packed packages, the machine's torch,
# nvcc and NCCL, the mode and the configure arguments. Equal stamps: build-gpu/ is reused as it is
# (no cmake --build, whose mtime checks a re-copied working tree would defeat).
build_key() {
  {
    echo "no_gpu=$no_gpu torch=$torch_version $torch_prefix nvcc=${nvcc:-} ${nvcc_version:-} nccl=$nccl_from"
    printf '%s\n' "${cmake_args[@]}"
    (cd "$gpu/debs" && ls -l ./*.deb | awk '{print $5, $NF}')
    find . \( -path ./.git -o -path ./.gpu -o -path './build*' -o -path ./runs -o -path ./datasets \) -prune -o \
      -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.hpp' -o -name '*.cc' -o -name '*.cu' -o -name '*.cmake' \
      -o -name '*.in' -o -name '*.proto' -o -name CMakeLists.txt -o -name CMakePresets.json \) -print0 |
      sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}
