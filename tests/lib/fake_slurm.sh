# Stand-ins for Slurm's srun and scontrol, for tests of the job scripts without a Slurm (the install
# tests, the GPU job scripts' checks).

# fake_slurm DIR: srun and scontrol in DIR that print their arguments ("srun ARGS").
fake_slurm() {
  mkdir -p "$1"
  printf '#!/bin/sh\necho "srun $*"\n' >"$1/srun"
  printf '#!/bin/sh\necho "scontrol $*"\n' >"$1/scontrol"
  chmod +x "$1/srun" "$1/scontrol"
}

# job_runs SCRIPT [ENV...]: the line srun got from a job script run as Slurm would (the config
# c.yaml), with PATH = the fake Slurm, then /usr/bin:/bin; ENV adds or overrides variables.
job_runs() { job_output "$@" | grep '^srun '; }

# job_output SCRIPT [ENV...]: everything the job script prints, and its exit code.
job_output() {
  local script=$1; shift
  env -i HOME="$HOME" PATH="$PWD/fakebin:/usr/bin:/bin" SLURM_JOB_ID=1 SLURM_JOB_NODELIST=localhost \
    SLURM_SUBMIT_DIR="$PWD/submit" "$@" bash "$script" c.yaml 2>&1
}
