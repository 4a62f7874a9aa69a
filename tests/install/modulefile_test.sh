#!/usr/bin/env bash
# The installed modulefile under Environment Modules and, where installed, Lmod: after `module use
# PREFIX/share/modulefiles; module load distgan` the installed distgan comes first on PATH (before a
# distgan already there) and runs, DISTGAN_HOME is the prefix, and `module unload` undoes both.
# Debian makes the two packages conflict: cluster/install-deps.sh installs Environment Modules, so
# Lmod is tested where a site has it instead. Skipped (77) where neither is installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
systems=()
[ -f /usr/share/modules/init/bash ] && systems+=("Environment Modules=/usr/share/modules/init/bash")
[ -f /usr/share/lmod/lmod/init/bash ] && systems+=("Lmod=/usr/share/lmod/lmod/init/bash")
[ ${#systems[@]} -gt 0 ] || { echo "SKIP: neither Environment Modules nor Lmod is installed"; exit 77; }
enter_test_dir

p=$tmp/prefix
expect_ok "cmake --install into a new prefix" "" "$CMAKE_COMMAND" --install "$DISTGAN_BUILD_DIR" --prefix "$p"
mkdir onpath && printf '#!/bin/sh\necho "not the installed distgan"\n' >onpath/distgan && chmod +x onpath/distgan

# session INIT COMMANDS: COMMANDS in a new bash with a clean environment and the module system of
# INIT, after `module use` of the prefix's modulefiles; PATH has another distgan.
session() {
  env -i HOME="$HOME" PATH="$PWD/onpath:/usr/bin:/bin" \
    bash -c "source '$1' && module use '$p/share/modulefiles' && $2" 2>&1
}
v=${DISTGAN_VERSION//./\\.}
for system in "${systems[@]}"; do
  name=${system%%=*}; init=${system#*=}
  expect_ok "$name: module avail lists distgan/$DISTGAN_VERSION" "distgan/$v" session "$init" "module avail distgan"
  expect_ok "$name: after module load, distgan is the installed one" "^$p/bin/distgan$" \
    session "$init" "module load distgan && command -v distgan"
  expect_ok "$name: and it runs" "^distgan $v " session "$init" "module load distgan && distgan --version"
  expect_ok "$name: DISTGAN_HOME is the prefix" "^home=$p$" \
    session "$init" "module load distgan/$DISTGAN_VERSION && echo home=\$DISTGAN_HOME"
  expect_ok "$name: module unload restores PATH and DISTGAN_HOME" "^$PWD/onpath/distgan home=$" \
    session "$init" "module load distgan && module unload distgan && echo \$(command -v distgan) home=\${DISTGAN_HOME:-}"
  expect_ok "$name: module help names the installed job scripts" "$p/share/distgan/slurm" \
    session "$init" "module help distgan"
  expect_fail_any "$name: a version that is not installed does not load" "distgan/0.0.0" \
    session "$init" "module load distgan/0.0.0"
done
finish
