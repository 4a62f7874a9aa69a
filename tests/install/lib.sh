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

source "$source_dir/tests/lib/fake_slurm.sh"  # fake_slurm, job_runs
