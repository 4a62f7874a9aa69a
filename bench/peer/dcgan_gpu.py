"""The PyTorch peer of bench/gpu-check.sh: the same DCGAN-28 and adversarial step as distgan on one
GPU, eager or under torch.compile. Data: the HDF5 file loaded onto the GPU once (favours the peer:
no loader, no host-to-device copies). Prints one JSON line: images/s after warm-up, and the first
steps' losses.
"""
import argparse, json, os, sys, time

import h5py
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcgan_ddp import discriminator, generator, init  # noqa: E402  (the same model definitions)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    a = p.parse_args()
    dev = torch.device("cuda")
    with h5py.File(a.data, "r") as f:
        images = torch.from_numpy(f["/images"][...]).to(dev).float().div_(127.5).sub_(1)
    torch.manual_seed(0)
    g, d = generator(100, 64).to(dev), discriminator(64).to(dev)
    init(g), init(d)
    gf, df = (torch.compile(g), torch.compile(d)) if a.compile else (g, d)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    gen = torch.Generator(device=dev).manual_seed(1000)
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        idx = torch.randint(0, images.shape[0], (a.batch,), generator=gen, device=dev)
        real = images[idx]
        fake = gf(torch.randn(a.batch, 100, generator=gen, device=dev))
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.softplus(-df(real)).mean() + F.softplus(df(fake.detach())).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for q in d.parameters():
            q.requires_grad_(False)
        loss_g = F.softplus(-df(fake)).mean()
        loss_g.backward()
        for q in d.parameters():
            q.requires_grad_(True)
        opt_g.step()
        loss_g.item()  # one host sync per step, as distgan's metrics take
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    print(json.dumps({"tool": "pytorch-compile" if a.compile else "pytorch-eager", "batch": a.batch,
                      "images_per_s": a.batch * a.steps / wall, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
