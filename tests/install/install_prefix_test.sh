#!/usr/bin/env bash
# `cmake --install` into a temporary prefix: exactly the executable, job scripts, configs, docs and
# modulefile (no test or benchmark binaries); the installed job scripts name the installed
# executable and pick it before `distgan` on PATH; the installed executable runs without the build
# tree; a staged install (DESTDIR) names the final prefix.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
enter_test_dir

p=$tmp/prefix
expect_ok "cmake --install into a new prefix" "Installing: $p/bin/distgan" \
  "$CMAKE_COMMAND" --install "$DISTGAN_BUILD_DIR" --prefix "$p"
expect_ok "the prefix holds exactly the expected files" "" diff <(expected_files) <(files_under "$p")
expect_ok "the installed executable runs with no build tree or library path" "^distgan $DISTGAN_VERSION " \
  env -i PATH=/usr/bin:/bin "$p/bin/distgan" --version
# An RPATH into the build tree would work here and break elsewhere; a missing library fails anywhere.
expect_fail 1 "its RUNPATH names no build directory" "" grep -qF "$DISTGAN_BUILD_DIR" <(readelf -d "$p/bin/distgan")
expect_fail 1 "every library it links is found" "" grep -q "not found" <(ldd "$p/bin/distgan")
expect_fail 1 "no placeholder is left in an installed file" "" grep -rlF "@DISTGAN_" "$p"

for script in "$source_dir"/cluster/slurm/*.sbatch; do
  name=${script##*/}
  expect_ok "$name: installed copy names the installed executable" "" \
    grep -qE "^installed_distgan='$p/bin/distgan'( |\$)" "$p/share/distgan/slurm/$name"
  expect_ok "$name: otherwise the installed copy equals the repository's" "" \
    diff <(grep -v '^installed_distgan=' "$script") <(grep -v '^installed_distgan=' "$p/share/distgan/slurm/$name")
done

# Which executable a job script runs: $DISTGAN, else the installed one, else distgan on PATH, else
# build/launcher/distgan in the submit directory (fake ones; srun only prints its command line).
fake_slurm fakebin
mkdir -p submit/build/launcher onpath
printf '#!/bin/sh\n' >submit/build/launcher/distgan; cp submit/build/launcher/distgan onpath/distgan
cp submit/build/launcher/distgan mine; chmod +x submit/build/launcher/distgan onpath/distgan mine
installed_job=$p/share/distgan/slurm/cpu.sbatch
checkout_job=$source_dir/cluster/slurm/cpu.sbatch
expect_ok "installed script: the installed executable" " $p/bin/distgan train --config c.yaml --resume auto" \
  job_runs "$installed_job"
expect_ok "installed script: the installed executable before distgan on PATH" " $p/bin/distgan train " \
  job_runs "$installed_job" PATH="$PWD/fakebin:$PWD/onpath:/usr/bin:/bin"
expect_ok "installed script: \$DISTGAN first" " $PWD/mine train " job_runs "$installed_job" DISTGAN="$PWD/mine"
expect_ok "checkout script: distgan on PATH" " $PWD/onpath/distgan train " \
  job_runs "$checkout_job" PATH="$PWD/fakebin:$PWD/onpath:/usr/bin:/bin"
expect_ok "checkout script: build/launcher/distgan in the submit directory" \
  " $PWD/submit/build/launcher/distgan train " job_runs "$checkout_job"

# Staged (what packagers and CPack do): files under DESTDIR, naming the prefix they will live in.
expect_ok "a staged install (DESTDIR)" "Installing: $tmp/stage/opt/distgan/bin/distgan" \
  env DESTDIR="$tmp/stage" "$CMAKE_COMMAND" --install "$DISTGAN_BUILD_DIR" --prefix /opt/distgan
expect_ok "it names the final prefix, not the staging directory" "^prepend-path PATH \{/opt/distgan/bin\}" \
  cat "$tmp/stage/opt/distgan/share/modulefiles/distgan/$DISTGAN_VERSION"
expect_ok "a script whose installed executable is absent falls back to distgan on PATH" " $PWD/onpath/distgan train " \
  job_runs "$tmp/stage/opt/distgan/share/distgan/slurm/cpu.sbatch" PATH="$PWD/fakebin:$PWD/onpath:/usr/bin:/bin"
finish
