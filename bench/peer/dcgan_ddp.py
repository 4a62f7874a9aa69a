"""The PyTorch peer of bench/train.sh: the same DCGAN-28 and the same adversarial step as distgan,
written as a competent PyTorch DistributedDataParallel script (gloo backend, launched by mpirun,
one rank per core, broadcast_buffers=False so the D step's two forwards work, D's weights frozen
during the G step). Data: the HDF5 file loaded into memory once (favours the peer: no I/O at all).
Prints one JSON line on rank 0: images/s (global, after warm-up) and the time split.
"""
import argparse, json, os, time

import h5py
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def generator(z, ch):
    return nn.Sequential(
        nn.Unflatten(1, (z, 1, 1)),
        nn.ConvTranspose2d(z, 4 * ch, 7, 1, 0, bias=False), nn.BatchNorm2d(4 * ch), nn.ReLU(True),
        nn.ConvTranspose2d(4 * ch, 2 * ch, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ch), nn.ReLU(True),
        nn.ConvTranspose2d(2 * ch, 1, 4, 2, 1), nn.Tanh())


def discriminator(ch):
    return nn.Sequential(
        nn.Conv2d(1, ch, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * ch, 1, 7, 1, 0), nn.Flatten(0))


def init(m):
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(mod.weight, 0, 0.02)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.normal_(mod.weight, 1, 0.02)
            nn.init.zeros_(mod.bias)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="datasets/fashion-mnist.h5")
    p.add_argument("--batch", type=int, default=64, help="per rank")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--port", default="29517")
    a = p.parse_args()
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", 0))
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", 1))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", a.port)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    dist.init_process_group("gloo", rank=rank, world_size=world)

    with h5py.File(a.data, "r") as f:
        images = torch.from_numpy(f["/images"][...]).float().div_(127.5).sub_(1)
    torch.manual_seed(0)
    g, d = generator(100, 64), discriminator(64)
    init(g), init(d)
    g = nn.parallel.DistributedDataParallel(g, broadcast_buffers=False)
    d = nn.parallel.DistributedDataParallel(d, broadcast_buffers=False)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1000 + rank)
    data_s = 0.0
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            dist.barrier()
            start, data_s = time.perf_counter(), 0.0
        t0 = time.perf_counter()
        idx = torch.randint(0, images.shape[0], (a.batch,), generator=gen)
        real = images[idx]
        data_s += time.perf_counter() - t0
        fake = g(torch.randn(a.batch, 100, generator=gen))
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for q in d.parameters():
            q.requires_grad_(False)
        loss_g = F.softplus(-d.module(fake)).mean()
        loss_g.backward()
        for q in d.parameters():
            q.requires_grad_(True)
        opt_g.step()
        loss_g.item()
    dist.barrier()
    wall = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"ranks": world, "batch": a.batch, "steps": a.steps, "images_per_s": world * a.batch * a.steps / wall,
                          "share_data": data_s / wall, "torch": torch.__version__}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
