"""Benchmark: rollout particle-steps/s and training particle-samples/s of the metriplectic model.

Setting of the study's target (3D, number density 0.0364, cutoff 4.75 -> ~8 pairs per
particle, two hidden layers of width 100 in every network). Positions are uniform random,
velocities Gaussian: the cost depends only on N and the pair count.

    OMP_NUM_THREADS=2 python bench/bench_model.py --threads 2 --n 1000 10000

``--skin F`` runs the rollouts with the Verlet list of ``rollout.skin: F`` (skin F * cutoff),
timed over ``--rollout-steps`` steps after one warm-up step, list builds included.

glibc malloc keeps freed memory as in ``ddpd.train`` and ``ddpd.rollout``
(``ddpd.heap.retain_freed_memory``); ``--no-retain-heap`` leaves it as it is.

``--compile-rollout`` runs the rollouts with ``rollout.compile: true``
(``MetriplecticModel.compile_evaluation``); the warm-up step, which compiles, is timed
separately.

``--compile`` trains through ``ddpd.train.compiled_loss`` (torch.compile of the NLL, as
``train.compile: true``); the first call's compilation is timed separately.

``--plugin-ranks R [R ...]`` also runs the same random model (as ``make`` builds it, before
the training steps change it) in the compiled LAMMPS fix ``ddpd/tables`` on R MPI ranks:
the model is saved to a temporary model folder, its tables are exported over the initial
state's teacher entropies S and specific volumes 1/d (widened: see ``PLUGIN_ENTROPY_MARGIN``),
and ``--plugin-steps`` steps of dt 0.005 (no dump) run from that state (S from the teacher).
Reported: LAMMPS's "Loop time" (setup and step 0 excluded) as ms/step and particle-steps/s,
the tables' maximum relative interpolation errors and the clamped (out-of-range) look-ups.

    OMP_NUM_THREADS=1 python bench/bench_model.py --threads 1 --n 1000 10000 \\
        --plugin-ranks 1 2 --plugin-steps 50

Results are recorded by hand in bench/model.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ddpd.heap import retain_freed_memory
from ddpd.lammps.export import ExportParams, Tables, export_tables
from ddpd.lammps.plugin import (
    build_plugin,
    last_thermo_value,
    run_plugin,
    write_plugin_input,
    write_plugin_tables,
)
from ddpd.model import bracket
from ddpd.model.integrate import euler_step, exact_energy_step, init_state
from ddpd.model.metriplectic import MetriplecticModel, Snapshot
from ddpd.space import Box, VerletList, neighbour_pairs
from ddpd.train import compiled_loss

DENSITY = 0.0364
CUTOFF = 4.75
ROLLOUT_DT = 0.005  # the rollout step of every measurement
# The tables span the initial state's S and 1/d, each range widened on both sides by the
# fraction ExportParams.margin of itself, S by at least PLUGIN_ENTROPY_MARGIN k_B: S
# spreads fast in the random model (measured std ~0.06 k_B after 1 step, ~0.44 k_B after 50,
# extremes about +-2.4 k_B at N = 1000), far beyond its initial range (~0.005 k_B).
PLUGIN_ENTROPY_MARGIN = 5.0
PLUGIN_SKIN = 0.2  # Verlet skin / cutoff of the plugin runs (as bench_lammps_model.py)


def make(n: int, device: str, dtype: torch.dtype, seed: int = 0, width: int = 100,
         friction_scheme: str = "midpoint", kernel_table: int = 0, friction_table: int = 0):
    side = (n / DENSITY) ** (1 / 3)
    box = Box(edges=(side,) * 3)
    gen = torch.Generator().manual_seed(seed)
    q = (torch.rand(n, 3, generator=gen, dtype=torch.float64) * side).to(device, dtype)
    v = torch.randn(n, 3, generator=gen, dtype=torch.float64).to(device, dtype)
    torch.manual_seed(seed)
    model = MetriplecticModel(dim=3, cutoff=CUTOFF, width=width, depth=2, teacher_features=8,
                              mass=1.0, learn_mass=False, speed_scale=1.0, dt=0.05,
                              friction=(0.5, 0.5, 0.1), d_ref=5.0, delta_v_scale=0.3,
                              friction_scheme=friction_scheme, kernel_table=kernel_table,
                              friction_table=friction_table)
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
    parser.add_argument("--plugin-ranks", type=int, nargs="+", default=[],
                        help="MPI ranks of LAMMPS plugin rollouts (default: none)")
    parser.add_argument("--plugin-steps", type=int, default=50)
    parser.add_argument("--compile", action="store_true",
                        help="train through ddpd.train.compiled_loss (torch.compile of the NLL)")
    parser.add_argument("--kernel-table", type=int, default=0,
                        help="train.model.kernel_table: Hermite table intervals (0: off)")
    parser.add_argument("--friction-table", type=int, default=0,
                        help="train.model.friction_table: bicubic table intervals (0: off)")
    parser.add_argument("--skin", type=float, default=0.0,
                        help="rollout.skin: Verlet list skin / cutoff (0: a cell list every "
                             "step); the rollouts are then timed over --rollout-steps steps")
    parser.add_argument("--rollout-steps", type=int, default=None,
                        help="steps per timed rollout (default: --repeats)")
    parser.add_argument("--compile-rollout", action="store_true",
                        help="rollouts with rollout.compile: true (torch.compile of evaluate)")
    parser.add_argument("--no-retain-heap", action="store_true",
                        help="leave glibc malloc as it is (ddpd.train and ddpd.rollout call "
                             "ddpd.heap.retain_freed_memory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.no_retain_heap:
        retain_freed_memory()
    dtype = getattr(torch, args.dtype)
    print(f"device {args.device} threads {torch.get_num_threads()} dtype {args.dtype} "
          f"width {args.width} friction {args.friction_scheme} "
          f"kernel table {args.kernel_table} friction table {args.friction_table} "
          f"skin {args.skin}")
    for n in args.n:
        bench_one(n, args.device, dtype, args.repeats, args.width, args.friction_scheme,
                  args.compile, args.kernel_table, args.friction_table, args.skin,
                  args.rollout_steps or args.repeats, args.compile_rollout)
        if args.plugin_ranks:
            bench_plugin(n, dtype, args.width, args.friction_scheme, args.plugin_ranks,
                         args.plugin_steps)


def bench_one(n: int, device: str, dtype: torch.dtype, repeats: int, width: int,
              friction_scheme: str, compile_loss: bool = False, kernel_table: int = 0,
              friction_table: int = 0, skin: float = 0.0, rollout_steps: int = 5,
              compile_rollout: bool = False) -> None:
    model, box, q, v = make(n, device, dtype, width=width, friction_scheme=friction_scheme,
                            kernel_table=kernel_table, friction_table=friction_table)
    state = init_state(model, q, v, box)
    pairs = state.pairs
    print(f"N = {n}: {2 * len(pairs.i) / n:.2f} neighbours per particle")
    gen = torch.Generator(device=device).manual_seed(1)
    stepped = model
    if compile_rollout:  # a twin: the training step below times what ddpd.train runs
        stepped = MetriplecticModel.from_hparams(model.hparams).to(device, dtype)
        stepped.load_state_dict(model.state_dict())
        stepped.compile_evaluation()
    for name, step in (("euler", euler_step), ("exact_energy", exact_energy_step)):
        listed = VerletList(box, CUTOFF, skin * CUTOFF) if skin > 0 else None
        holder = {"s": state._replace(neighbours=listed)}

        def run(step=step, holder=holder):
            holder["s"] = step(stepped, holder["s"], box, ROLLOUT_DT, gen)

        if compile_rollout:
            start = time.perf_counter()
            run()
            print(f"  compile {name} (first step): {time.perf_counter() - start:8.1f} s")
        sec = timed(run, rollout_steps, device)
        builds = f" ({listed.builds} list builds)" if listed is not None else ""
        print(f"  rollout {name:12s}: {sec * 1e3:8.1f} ms/step {n / sec:10.0f} "
              f"particle-steps/s{builds}")
    sec = timed(lambda: neighbour_pairs(q, box, CUTOFF), repeats, device)
    print(f"  neighbour search    : {sec * 1e3:8.1f} ms")
    snap = Snapshot(v, pairs, v + 0.01 * torch.randn_like(v), pairs,
                    torch.arange(n, device=device), torch.arange(n, device=device))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = model.nll
    if compile_loss:
        loss_fn = compiled_loss(model)
        start = time.perf_counter()
        loss_fn(snap, 0.05).backward()
        print(f"  compile (first call): {time.perf_counter() - start:8.1f} s")

    def train_step():
        loss = loss_fn(snap, 0.05) / n
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = timed(train_step, repeats, device)
    print(f"  train step          : {sec * 1e3:8.1f} ms/frame {n / sec:9.0f} particle-samples/s")


def bench_plugin(n: int, dtype: torch.dtype, width: int, friction_scheme: str,
                 ranks: list[int], steps: int) -> None:
    """Rollouts of the benchmark model (fresh from ``make``) in the LAMMPS fix ddpd/tables."""
    model, box, q, v = make(n, "cpu", dtype, width=width, friction_scheme=friction_scheme)
    state = init_state(model, q, v, box)
    with torch.no_grad():  # specific volumes 1/d of the initial state
        _, s = model.pair_geometry(state.pairs)
        d = bracket.density(model.kernel(s), model.self_weight(state.v), state.pairs.i,
                            state.pairs.j, n)
    S = state.S.double().numpy()
    V = 1.0 / d.double().numpy()
    margin = ExportParams().margin
    k_B = float(model.k_B.detach())
    S_pad = max(margin * float(S.max() - S.min()), PLUGIN_ENTROPY_MARGIN * k_B)
    entropy_range = (float(S.min()) - S_pad, float(S.max()) + S_pad)
    V_pad = margin * float(V.max() - V.min())
    volume_range = (max(float(V.min()) - V_pad, 0.5 * float(V.min())), float(V.max()) + V_pad)
    with tempfile.TemporaryDirectory(prefix="bench_model_plugin.") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        model_dir.mkdir()
        torch.save(model.state_dict(), model_dir / "model.pt")
        hparams = dict(model.hparams, dtype=str(dtype).removeprefix("torch."))
        (model_dir / "hparams.json").write_text(
            json.dumps(dict(kind="metriplectic", hparams=hparams), indent=2))
        start = time.perf_counter()
        errors = export_tables(model_dir, work / "tables.npz",
                               {"entropy_range": entropy_range, "volume_range": volume_range})
        max_rel = {name: max(c["max_rel"] for c in cols.values())
                   for name, cols in errors.items()}
        error_text = ", ".join(f"{name} {value:.2g}" for name, value in max_rel.items())
        print(f"  plugin tables: S in [{entropy_range[0]:.4g}, {entropy_range[1]:.4g}], "
              f"1/d in [{volume_range[0]:.4g}, {volume_range[1]:.4g}], exported in "
              f"{time.perf_counter() - start:.1f} s; max relative interpolation errors: "
              f"{error_text}")
        tables = Tables(work / "tables.npz")
        tables_bin = write_plugin_tables(tables, work / "tables.bin")
        plugin = build_plugin()
        for r in ranks:
            deck = write_plugin_input(work / f"run_{r}", plugin, tables_bin, box,
                                      state.q.double().numpy(), state.v.double().numpy(), S,
                                      tables.mass, tables.cutoff, ROLLOUT_DT, 0, steps, 0,
                                      skin=PLUGIN_SKIN * tables.cutoff)
            info = run_plugin(deck, ranks=r)
            sec = info["loop_seconds"]
            clamped = last_thermo_value(info["log"].read_text(), 1)
            print(f"  plugin rollout ({r} rank{'s' if r > 1 else ''}): {sec / steps * 1e3:8.1f} "
                  f"ms/step {n * steps / sec:10.0f} particle-steps/s  (loop time of "
                  f"{info['steps']} steps; table errors: {error_text}; "
                  f"{clamped:.0f} look-ups out of range)", flush=True)


if __name__ == "__main__":
    main()
