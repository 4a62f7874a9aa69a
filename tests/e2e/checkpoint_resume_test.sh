#!/usr/bin/env bash
# Checkpoints end to end through `distgan train`: exact resume, elastic resume (2 -> 1, 1 -> 2),
# refused and damaged checkpoints, and preemption by SIGTERM / SIGUSR1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir

prep_fashion_test fm.h5
train() {  # train NP RUN_DIR [args...]
  local np=$1 run=$2; shift 2
  mpiexec -n "$np" --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 \
    --set logging.run_dir="$run" --set checkpoint.every=20 --set logging.every=10 "$@"
}
# compare A B METRICS_A METRICS_B [SKIP]: every tensor of two checkpoints bitwise equal (but those
# whose names match the regular expression SKIP), and the last metrics line's losses.
compare() {
  $py - "$@" <<'PY'
import h5py, json, re, sys, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = [l.split()[0] for l in a.attrs["manifest"].decode().splitlines()]
assert names == [l.split()[0] for l in b.attrs["manifest"].decode().splitlines()]
skip = re.compile(sys.argv[5]) if len(sys.argv) > 5 else None
diff = [n for n in names if not (skip and skip.search(n)) and not np.array_equal(a[n][()], b[n][()])]
assert not diff, diff[:5]
assert any(n.endswith("/exp_avg_sq") for n in names) and "rng/noise" in names
ma, mb = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[3:5])
for k in ("step", "loss_d", "loss_g", "d_real", "d_fake"):
    assert ma[k] == mb[k], (k, ma[k], mb[k])
print(f"identical: {len(names)} tensors, last metrics step {ma['step']}")
PY
}

# 1. Exactness: 40 steps == 20 steps + resume for 20 (2 ranks, the same checkpoint schedule).
train 2 straight --set training.steps=40 >/dev/null 2>&1
train 2 split --set training.steps=20 >/dev/null 2>&1
expect_ok "resume auto continues from step 20" "resumed from split/checkpoints/ckpt_00000020.h5 at step 20.*noise streams continue" \
  train 2 split --set training.steps=40 --resume auto
expect_ok "a resumed run ends bitwise identical to an uninterrupted one" "identical: .* last metrics step 40" \
  compare straight/checkpoints/ckpt_00000040.h5 split/checkpoints/ckpt_00000040.h5 straight/metrics.jsonl split/metrics.jsonl
# 1b. The same with every quality feature at once: class-conditional G and D (labels drawn from the
# noise stream), spectral norm (power-iteration buffers), lazy R1 (by D-step index), WGAN-GP (its
# interpolation weights from the noise stream), 2 D steps per G step, and the EMA generator. (Not a
# linear learning-rate schedule: it depends on training.steps, which the first leg here shortens.)
quality=(--set model.conditional=true --set model.d_spectral_norm=true --set training.r1.gamma=1
         --set training.r1.every=3 --set training.loss=wgan-gp --set training.n_critic=2)
train 2 qstraight --set training.steps=40 "${quality[@]}" >/dev/null 2>&1
train 2 qsplit --set training.steps=20 "${quality[@]}" >/dev/null 2>&1
expect_ok "resume a conditional SN/R1/WGAN-GP/EMA run" "resumed from qsplit/checkpoints/ckpt_00000020.h5" \
  train 2 qsplit --set training.steps=40 "${quality[@]}" --resume auto
expect_ok "... and it ends bitwise identical too (EMA and power-iteration state included)" "identical: .* last metrics step 40" \
  compare qstraight/checkpoints/ckpt_00000040.h5 qsplit/checkpoints/ckpt_00000040.h5 qstraight/metrics.jsonl qsplit/metrics.jsonl
expect_ok "that checkpoint holds the EMA, the projection head and the power-iteration vectors" "quality layout ok" $py - <<'PY'
import h5py
names = []
h5py.File("qsplit/checkpoints/ckpt_00000040.h5", "r").visit(names.append)
for want in ("generator_ema/class_embedding.weight", "discriminator/class_projection.weight", "discriminator/0.sn_u"):
    assert want in names, (want, [n for n in names if "ema" in n or "sn_" in n][:10])
print("quality layout ok")
PY
# 1b'. cluster.overlap carries each G update into the next step (its all-reduce travels during that
# step's D pass on the reals) and finishes it before any periodic task: the same bits as off.
train 2 straight-off --set training.steps=40 --set cluster.overlap=false >/dev/null 2>&1
expect_ok "cluster.overlap off gives the same run, bit for bit" "identical: .* last metrics step 40" \
  compare straight/checkpoints/ckpt_00000040.h5 straight-off/checkpoints/ckpt_00000040.h5 straight/metrics.jsonl straight-off/metrics.jsonl
train 2 qstraight-off --set training.steps=40 "${quality[@]}" --set cluster.overlap=false >/dev/null 2>&1
expect_ok "... also with the quality features (2 D steps per G step, WGAN-GP, R1)" "identical: .* last metrics step 40" \
  compare qstraight/checkpoints/ckpt_00000040.h5 qstraight-off/checkpoints/ckpt_00000040.h5 qstraight/metrics.jsonl qstraight-off/metrics.jsonl
schedule=(--set training.steps=30 --set training.lr_schedule=linear --set training.lr_decay_start=0.2
          --set training.accumulate=2 --set training.loss=hinge --set checkpoint.every=7 --set logging.every=4)
train 2 sched-on "${schedule[@]}" >/dev/null 2>&1
train 2 sched-off "${schedule[@]}" --set cluster.overlap=false >/dev/null 2>&1
expect_ok "... and with a linear learning-rate decay (each G update at its own step's rate) and accumulation" \
  "identical: .* last metrics step 30" \
  compare sched-on/checkpoints/ckpt_00000030.h5 sched-off/checkpoints/ckpt_00000030.h5 sched-on/metrics.jsonl sched-off/metrics.jsonl
# 1c. Re-seeding dead latent codes: an MLP with a categorical latent on a 2-D Gaussian blob, where a
# few codes land outside the blob now and then, some at two checks in a row. Rank 0 marks them, every
# rank counts and re-seeds alike: the replica check every 5 steps would stop a run whose ranks
# differ. A resume repeats it all (the counts travel in the checkpoint).
$py -c "import h5py, numpy as np; h5py.File('blob.h5', 'w')['/samples'] = np.random.default_rng(0).standard_normal((20000, 2)).astype(np.float32)"
codes=(--set data.path=blob.h5 --set data.dataset=/samples --set model.name=mlp --set model.z_dim=8
       --set model.latent_categories=64 --set model.latent_noise_scale=0.3 --set training.batch_size=256
       --set training.lr_g=1e-3 --set training.lr_d=1e-3 --set training.code_reseed.every=5
       --set training.code_reseed.until=1 --set cluster.check_replicas_every=5)
expect_ok "dead latent codes are re-seeded from live ones on 2 ranks, and the replicas stay identical" \
  "step [0-9]+: [0-9]+ of 64 latent codes drew off the data; [1-9][0-9]* of them, off at the last check too, are now copies" \
  train 2 cstraight --set training.steps=100 "${codes[@]}"
train 2 csplit --set training.steps=60 "${codes[@]}" >/dev/null 2>&1
train 2 csplit --set training.steps=100 "${codes[@]}" --resume auto >cresume.log 2>&1
expect_ok "resume a run that re-seeds codes" "resumed from csplit/checkpoints/ckpt_00000060.h5" cat cresume.log
expect_ok "... which re-seeds codes after the checkpoint too" \
  "step ([6-9][0-9]|100): [0-9]+ of 64 latent codes drew off the data; [1-9][0-9]* of them" cat cresume.log
expect_ok "... and ends bitwise identical (codes, their counts, EMA codes and Adam moments included)" \
  "identical: .* last metrics step 100" \
  compare cstraight/checkpoints/ckpt_00000100.h5 csplit/checkpoints/ckpt_00000100.h5 cstraight/metrics.jsonl csplit/metrics.jsonl
expect_ok "metrics.jsonl has each step once" "^10 20 30 40$" \
  $py -c "import json; print(*[json.loads(l)['step'] for l in open('split/metrics.jsonl')])"
expect_ok "a finished run resumed has nothing left to train" "nothing left to train" \
  train 2 split --set training.steps=40 --resume auto
expect_ok "h5py reads the documented layout" "layout ok" $py - <<'PY'
import h5py
with h5py.File("split/checkpoints/ckpt_00000040.h5", "r") as f:
    a = {k: v.decode() for k, v in f.attrs.items()}
    assert a["format"] == "distgan-checkpoint-1" and a["step"] == "40" and a["world_size"] == "2"
    assert a["epoch_position"] == str(40 * 32) and a["samples_seen"] == str(40 * 32)
    assert "model:" in a["config"] and a["torch_version"] and a["distgan_version"]
    assert f["rng/noise"].shape[0] == 2 and f["rng/noise"].dtype == "uint8"
    assert f["optimizer/generator/0.weight/step"][()] == 40
    assert f["optimizer/discriminator/0.weight/exp_avg"].shape == f["discriminator/0.weight"].shape
print("layout ok")
PY
expect_ok "distgan sample reads a checkpoint" "wrote 4 items" \
  "$DISTGAN" sample -k split/checkpoints/ckpt_00000040.h5 -n 4 --out from-ckpt.h5
expect_ok "the run directory holds the checkpoints of steps 20 and 40" "^ckpt_00000020.h5 ckpt_00000040.h5$" \
  bash -c "ls split/checkpoints | tr '\n' ' ' | sed 's/ $//'"

# 2. Elastic: 2 -> 1 and 1 -> 2 ranks keep the global batch and the sampler position.
train 2 two-one --set training.steps=20 >/dev/null 2>&1
expect_ok "2 -> 1 ranks resumes and says the world size changed" \
  "world size changed: the checkpoint was written by 2 rank\(s\), this run has 1; the global batch stays 32 \(32 per rank\)" \
  train 1 two-one --set training.steps=40 --resume auto
train 1 one-two --set training.steps=20 >/dev/null 2>&1
expect_ok "1 -> 2 ranks resumes" "this run has 2; the global batch stays 32 \(16 per rank\)" \
  train 2 one-two --set training.steps=40 --resume auto
expect_ok "the elastic runs continue the sampler position" "positions ok" $py - <<'PY'
import h5py
for run in ("two-one", "one-two"):
    with h5py.File(f"{run}/checkpoints/ckpt_00000040.h5", "r") as f:
        assert f.attrs["samples_seen"].decode() == str(40 * 32), run
        assert f.attrs["epoch_position"].decode() == str(40 * 32), run
print("positions ok")
PY
expect_fail 2 "a global batch that does not divide the new world size is refused" \
  "global batch 32 does not divide evenly across 3 ranks" train 3 one-two --set training.steps=60 --resume auto

# 3. Refusals and damage.
expect_fail 2 "a checkpoint of another model is refused, naming the key" "model.ch: checkpoint 8, this run 16" \
  train 2 split --set training.steps=60 --set model.ch=16 --resume auto
expect_fail 2 "a new run over existing checkpoints is refused" "already holds checkpoints (newest: step 40)" \
  train 2 split --set training.steps=60
expect_ok "--resume FILE without --config uses the checkpoint's config" "resumed from .*ckpt_00000040.h5 at step 40" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train --resume split/checkpoints/ckpt_00000040.h5 \
  --set training.steps=50 --set logging.run_dir=from-file
cp -r split damaged
$py - <<'PY'
import h5py
with h5py.File("damaged/checkpoints/ckpt_00000040.h5", "r+") as f:  # one weight changed behind the checksum's back
    w = f["generator/0.weight"]; v = w[()]; v.flat[0] += 1; w[...] = v
PY
train 2 damaged --set training.steps=40 --resume auto >damaged.log 2>&1
expect_ok "auto skips a damaged newest checkpoint (naming the tensor) and falls back to the previous one" \
  "resumed from damaged/checkpoints/ckpt_00000020.h5" \
  bash -c "grep -E 'skipping checkpoint damaged/checkpoints/ckpt_00000040.h5: .*generator/0.weight: crc32 mismatch' damaged.log && grep 'resumed from' damaged.log && grep -q 'done in' damaged.log"
expect_ok "the damaged file was set aside, not deleted" "ckpt_00000040.h5.abandoned" ls damaged/checkpoints
cp split/checkpoints/ckpt_00000040.h5 truncated.h5
truncate -s 100000 truncated.h5
expect_fail 1 "a truncated checkpoint named explicitly is an error on every rank" "truncated.h5: cannot open: unable to open file (truncated file: eof = 100000" \
  train 2 trunc-run --set training.steps=60 --resume truncated.h5

# 4. Preemption: SIGTERM to one rank of 2 (as Slurm sends at a time limit), then a second signal.
train 2 pre --set training.steps=5000 --set checkpoint.every=1000 >pre.log 2>&1 &
job=$!
for _ in $(seq 100); do grep -q '"step":' pre/metrics.jsonl 2>/dev/null && break; sleep 0.2; done
ranks=($(pgrep -f "^$DISTGAN train .*logging.run_dir=pre"))
kill -TERM "${ranks[1]}"
sleep 0.05
kill -TERM "${ranks[0]}" 2>/dev/null; kill -USR1 "${ranks[1]}" 2>/dev/null
wait $job
rc=$?
expect_ok "SIGTERM to one rank: every rank exits 75 after rank 0's checkpoint" "preempted \(SIGTERM\) at step [0-9]+" \
  bash -c "[ $rc -eq 75 ] && cat pre.log"
step=$(sed -n 's/.*preempted (SIGTERM) at step \([0-9]*\).*/\1/p' pre.log)
expect_ok "the preemption checkpoint is complete and loads" "step $step ok" $py - "$step" <<PY
import h5py, sys
with h5py.File("pre/checkpoints/ckpt_%08d.h5" % int(sys.argv[1]), "r") as f:
    assert f.attrs["step"].decode() == sys.argv[1]
print("step", sys.argv[1], "ok")
PY
expect_ok "the requeued run resumes from it and finishes" "resumed from pre/checkpoints/ckpt_0*$step.h5" \
  train 2 pre --set training.steps=$((step + 20)) --set checkpoint.every=1000 --resume auto
expect_ok "and ends at the full step count" "\"step\":$((step + 20))" tail -n 1 pre/metrics.jsonl
# Every checkpoint averages the BatchNorm running statistics across ranks, and a run never
# preempted has none at that step: those statistics differ, everything else must not.
train 2 pre-straight --set training.steps=$((step + 20)) --set checkpoint.every=1000 >/dev/null 2>&1
expect_ok "... bitwise identical to a run never preempted (the G update in flight was finished first)" \
  "identical: .* last metrics step $((step + 20))" \
  compare pre-straight/checkpoints/ckpt_$(printf %08d $((step + 20))).h5 pre/checkpoints/ckpt_$(printf %08d $((step + 20))).h5 \
  pre-straight/metrics.jsonl pre/metrics.jsonl 'running_(mean|var)$'

# SIGUSR1 to mpirun (Slurm's --signal=B:USR1 after forwarding): mpirun passes it to the ranks.
mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir=usr1 \
  --set training.steps=5000 >usr1.log 2>&1 &
job=$!
for _ in $(seq 300); do grep -q '"step":' usr1/metrics.jsonl 2>/dev/null && break; sleep 0.2; done
kill -USR1 $job
wait $job
rc=$?
expect_ok "SIGUSR1 to mpirun checkpoints and exits 75" "preempted \(SIGUSR1\)" \
  bash -c "[ $rc -eq 75 ] && cat usr1.log || { echo \"exit $rc; usr1.log:\"; tail -n 30 usr1.log; }"
finish
