# Shared by the install tests: the repository's files an install must hold, and stand-ins for
# Slurm's srun and scontrol that print the command a job script would run.
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${DISTGAN_BUILD_DIR:?set by ctest}" "${DISTGAN_VERSION:?set by ctest}"
CMAKE_COMMAND=${CMAKE_COMMAND:-cmake}
CPACK_COMMAND=${CPACK_COMMAND:-cpack}

# expected_files: every file an install holds, relative to the prefix, sorted.
expected_files() {
  {
    echo bin/distgan
    echo share/doc/distgan/README.md
    echo "share/modulefiles/distgan/$DISTGAN_VERSION"
    for f in "$source_dir"/cluster/slurm/*.sbatch; do echo "share/distgan/slurm/${f##*/}"; done
    for f in "$source_dir"/configs/*.yaml; do echo "share/distgan/configs/${f##*/}"; done
    for f in "$source_dir"/docs/*.md; do echo "share/doc/distgan/docs/${f##*/}"; done
  } | LC_ALL=C sort
}

# files_under DIR: the files (and links) under DIR, relative to it, sorted.
files_under() { (cd "$1" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort); }

# fake_slurm DIR: srun and scontrol in DIR that print their arguments ("srun ARGS").
fake_slurm() {
  mkdir -p "$1"
  printf '#!/bin/sh\necho "srun $*"\n' >"$1/srun"
  printf '#!/bin/sh\necho "scontrol $*"\n' >"$1/scontrol"
  chmod +x "$1/srun" "$1/scontrol"
}

# job_runs SCRIPT [ENV...]: the line srun got from a job script run as Slurm would (the config
# c.yaml), with PATH = the fake Slurm, then /usr/bin:/bin; ENV adds or overrides variables.
job_runs() {
  local script=$1; shift
  env -i HOME="$HOME" PATH="$PWD/fakebin:/usr/bin:/bin" SLURM_JOB_ID=1 SLURM_JOB_NODELIST=localhost \
    SLURM_SUBMIT_DIR="$PWD/submit" "$@" bash "$script" c.yaml 2>&1 | grep '^srun '
}
