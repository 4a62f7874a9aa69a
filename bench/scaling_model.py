#!/usr/bin/env python3
"""A step-time model of distgan's data-parallel training: ring all-reduce (alpha-beta) with overlap.

Inputs: per-layer FLOPs and parameter shapes of the PyTorch definitions in bench/peer (the same
models as distgan's; for the resnet the peer is the definition, its widths set per size from
docs/models.md), distgan's bucketing (reverse registration order, a bucket closes once it holds
>= bucket_mb, the loss rides in the last one, buckets go out in order as backward fills them), and
the link's latency alpha and bandwidth B. One all-reduce of S bytes over N ranks (ring):
    T(N, S) = 2 (N-1) alpha + 2 (N-1)/N * S / B
One update = forward + backward + max(0, last bucket done - backward done) + optimizer; one step =
the D update + the G update, except that with overlap G's wait is what is left of it after the next
step's D pass on the reals (distgan finishes G's update there). Efficiency(N) = T_step(1) / T_step(N) (weak scaling, batch per GPU fixed).

1. Check: calibrated on bench/scaling.sh's unshaped veth run (DCGAN-28, 2 ranks), predicts the same
   run on each shaped link (img/s, comm share) beside the measured medians.
2. Predicts efficiency at 8, 64, 512 and 1,024 GPUs on 100, 200 and 400 Gbit/s networks.

    /usr/bin/python3 bench/scaling_model.py [--measured build/bench/scaling.json] [--json OUT]
"""
import argparse, importlib.util, json, os, statistics, sys, types

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESNET_WIDTHS = {32: ((4, [4, 4, 4]), [2, 2, 2, 2]), 64: ((16, [16, 8, 4, 2]), [1, 2, 4, 8, 16]),
                 128: ((16, [16, 8, 4, 2, 1]), [1, 2, 4, 8, 16, 16]),
                 256: ((16, [16, 8, 8, 4, 2, 1]), [1, 2, 4, 8, 8, 16, 16])}  # docs/models.md
NS, GBITS, CHECK_BATCH = (8, 64, 512, 1024), (100, 200, 400), 64
STYLEGAN2_ADA = ("StyleGAN2-ADA (Karras et al. 2020, README, V100, 1 -> 8 GPUs in one DGX-1: NVLink, no network): "
                 "speed-up ~3x at 128 px, 4.6x at 256 px, 7.7x at 512 and 1024 px = 38%, 58%, 96% efficiency at 8. "
                 "Its --cfg=auto batch is max(min(gpus * min(4096 // res, 32), 64), gpus): per GPU 32 -> 8 at 128 px "
                 "and 16 -> 8 at 256 px (smaller kernels, not only communication), unchanged at 512 and 1024 px "
                 "(weak scaling, as here)")


def load_peer(name):
    sys.dont_write_bytecode = True  # leave no __pycache__ in bench/peer
    if importlib.util.find_spec("h5py") is None:  # the peers import it for their data; the models need none
        sys.modules["h5py"] = types.ModuleType("h5py")
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "bench", "peer", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def profiled_models(resnet_ch):
    """name -> (G, D) profiles: DCGAN-28 (ch 64, z 100) and distgan's resnet (3 channels), built one
    at a time so that only one model's float32 weights are ever held."""
    dc, rn = load_peer("dcgan_ddp"), load_peer("resnet_ddp")
    out = {"dcgan28": (profile(dc.generator(100, 64), (100,)), profile(dc.discriminator(64), (1, 28, 28)))}
    for px, (g_w, d_w) in RESNET_WIDTHS.items():
        rn.G_WIDTHS, rn.D_WIDTHS = g_w, d_w  # the peer reads its widths from these globals
        out[f"resnet{px}"] = (profile(rn.Generator(128, resnet_ch, 3), (128,)),
                              profile(rn.Discriminator(resnet_ch, 3), (3, px, px)))
    return out


def layer_flops(m, x, y):
    if isinstance(m, nn.Conv2d):
        return 2 * y.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    if isinstance(m, nn.ConvTranspose2d):  # every input pixel scatters a kernel into every output channel
        return 2 * x.numel() * m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
    if isinstance(m, nn.Linear):
        return 2 * y.numel() * m.in_features
    return 0  # batch norm etc.: memory-bound, small next to the convolutions


def profile(net, in_shape, defer_transposed=False):
    """Forward FLOPs per sample, and each parameter (registration order) as (numel, share of the
    net's backward done when its gradient is ready): backward runs the layers in reverse execution
    order, each layer's input gradient and weight gradient costing its forward once each; a Conv2d's
    weight gradient comes first (trainer/model/weight_first_conv.h), other layers' after their input's.
    defer_transposed: as distgan's oneDNN transposed convolutions on the CPU, the weight gradients
    of ConvTranspose2d layers (those on more than 1x1 inputs: distgan computes a 1x1 one as a matrix
    product) run after every other layer, and their parameters come first (into the last buckets)."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(
                 (m, layer_flops(m, i[0], o), defer_transposed and isinstance(m, nn.ConvTranspose2d)
                  and i[0].shape[-1] > 1)))
             for m in net.modules() if any(True for _ in m.parameters(recurse=False))]
    net = net.to("meta")  # shapes only: no memory, no arithmetic
    with torch.no_grad():
        net(torch.empty(1, *in_shape, device="meta"))
    for h in hooks:
        h.remove()
    total = sum(f for _, f, _ in order)
    done, ready = 0.0, {}
    for m, f, late in reversed(order):  # the first layer run is the last one backward reaches
        if isinstance(m, nn.Conv2d):  # distgan's convolutions: the weight gradient first, then the input's
            ready[m] = (done + f) / (2 * total)
            done += 2 * f
            continue
        done += f if late else 2 * f
        ready[m] = done / (2 * total)
    for m, f, late in reversed(order):
        if late:
            done += f
            ready[m] = done / (2 * total)
    late_modules = {m for m, _, late in order if late}
    params = [(p.numel(), ready[m]) for m in net.modules() if m in late_modules for p in m.parameters(recurse=False)]
    params += [(p.numel(), ready[m]) for m in net.modules() if m not in late_modules
               for p in m.parameters(recurse=False)]
    return {"fwd": total, "params": params, "count": sum(n for n, _ in params)}


def buckets(net, cap_bytes):
    """distgan's assign_buckets: (numel, ready share) per bucket, in the order they go out."""
    out, filled = [], 0
    for numel, ready in reversed(net["params"]):
        if not out or filled >= cap_bytes:
            out.append([0, 0.0])
            filled = 0
        out[-1][0] += numel
        out[-1][1] = max(out[-1][1], ready)
        filled += 4 * numel  # sized as float32 even when bf16 goes on the wire
    out[-1][0] += 1  # the loss
    return out


def ring(n, nbytes, alpha, bw):
    return 0.0 if n == 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bw


def hierarchical(n, nbytes, a, bw, per_node=8):
    """Reduce-scatter in the node (NVLink ring), ring all-reduce of 1/per_node between nodes, all-gather."""
    if n <= per_node:
        return ring(n, nbytes, a.nvlink_alpha_us * 1e-6, a.nvlink_gbs * 1e9)
    intra = (per_node - 1) * (a.nvlink_alpha_us * 1e-6 + nbytes / per_node / (a.nvlink_gbs * 1e9))
    return 2 * intra + ring(n // per_node, nbytes / per_node, a.alpha_us * 1e-6, bw)


def update(fwd, pre, bwd, bks, allreduce, wire_bytes, overlap):
    """One update's time and its wait. pre: backward with nothing to send (D's input gradients in the G
    step) before the `bwd` that produces this model's gradients; the link sends one bucket at a time."""
    end, link = pre + bwd, 0.0
    for numel, ready in bks:
        start = max(pre + ready * bwd if overlap else end, link)
        link = start + allreduce(numel * wire_bytes)
    wait = max(0.0, link - end)
    return fwd + end + wait, wait


def step(g, d, bg, bd, sec_per_flop, batch, allreduce, wire_bytes, overlap=True, opt_s=0.0):
    """D update: G forward once (the fake is reused), D forward+backward on real and fake; G update: D
    forward on the fake, D backward for its input only (weights frozen, ~1x forward), G backward (~2x).
    With overlap, G's traffic left after its backward travels on during the next step's D pass on the
    reals (forward + backward, 3x D's forward), which needs no G; D's own update then backpropagates
    only the fakes' term with its buckets."""
    fg, fd = g["fwd"] * batch * sec_per_flop, d["fwd"] * batch * sec_per_flop
    if not overlap:
        t_d, w_d = update(fg + 2 * fd, 0.0, 4 * fd, bd, allreduce, wire_bytes, overlap)
        t_g, w_g = update(fd, fd, 2 * fg, bg, allreduce, wire_bytes, overlap)
        return t_d + t_g + opt_s, w_d + w_g
    t_g, w_g = update(fd, fd, 2 * fg, bg, allreduce, wire_bytes, overlap)
    wait_g = max(0.0, w_g - 3 * fd)  # what the reals' pass did not hide
    t_d, w_d = update(fg + fd, 0.0, 2 * fd, bd, allreduce, wire_bytes, overlap)
    return 3 * fd + wait_g + t_d + (t_g - w_g) + opt_s, wait_g + w_d


def step_flops(g, d, batch):
    return (3 * g["fwd"] + 8 * d["fwd"]) * batch


def read_measured(paths):
    """(link, variant) -> median (img/s, comm share) of distgan's runs in all the files."""
    med = {}
    for path in paths:
        try:
            with open(path) as f:
                runs = json.load(f)
            if not isinstance(runs, list):
                raise TypeError("not a list")
            for r in runs:
                if r["tool"] == "distgan":
                    med.setdefault((r["link"], r["variant"]), []).append(
                        (float(r["images_per_s"]), float(r["share"]["comm"])))
        except OSError as e:
            sys.exit(f"scaling_model.py: {path}: {e.strerror}")
        except json.JSONDecodeError as e:
            sys.exit(f"scaling_model.py: {path}: not JSON ({e})")
        except (TypeError, KeyError, ValueError) as e:
            sys.exit(f"scaling_model.py: {path}: expected bench/scaling.sh's list of runs, each with tool, link, "
                     f"variant, images_per_s and share.comm ({type(e).__name__}: {e})")
    # The medians of the repeats, as bench/scaling.sh reports them.
    return {k: (statistics.median(i for i, _ in v), statistics.median(c for _, c in v)) for k, v in med.items()}


def check(a, g, d):
    """Measured vs predicted 2-rank DCGAN-28 runs on each shaped link, calibrated on the unshaped veth run."""
    if a.measured is None:
        a.measured = [os.path.join(ROOT, "build/bench/scaling.json")]
        if not os.path.exists(a.measured[0]):
            print(f"(no {a.measured[0]}: run bench/scaling.sh first; the check is skipped)\n")
            return []
    med, files = read_measured(a.measured), ", ".join(a.measured)
    # veth: the same hosts and path as the shaped runs, unshaped; loopback (shared memory) only without it.
    base = next((b for b in ("veth", "loopback") if any(l == b for l, _ in med)), None)
    if base is None:
        print(f"({files}: no veth or loopback run to calibrate on; the check is skipped)\n")
        return []
    print(f"## Check: 2 ranks, DCGAN-28, batch {CHECK_BATCH} per rank ({files}; calibrated on {base})\n")
    print("| link | variant | img/s measured | img/s predicted | comm measured | comm predicted |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    rank = {k: i for i, k in enumerate(("loopback", "veth", "10gbit", "1gbit", "overlap", "no-overlap", "bf16-grads",
                                                 "amp", "amp-bf16-grads"))}
    for (link, variant), (ips, comm) in sorted(med.items(), key=lambda kv: [rank.get(k, 9) for k in kv[0]]):
        cal = med.get((base, variant)) or med.get((base, "overlap"))
        gbps = a.link_gbps.get(link)
        if cal is None or gbps is None:
            continue  # loopback is shared memory, not a link
        # Everything but the wait scales with FLOPs (data, optimizer and packing lumped in).
        busy = 2 * CHECK_BATCH / cal[0] * (1 - cal[1])
        spf = busy / step_flops(g, d, CHECK_BATCH)
        wire = 2 if variant.endswith("bf16-grads") else 4
        ar = lambda s: ring(2, s, a.link_alpha_us * 1e-6, gbps * 1e9 / 8)
        t, wait = step(g, d, buckets(g, a.bucket_bytes), buckets(d, a.bucket_bytes), spf, CHECK_BATCH, ar, wire,
                       overlap=variant != "no-overlap")
        p_ips, p_comm = 2 * CHECK_BATCH / t, wait / t
        cal_note = " (calibration)" if link == base else ""
        print(f"| {link} ({gbps:g} Gbit/s){cal_note} | {variant} | {ips:.0f} | {p_ips:.0f} | {100 * comm:.1f}% | "
              f"{100 * p_comm:.1f}% |")
        rows.append({"link": link, "variant": variant, "gbps": gbps, "images_per_s": ips, "comm": comm,
                     "predicted_images_per_s": p_ips, "predicted_comm": p_comm})
    print()
    return rows


def efficiency(a, g, d, name, gbps, tflops, topo):
    """Efficiency at each N of NS for one model, network rate and compute throughput."""
    bw = gbps * 1e9 / 8
    flops = step_flops(g, d, a.batch)
    if name in a.step_ms:  # a measured or assumed compute time replaces the FLOP estimate
        spf, opt = a.step_ms[name] * 1e-3 / flops, 0.0
    else:  # Adam: read param, grad, m, v; write param, m, v (float32)
        spf, opt = 1 / (tflops * 1e12), 28 * (g["count"] + d["count"]) / (a.hbm_tbs * 1e12)
    bg, bd, wire = buckets(g, a.bucket_bytes), buckets(d, a.bucket_bytes), 2 if a.grad_dtype == "bfloat16" else 4
    out = {}
    for n in (1,) + NS:
        ar = (lambda s, n=n: ring(n, s, a.alpha_us * 1e-6, bw)) if topo == "ring" else \
             (lambda s, n=n: hierarchical(n, s, a, bw))
        out[n] = step(g, d, bg, bd, spf, a.batch, ar, wire, opt_s=opt)[0]
    return {n: out[1] / out[n] for n in NS}, out[1]


def table(a, nets, title, cases, topo):
    print(f"## {title}\n")
    print("| model | params G + D | grad MB/step | compute ms/step | network | TFLOP/s | "
          + " | ".join(f"N={n}" for n in NS) + " |")
    print("| --- | --- | --- | --- | --- | --- |" + " --- |" * len(NS))
    rows = []
    for name, gbps, tflops in cases:
        g, d = nets[name]
        eff, t1 = efficiency(a, g, d, name, gbps, tflops, topo)
        wire = (2 if a.grad_dtype == "bfloat16" else 4) * (g["count"] + d["count"]) / 1e6
        tp = "step-ms" if name in a.step_ms else f"{tflops:g}"
        print(f"| {name} | {g['count'] / 1e6:.1f} M + {d['count'] / 1e6:.1f} M | {wire:.1f} | {1e3 * t1:.2f} | "
              f"{gbps} Gbit/s | {tp} | " + " | ".join(f"{100 * eff[n]:.0f}%" for n in NS) + " |")
        rows.append({"model": name, "topology": topo, "gbps": gbps, "tflops": tflops, "step_ms_1": 1e3 * t1,
                     "efficiency": {str(n): eff[n] for n in NS}})
    print()
    return rows


def parse_pairs(items, what):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            sys.exit(f"scaling_model.py: {what} expects NAME=NUMBER, got {item!r}")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measured", action="append", metavar="PATH", help="bench/scaling.sh's output; repeat to merge "
                   "runs (default build/bench/scaling.json; the check is skipped if it is absent)")
    p.add_argument("--json", help="write the check and the predictions here")
    p.add_argument("--link-gbps", action="append", default=[], metavar="LINK=GBPS",
                   help="bandwidth of a measured link (defaults: veth=11 as measured, 10gbit=10, 1gbit=1: tbf's rates)")
    p.add_argument("--link-alpha-us", type=float, default=30, help="latency of the veth pair (default 30 us)")
    p.add_argument("--batch", type=int, default=64, help="per GPU (default 64)")
    p.add_argument("--gpu-tflops", type=float, default=50, help="achieved compute throughput (default 50)")
    p.add_argument("--sensitivity-tflops", default="50,15,5", help="throughputs of the sensitivity table")
    p.add_argument("--step-ms", action="append", default=[], metavar="MODEL=MS",
                   help="per-GPU compute time of a step (fwd+bwd+optimizer), replacing the FLOP estimate")
    p.add_argument("--alpha-us", type=float, default=5, help="per-hop latency of the network (default 5 us, IB/RoCE)")
    p.add_argument("--nvlink-gbs", type=float, default=300, help="NVLink GB/s per direction, hierarchical table")
    p.add_argument("--nvlink-alpha-us", type=float, default=2)
    p.add_argument("--hbm-tbs", type=float, default=2.0, help="GPU memory TB/s, for Adam's time (default 2)")
    p.add_argument("--bucket-mb", type=float, default=4, help="cluster.bucket_mb (default 4)")
    p.add_argument("--grad-dtype", choices=("float32", "bfloat16"), default="float32", help="for the predictions")
    p.add_argument("--resnet-ch", type=int, default=64, help="resnet width unit for the predictions (default 64)")
    a = p.parse_args()
    a.link_gbps = {"veth": 11.0, "10gbit": 10.0, "1gbit": 1.0, **parse_pairs(a.link_gbps, "--link-gbps")}
    a.step_ms = parse_pairs(a.step_ms, "--step-ms")
    a.bucket_bytes = a.bucket_mb * 2 ** 20
    try:
        sens = [float(x) for x in a.sensitivity_tflops.split(",")]
    except ValueError:
        sys.exit("scaling_model.py: --sensitivity-tflops expects numbers separated by commas")
    torch.set_num_threads(1)
    nets = profiled_models(a.resnet_ch)
    unknown = set(a.step_ms) - set(nets)
    if unknown:
        sys.exit(f"scaling_model.py: --step-ms: unknown model(s) {sorted(unknown)}; known: {sorted(nets)}")

    # The 2-rank check runs distgan on the CPU, where the oneDNN transposed convolutions defer their
    # weight gradients; the GPU predictions use LibTorch's kernels, which do not.
    check_g = profile(load_peer("dcgan_ddp").generator(100, 64), (100,), defer_transposed=True)
    result = {"check": check(a, check_g, nets["dcgan28"][1])}
    main_cases = [(n, b, a.gpu_tflops) for n in nets for b in GBITS]
    result["ring"] = table(a, nets, f"Predicted efficiency, plain ring over the network, batch {a.batch} per GPU",
                           main_cases, "ring")
    result["hierarchical"] = table(a, nets, "Predicted efficiency, hierarchical: 8 GPUs per node on NVLink, "
                                   "then a ring between nodes", main_cases, "hierarchical")
    result["sensitivity"] = table(a, nets, "Sensitivity to the achieved compute throughput (plain ring, 200 Gbit/s)",
                                  [(n, 200, t) for n in nets for t in sens], "ring")
    print("Assumptions: T(N,S) = 2(N-1)alpha + 2(N-1)/N S/B per all-reduce, one NIC of the given rate per GPU, "
          f"alpha {a.alpha_us:g} us per hop (NVLink {a.nvlink_gbs:g} GB/s, {a.nvlink_alpha_us:g} us); "
          f"{a.grad_dtype} gradients in {a.bucket_mb:g} MiB buckets, overlap on; compute from FLOPs "
          "(backward 2x forward) at the given throughput, Adam at " f"{a.hbm_tbs:g} TB/s; data loading hidden; "
          f"resnet at ch {a.resnet_ch}, 3 channels; efficiency = T_step(1) / T_step(N).")
    print(f"Reference: {STYLEGAN2_ADA}.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
