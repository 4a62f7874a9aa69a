#!/usr/bin/env bash
# Learning on the 5x5 grid of Gaussians (configs/grid2d.yaml, shortened) on 2 MPI ranks: after
# training, generated points are much closer to the data than at step 0. The measure is symmetric,
# so that neither collapsing onto one mode nor spreading everywhere scores well:
#   quality  = mean over 2,500 generated points of the distance to the nearest mode
#   coverage = mean over the 25 modes of the distance to the nearest generated point
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/grid2d.yaml")
enter_test_dir
steps=${GRID2D_STEPS:-1500}

"$DISTGAN" prep grid -n 20000 --out grid.h5 >/dev/null
for n in 0 "$steps"; do
  expect_ok "train grid2d for $n steps" "distgan: done" mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" \
    --set data.path=grid.h5 --set logging.run_dir="run$n" --set training.steps="$n" --set logging.every=500
  expect_ok "sample after $n steps" "wrote 2500" "$DISTGAN" sample -k "run$n/final.h5" -n 2500 --seed 1 --out "gen$n.h5"
done
expect_ok "generated points are much closer to the modes than at step 0" "LEARNED" $py - "$steps" <<'PY'
import sys, h5py, numpy as np
modes = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
def score(path):
    g = h5py.File(path, "r")["/samples"][...]
    d = np.linalg.norm(g[:, None, :] - modes[None, :, :], axis=2)
    return d.min(axis=1).mean(), d.min(axis=0).mean()
q0, c0 = score("gen0.h5")
q1, c1 = score("gen%s.h5" % sys.argv[1])
print(f"step 0: quality {q0:.3f} coverage {c0:.3f} sum {q0 + c0:.3f}")
print(f"step {sys.argv[1]}: quality {q1:.3f} coverage {c1:.3f} sum {q1 + c1:.3f}")
assert q1 + c1 < 0.5 * (q0 + c0), "not learned"
print("LEARNED")
PY
finish
