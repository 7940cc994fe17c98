"""Benchmark: rollout particle-steps/s and training particle-samples/s of the metriplectic model.

Setting of the study's target (3D, number density 0.0364, cutoff 4.75 -> ~8 pairs per
particle, two hidden layers of width 100 in every network). Positions are uniform random,
velocities Gaussian: the cost depends only on N and the pair count.

    OMP_NUM_THREADS=2 python bench/bench_model.py --threads 2 --n 1000 10000

Results are recorded by hand in bench/model.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from ddpd.model.integrate import euler_step, exact_energy_step, init_state
from ddpd.model.metriplectic import MetriplecticModel, Snapshot
from ddpd.space import Box, neighbour_pairs

DENSITY = 0.0364
CUTOFF = 4.75


def make(n: int, device: str, dtype: torch.dtype, seed: int = 0, width: int = 100,
         friction_scheme: str = "midpoint"):
    side = (n / DENSITY) ** (1 / 3)
    box = Box(edges=(side,) * 3)
    gen = torch.Generator().manual_seed(seed)
    q = (torch.rand(n, 3, generator=gen, dtype=torch.float64) * side).to(device, dtype)
    v = torch.randn(n, 3, generator=gen, dtype=torch.float64).to(device, dtype)
    torch.manual_seed(seed)
    model = MetriplecticModel(dim=3, cutoff=CUTOFF, width=width, depth=2, teacher_features=8,
                              mass=1.0, learn_mass=False, speed_scale=1.0, dt=0.05,
                              friction=(0.5, 0.5, 0.1), d_ref=5.0, delta_v_scale=0.3,
                              friction_scheme=friction_scheme)
    return model.to(device, dtype), box, q, v


def timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--friction-scheme", default="midpoint", choices=["midpoint", "explicit"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"device {args.device} threads {torch.get_num_threads()} dtype {args.dtype} "
          f"width {args.width} friction {args.friction_scheme}")
    for n in args.n:
        bench_one(n, args.device, dtype, args.repeats, args.width, args.friction_scheme)


def bench_one(n: int, device: str, dtype: torch.dtype, repeats: int, width: int,
              friction_scheme: str) -> None:
    model, box, q, v = make(n, device, dtype, width=width, friction_scheme=friction_scheme)
    state = init_state(model, q, v, box)
    pairs = state.pairs
    print(f"N = {n}: {2 * len(pairs.i) / n:.2f} neighbours per particle")
    gen = torch.Generator(device=device).manual_seed(1)
    for name, step in (("euler", euler_step), ("exact_energy", exact_energy_step)):
        holder = {"s": state}

        def run(step=step, holder=holder):
            holder["s"] = step(model, holder["s"], box, 0.005, gen)

        sec = timed(run, repeats, device)
        print(f"  rollout {name:12s}: {sec * 1e3:8.1f} ms/step {n / sec:10.0f} particle-steps/s")
    sec = timed(lambda: neighbour_pairs(q, box, CUTOFF), repeats, device)
    print(f"  neighbour search    : {sec * 1e3:8.1f} ms")
    snap = Snapshot(v, pairs, v + 0.01 * torch.randn_like(v), pairs,
                    torch.arange(n, device=device), torch.arange(n, device=device))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train_step():
        loss = model.nll(snap, 0.05) / n
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = timed(train_step, repeats, device)
    print(f"  train step          : {sec * 1e3:8.1f} ms/frame {n / sec:9.0f} particle-samples/s")

if __name__ == "__main__":
    main()
