"""Time one training step (NLL + backward + Adam) of the bench_model.py setting.

The same random model and frame as ``bench/bench_model.py`` (width 100, number density
0.0364, cutoff 4.75), without the rollouts, to compare settings of the training step:

    OMP_NUM_THREADS=2 python bench/bench_train_step.py --threads 2 --n 1000 --compile

``--compile`` trains through ``ddpd.train.compiled_loss``; ``--mode`` and ``--static`` pass
torch.compile's mode and static shapes instead (then ``--compile`` is implied); ``--fused``
uses Adam's fused implementation; ``--no-retain-heap`` leaves glibc malloc as it is (as
``ddpd.train`` does, the bench calls ``ddpd.heap.retain_freed_memory`` first). Prints the
mean and median time of ``--steps`` steps after a first (warm-up, compiling) step,
``--profile`` also the torch.profiler table of one step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_model import make

from ddpd.heap import retain_freed_memory
from ddpd.model.integrate import init_state
from ddpd.model.metriplectic import Snapshot
from ddpd.train import compiled_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--mode", default=None, help="torch.compile mode, e.g. max-autotune")
    parser.add_argument("--static", action="store_true", help="torch.compile dynamic=False")
    parser.add_argument("--fused", action="store_true", help="Adam(fused=True)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--matmul-precision", default="highest",
                        choices=["highest", "high", "medium"],
                        help="torch.set_float32_matmul_precision (medium: bf16 products)")
    parser.add_argument("--kernel-table", type=int, default=0,
                        help="train.model.kernel_table: Hermite table intervals (0: off)")
    parser.add_argument("--friction-table", type=int, default=0,
                        help="train.model.friction_table: bicubic table intervals (0: off)")
    parser.add_argument("--no-retain-heap", action="store_true",
                        help="leave glibc malloc as it is (ddpd.train and ddpd.rollout call "
                             "ddpd.heap.retain_freed_memory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_retain_heap:
        retain_freed_memory()
    torch.set_float32_matmul_precision(args.matmul_precision)
    n = args.n
    model, box, q, v = make(n, "cpu", torch.float32, kernel_table=args.kernel_table,
                            friction_table=args.friction_table)
    pairs = init_state(model, q, v, box).pairs
    snap = Snapshot(v, pairs, v + 0.01 * torch.randn_like(v), pairs, torch.arange(n),
                    torch.arange(n))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=args.fused)
    loss_fn = model.nll
    if args.mode or args.static:
        loss_fn = torch.compile(model.nll, dynamic=not args.static, mode=args.mode)
    elif args.compile:
        loss_fn = compiled_loss(model)

    def step() -> None:
        loss = loss_fn(snap, 0.05) / n
        opt.zero_grad()
        loss.backward()
        opt.step()

    start = time.perf_counter()
    step()
    print(f"first step: {time.perf_counter() - start:.1f} s")
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    sec = sum(times) / len(times)
    median = statistics.median(times)
    print(f"N = {n}, {torch.get_num_threads()} threads: {sec * 1e3:.1f} ms/frame, "
          f"{n / sec:.0f} particle-samples/s (median step {median * 1e3:.1f} ms: "
          f"{n / median:.0f}; fastest {min(times) * 1e3:.1f} ms)")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
