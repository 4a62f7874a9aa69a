#!/usr/bin/env bash
# Training throughput on emulated cluster links: 2 ranks on the two test hosts of
# cluster/local-hosts.sh (network namespaces joined by a veth pair), the link's rate limited both
# ways by tc tbf, beside the same 2 ranks on this machine's loopback. For each link: distgan with
# overlap on (the default), with overlap off, with bfloat16 gradients, and the PyTorch DDP peer
# (gloo over the same link), each rank pinned to its own core (rank r to core r).
# MODEL=dcgan28 (default): DCGAN-28 on Fashion-MNIST, batch 64 per rank; MODEL=resnet64: the resnet
# at 64 px, ch 8, batch 16 per rank, on bench/train.sh's synthetic photos (as bench/train.sh).
# Median of REPEATS runs.
#
#   sudo bash bench/scaling.sh [BUILD_DIR]
#   env: REPEATS (3), STEPS (60), RATES ("10gbit 1gbit"), WARMUP (10), LINKS (all: "loopback veth $RATES"),
#        EXTRA (more --set overrides for every distgan run, e.g. EXTRA="--set cluster.bucket_mb=1"),
#        VARIANTS (which runs; default "overlap no-overlap bf16-grads ddp"; also amp: training.amp
#        bf16, amp-bf16-grads: that and bf16 gradients)
# Prints a table (img/s, share of the step waiting on communication, throughput as a share of the
# same configuration on the unshaped veth link) and writes BUILD_DIR/bench/scaling.json (resnet64:
# scaling-resnet64.json), the input of bench/scaling_model.py. Needs root, iproute2's tc with tbf, and
# python3-torch and h5py for the peer.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
repeats=${REPEATS:-3}; steps=${STEPS:-60}; warmup=${WARMUP:-10}; rates=${RATES:-10gbit 1gbit}
model=${MODEL:-dcgan28}
case $model in
  dcgan28) per_rank=64; config=configs/fashion-mnist.yaml; overrides=(); json=scaling
    data=$(realpath -m "${DATA:-datasets/fashion-mnist.h5}"); peer_script=(bench/peer/dcgan_ddp.py) ;;
  resnet64) per_rank=16; config=configs/images64.yaml; json=scaling-resnet64
    overrides=(--set model.ch=8 --set model.z_dim=128 --set training.augment=none --set training.ema.half_life_kimg=0
               --set eval.every=0)
    data=$(realpath -m "${DATA:-$build/bench/photos64.h5}"); peer_script=(bench/peer/resnet_ddp.py --ch 8)
    [ -f "$data" ] || { echo "bench/scaling.sh: $data not found: run MODEL=resnet64 bash bench/train.sh once to make it" >&2; exit 1; } ;;
  *) echo "bench/scaling.sh: MODEL must be dcgan28 or resnet64" >&2; exit 2 ;;
esac
distgan=$build/launcher/distgan
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$distgan" ] || { echo "bench/scaling.sh: $distgan not found; build first (cmake --build $build)" >&2; exit 1; }
$py -c 'import torch, h5py' 2>/dev/null || { echo "the PyTorch peer needs python3-torch: bash cluster/install-deps.sh --with-peer" >&2; exit 1; }
[ -f "$data" ] || "$distgan" prep fashion-mnist --out "$data"

tmp=$(mktemp -d /tmp/distgan-scaling.XXXXXX)
hosts=$tmp/hosts
cleanup() { bash cluster/local-hosts.sh stop "$hosts" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
out=$(bash cluster/local-hosts.sh start "$hosts" --watch $$) || { echo "bench/scaling.sh: $out" >&2; exit 1; }
lines=$tmp/lines.jsonl

# The test hosts start ranks in a clean environment (as ssh does); pass on the variables that change
# the math libraries' kernels, so the veth runs compute exactly as the loopback ones (this machine
# sets OPENBLAS_CORETYPE=Haswell, which alone changes throughput by about a quarter).
forward_env=()
for v in $(compgen -e | grep -E '^(OPENBLAS_|OMP_|GOMP_|MKL_|DNNL_|ONEDNN_|DISTGAN_)' || true); do forward_env+=(-x "$v"); done

# Each rank on its own core, as `--bind-to core` does on one machine: the test hosts are one
# machine that Open MPI takes for two, so it would bind both ranks to core 0.
pinned() { echo "exec taskset -c \$OMPI_COMM_WORLD_RANK $*"; }

# run_distgan LINK LABEL [--set ...]: one distgan run, its rate and time split appended to $lines.
run_distgan() {
  local link=$1 label=$2; shift 2
  local run=$tmp/run-$link-$label-$RANDOM
  local args=(train -c "$config" "${overrides[@]}" --set data.path="$data"
              --set training.batch_size=$((2 * per_rank)) --set training.steps=$((steps + warmup))
              --set logging.every=$warmup --set logging.sample_every=0 --set checkpoint.every=0
              --set logging.run_dir="$run" ${EXTRA:-} "$@")
  if [ "$link" = loopback ]; then
    mpirun -np 2 --bind-to core "$distgan" "${args[@]}" > "$run.log" 2>&1
  else
    "$hosts/mpirun" -np 2 --map-by node "${forward_env[@]}" bash -c "$(pinned "$distgan" "$(printf '%q ' "${args[@]}")")" > "$run.log" 2>&1
  fi || { echo "bench/scaling.sh: distgan failed on $link ($label); its output:" >&2; tail -n 20 "$run.log" >&2; exit 1; }
  $py - "$run/metrics.jsonl" "$link" "$label" <<'PY' >> "$lines"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][1:]  # the first interval (warm-up) is left out
wall = sum(1 / r["images_per_s"] for r in rows)
share = {k: sum(r["time_share"][k] for r in rows) / len(rows) for k in ("data", "compute", "comm")}
print(json.dumps({"link": sys.argv[2], "tool": "distgan", "variant": sys.argv[3], "images_per_s": len(rows) / wall,
                  "share": share}))
PY
}

run_peer() {
  local link=$1 peer=("${peer_script[@]}" --data "$data" --batch "$per_rank" --steps "$steps" --warmup "$warmup")
  local log=$tmp/peer-$link-$RANDOM.log
  if [ "$link" = loopback ]; then
    mpirun -np 2 --bind-to core $py "${peer[@]}" > "$log" 2>&1
  else
    "$hosts/mpirun" -np 2 --map-by node "${forward_env[@]}" -x MASTER_ADDR=10.213.77.1 -x GLOO_SOCKET_IFNAME=eth0 \
      bash -c "$(pinned $py "${peer[*]}")" > "$log" 2>&1
  fi || { echo "bench/scaling.sh: the PyTorch peer failed on $link; its output:" >&2; tail -n 20 "$log" >&2; exit 1; }
  tail -n 1 "$log" | $py -c 'import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps({"link": sys.argv[1], "tool": "pytorch", "variant": "ddp", "images_per_s": d["images_per_s"]}))' "$link" >> "$lines"
}

links=(${LINKS:-loopback veth $rates})
variants=(${VARIANTS:-overlap no-overlap bf16-grads ddp})
for r in $(seq "$repeats"); do
  for link in "${links[@]}"; do
    case $link in
      loopback|veth) bash cluster/local-hosts.sh shape "$hosts" off ;;
      *) bash cluster/local-hosts.sh shape "$hosts" "$link" ;;
    esac
    echo "[repeat $r/$repeats] $link" >&2
    for variant in "${variants[@]}"; do
      case $variant in
        overlap) run_distgan "$link" overlap ;;
        no-overlap) run_distgan "$link" no-overlap --set cluster.overlap=false ;;
        bf16-grads) run_distgan "$link" bf16-grads --set cluster.grad_dtype=bfloat16 ;;
        amp) run_distgan "$link" amp --set training.amp=bf16 ;;
        amp-bf16-grads) run_distgan "$link" amp-bf16-grads --set training.amp=bf16 --set cluster.grad_dtype=bfloat16 ;;
        ddp) run_peer "$link" ;;
        *) echo "bench/scaling.sh: unknown variant '$variant'" >&2; exit 2 ;;
      esac
    done
  done
done
bash cluster/local-hosts.sh shape "$hosts" off

mkdir -p "$build/bench"
$py - "$lines" "$build/bench/$json.json" "$repeats" "${links[*]}" "$model" "$per_rank" "${variants[*]}" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
links = sys.argv[4].split()
def med(link, variant, key=lambda r: r["images_per_s"]):
    v = [key(r) for r in runs if r["link"] == link and r["variant"] == variant]
    return statistics.median(v) if v else float("nan")
names = {"overlap": "distgan (overlap)", "no-overlap": "distgan (overlap off)",
         "bf16-grads": "distgan (bf16 grads)", "amp": "distgan (bf16 autocast)",
         "amp-bf16-grads": "distgan (autocast+grads)", "ddp": "PyTorch DDP"}
variants = [(v, names[v]) for v in sys.argv[7].split()]
print(f"{'link':<9} {'run':<24} {'img/s':>7} {'comm wait':>10} {'of veth':>8} {'vs DDP':>7}")
for link in links:
    for v, name in variants:
        ips = med(link, v)
        comm = med(link, v, lambda r: r["share"]["comm"]) if v != "ddp" else None
        of_veth = ips / med("veth", v)
        vs = ips / med(link, "ddp")
        print(f"{link:<9} {name:<24} {ips:>7.0f} {'' if comm is None else f'{100 * comm:.1f}%':>10} "
              f"{100 * of_veth:>7.0f}% {vs:>7.2f}")
print(f"(median of {sys.argv[3]} runs; {sys.argv[5]}, batch {sys.argv[6]} per rank, 2 ranks, rank r on core r; comm wait: "
      "share of the step waiting for gradient all-reduces after backward; of veth: throughput against the "
      "same run on the unshaped link between the hosts)")
json.dump(runs, open(sys.argv[2], "w"), indent=1)
PY
