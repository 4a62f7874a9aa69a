"""The PyTorch peer of `MODEL=resnet64 bench/train.sh`: distgan's resnet at 64 px (trainer/model/
resnet.h: BigGAN widths in units of ch, spectral norm in D, hinge loss, Adam(0, 0.9)) and the same
adversarial step, as a competent PyTorch DistributedDataParallel script (gloo, launched by mpirun,
one rank per core, broadcast_buffers=False, D's weights frozen during the G step). Data: the HDF5
file loaded into memory once. Prints one JSON line on rank 0: images/s (global, after warm-up).
"""
import argparse, json, os, time

import h5py
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

G_WIDTHS = (16, [16, 8, 4, 2])  # 64 px: input width, then each up block's output
D_WIDTHS = [1, 2, 4, 8, 16]


class UpBlock(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(i), nn.BatchNorm2d(o)
        self.conv1, self.conv2 = nn.Conv2d(i, o, 3, padding=1), nn.Conv2d(o, o, 3, padding=1)
        self.shortcut = nn.Conv2d(i, o, 1)

    def forward(self, x):
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    def __init__(self, i, o, down, first):
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = spectral_norm(nn.Conv2d(i, o, 3, padding=1)), spectral_norm(nn.Conv2d(o, o, 3, padding=1))
        self.shortcut = spectral_norm(nn.Conv2d(i, o, 1)) if (i != o or down) else None

    def pool(self, x):
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        return h + (self.shortcut(self.pool(x)) if self.first else self.pool(self.shortcut(x)))


class Generator(nn.Module):
    def __init__(self, z, ch, c):
        super().__init__()
        w0, blocks = G_WIDTHS
        self.w0 = w0 * ch
        self.linear = nn.Linear(z, self.w0 * 16)
        widths = [w0] + blocks
        self.blocks = nn.Sequential(*[UpBlock(widths[i] * ch, widths[i + 1] * ch) for i in range(len(blocks))])
        self.bn, self.out = nn.BatchNorm2d(blocks[-1] * ch), nn.Conv2d(blocks[-1] * ch, c, 3, padding=1)

    def forward(self, z):
        h = self.blocks(self.linear(z).view(z.shape[0], self.w0, 4, 4))
        return torch.tanh(self.out(F.relu(self.bn(h))))


class Discriminator(nn.Module):
    def __init__(self, ch, c):
        super().__init__()
        widths, blocks, i = D_WIDTHS, [], c
        for k, w in enumerate(widths):
            blocks.append(DownBlock(i, w * ch, k + 1 < len(widths), k == 0))
            i = w * ch
        self.blocks = nn.Sequential(*blocks)
        self.linear = spectral_norm(nn.Linear(i, 1))

    def forward(self, x):
        return self.linear(F.relu(self.blocks(x)).sum((2, 3))).flatten()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=16, help="per rank")
    p.add_argument("--ch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--port", default="29518")
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
    g, d = Generator(128, a.ch, images.shape[1]), Discriminator(a.ch, images.shape[1])
    g = nn.parallel.DistributedDataParallel(g, broadcast_buffers=False)
    d = nn.parallel.DistributedDataParallel(d, broadcast_buffers=False)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.9))
    gen = torch.Generator().manual_seed(1000 + rank)
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            dist.barrier()
            start = time.perf_counter()
        real = images[torch.randint(0, images.shape[0], (a.batch,), generator=gen)]
        fake = g(torch.randn(a.batch, 128, generator=gen))
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.relu(1 - d(real)).mean() + F.relu(1 + d(fake.detach())).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for q in d.parameters():
            q.requires_grad_(False)
        loss_g = -d.module(fake).mean()
        loss_g.backward()
        for q in d.parameters():
            q.requires_grad_(True)
        opt_g.step()
        loss_g.item()
    dist.barrier()
    wall = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"ranks": world, "batch": a.batch, "steps": a.steps, "images_per_s": world * a.batch * a.steps / wall,
                          "torch": torch.__version__}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
