"""PyTorch CycleGAN training step of the reference architecture, for comparison with
bench/cyclegan_step.py (needs ``torch``, CPU build; not a facegan_tf dependency).

Same setting as the TensorFlow bench: ResNet generator (7 x 7 reflect-padded stem,
two stride-2 3 x 3 down-sampling convolutions, ``--num_blocks`` residual blocks of two
reflect-padded 3 x 3 convolutions, two stride-2 3 x 3 transposed convolutions, 7 x 7
reflect-padded tanh output), instance norm with affine scale and offset (epsilon 1e-5),
the 70 x 70 PatchGAN discriminator (4 x 4 convolutions, leaky ReLU 0.2), LSGAN, cycle L1
weight 10, no identity loss, Adam (lr 2e-4, beta1 0.5), batch 1. One step: G update on
both generators, then D update on both discriminators with the step's fakes.

Prints one JSON object (``first_step_s``, ``step_s``, ``step_min_s``, ``step_times_s``,
``first_step_cpu_s``, ``step_cpu_s``, ``threads``, ``torch``) as the last line.

    python bench/cyclegan_step_torch.py --image_size=128 --ngf=64 --steps=5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True, eps=1e-5)


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )

    def forward(self, x):
        return x + self.body(x)


def generator(ngf: int, num_blocks: int) -> nn.Module:
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _norm(ngf), nn.ReLU()]
    layers += [nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), _norm(2 * ngf), nn.ReLU()]
    layers += [nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), _norm(4 * ngf), nn.ReLU()]
    layers += [_Residual(4 * ngf) for _ in range(num_blocks)]
    layers += [nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, 1), _norm(2 * ngf), nn.ReLU()]
    layers += [nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, 1), _norm(ngf), nn.ReLU()]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(ndf: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), _norm(2 * ndf), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1), _norm(4 * ndf), nn.LeakyReLU(0.2),
        nn.Conv2d(4 * ndf, 8 * ndf, 4, 1, 1), _norm(8 * ndf), nn.LeakyReLU(0.2),
        nn.Conv2d(8 * ndf, 1, 4, 1, 1),
    )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--num_blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g_ab, g_ba = generator(args.ngf, args.num_blocks), generator(args.ngf, args.num_blocks)
    d_a, d_b = discriminator(args.ndf), discriminator(args.ndf)
    g_opt = torch.optim.Adam(
        list(g_ab.parameters()) + list(g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999)
    )
    d_opt = torch.optim.Adam(
        list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999)
    )
    size = args.image_size
    real_a = torch.rand(1, 3, size, size) * 2 - 1
    real_b = torch.rand(1, 3, size, size) * 2 - 1

    def mse(x, target):
        return ((x - target) ** 2).mean()

    def step():
        fake_b = g_ab(real_a)
        fake_a = g_ba(real_b)
        g_loss = (
            mse(d_b(fake_b), 1.0) + mse(d_a(fake_a), 1.0)
            + 10.0 * ((g_ba(fake_b) - real_a).abs().mean() + (g_ab(fake_a) - real_b).abs().mean())
        )
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        fake_a, fake_b = fake_a.detach(), fake_b.detach()
        d_loss = (
            (mse(d_a(real_a), 1.0) + mse(d_a(fake_a), 0.0)) / 2
            + (mse(d_b(real_b), 1.0) + mse(d_b(fake_b), 0.0)) / 2
        )
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()

    def timed():
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        return time.perf_counter() - wall, time.process_time() - cpu

    first, first_cpu = timed()
    for _ in range(args.warmup):
        step()
    runs = [timed() for _ in range(args.steps)]
    walls = [w for w, _ in runs]
    result = {
        "bench": "cyclegan_torch",
        "first_step_s": first,
        "first_step_cpu_s": first_cpu,
        "step_s": statistics.median(walls),
        "step_min_s": min(walls),
        "step_times_s": [round(w, 4) for w in walls],
        "step_cpu_s": statistics.median(c for _, c in runs),
        "threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
        "image_size": size, "ngf": args.ngf, "ndf": args.ndf, "num_blocks": args.num_blocks,
        "torch": torch.__version__,
    }
    print(f"step {result['step_s']:.3f} s (cpu {result['step_cpu_s']:.2f} s), "
          f"first step {first:.2f} s")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
