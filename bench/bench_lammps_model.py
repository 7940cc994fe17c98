"""Speed of the learned coarse model inside LAMMPS, see bench/lammps_model.md.

For each target size the first test frame of ``--dataset`` is replicated to at least N
particles; S comes from the entropy teacher; ``--steps`` Euler steps run with the model in
the fix-external callback (backend 'tables': numpy on interpolated tables; 'torch': the
network) or in the compiled fix ddpd/tables (backend 'plugin', on each of ``--ranks`` MPI
ranks; its time is LAMMPS's "Loop time", setup and step 0 excluded; peak resident memory
per rank from /usr/bin/time). Prints particle-steps/s and wall seconds per unit of
simulated time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_lammps_model.py \\
        --model-dir MODEL --dataset DATASET --sizes 10000 100000 --steps 10
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_lammps_model.py \\
        --model-dir MODEL --dataset DATASET --sizes 10000 100000 1000000 --steps 20 \\
        --backends plugin --ranks 1 2
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ddpd.coarse.dataset import load_dataset
from ddpd.lammps.export import Tables, export_tables
from ddpd.lammps.external import (
    ModelFix,
    TableBackend,
    TorchBackend,
    euler_update,
    replicate_state,
)
from ddpd.lammps.plugin import (
    build_plugin,
    run_plugin,
    write_plugin_input,
    write_plugin_tables,
)
from ddpd.model.api import load_model
from ddpd.space.box import Box
from ddpd.space.neighbours import neighbour_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backends", nargs="+", default=["tables", "torch"])
    parser.add_argument("--skin", type=float, default=0.2, help="Verlet skin / cutoff")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1],
                        help="MPI ranks of the plugin runs")
    parser.add_argument("--heat", default="exact", choices=["exact", "linear"],
                        help="entropy update of the step (ddpd.lammps.external.euler_update)")
    parser.add_argument("--no-project", action="store_true",
                        help="no energy projection (ddpd.lammps.external.project_energy)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_lammps_model."))
    start = time.perf_counter()
    errors = export_tables(args.model_dir, work / "tables.npz", {"margin": 1.0},
                           dataset=args.dataset)
    print(f"export_tables: {time.perf_counter() - start:.2f} s; max relative errors:",
          {t: max(c["max_rel"] for c in cols.values()) for t, cols in errors.items()})
    model = load_model(args.model_dir).double().eval()
    data = load_dataset(args.dataset)
    frame = data.splits["test"][0]
    # first frame with every particle and velocity (backward differences: not frame 0)
    start = int(np.flatnonzero(frame.present.all(axis=1))[0])
    dt = float(data.stats["dt"])
    n0, dim = frame.position[start].shape
    print(f"base frame {start}: {n0} particles, D = {dim}, dt = {dt}, "
          f"h = {model.cutoff:.3g}, friction {model.friction_scheme}")
    print("| backend | N | steps | wall s | particle-steps/s | wall s / time unit | "
          "callback share or peak memory | list builds |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        k = math.ceil((size / n0) ** (1 / dim))
        q, v, box = replicate_state(frame.position[start], frame.velocity[start], data.box,
                                    (k,) * dim)
        with torch.no_grad():
            S = model.entropy(torch.from_numpy(v),
                              neighbour_pairs(torch.from_numpy(q), box, model.cutoff)).numpy()
        for name in args.backends:
            skin = args.skin * model.cutoff
            if name == "plugin":
                for ranks in args.ranks:
                    _plugin_row(work, q, v, S, box, dt, skin, ranks, args.steps, args.heat,
                                not args.no_project)
                continue
            backend = (TableBackend(Tables(work / "tables.npz"), skin) if name == "tables"
                       else TorchBackend(model, skin))
            fix = ModelFix(backend, box, q, v, S, dt, 0, work / f"{name}_{size}.log",
                           heat=args.heat, project=not args.no_project)
            torch.set_num_threads(1)
            try:
                fix.run(1)  # setup + first step (not timed)
                fix.callback_seconds = 0.0
                t0 = time.perf_counter()
                fix.run(args.steps)
                wall = time.perf_counter() - t0
            finally:
                fix.close()
            n = len(q)
            print(f"| {name} | {n} | {args.steps} | {wall:.2f} | {n * args.steps / wall:.3g} | "
                  f"{wall / (args.steps * dt):.3g} | {fix.callback_seconds / wall:.2f} | "
                  f"{backend.neighbours.builds} |", flush=True)
        if "tables" in args.backends:  # one update outside LAMMPS: list reused vs rebuilt
            backend = TableBackend(Tables(work / "tables.npz"), args.skin * model.cutoff)
            ids = np.arange(1, len(q) + 1)
            euler_update(backend, q, v, S, ids, box, dt, 0, 0, heat=args.heat)
            t0 = time.perf_counter()
            euler_update(backend, q, v, S, ids, box, dt, 1, 0, heat=args.heat)
            reused = time.perf_counter() - t0
            backend.neighbours.q_build = None
            t0 = time.perf_counter()
            euler_update(backend, q, v, S, ids, box, dt, 2, 0, heat=args.heat)
            rebuilt = time.perf_counter() - t0
            print(f"| tables update only (list reused / rebuilt) | {len(q)} | 1 | "
                  f"{reused:.2f} / {rebuilt:.2f} | {len(q) / reused:.3g} / "
                  f"{len(q) / rebuilt:.3g} | | | |", flush=True)
    print("load average:", np.round(np.loadtxt("/proc/loadavg", usecols=(0, 1, 2)), 2))


def _plugin_row(work: Path, q: np.ndarray, v: np.ndarray, S: np.ndarray, box: Box, dt: float,
                skin: float, ranks: int, steps: int, heat: str = "exact",
                project: bool = True) -> None:
    """One plugin run (no dump): a table row with LAMMPS's loop time and the memory."""
    tables = Tables(work / "tables.npz")
    tables_bin = work / "tables.bin"
    if not tables_bin.is_file():
        write_plugin_tables(tables, tables_bin)
    folder = work / f"plugin_{len(q)}_{ranks}"
    deck = write_plugin_input(folder, build_plugin(), tables_bin, box, q, v, S, tables.mass,
                              tables.cutoff, dt, 0, steps, 0, skin=skin, heat=heat,
                              project=project)
    timer = shutil.which("time") or "/usr/bin/time"
    info = run_plugin(deck, ranks, wrapper=[timer, "-f", "peak_rss_kb %M"])
    rss = [int(k) for k in re.findall(r"peak_rss_kb (\d+)", info["stderr"])]
    text = info["log"].read_text()
    lammps_mem = re.search(r"Per MPI rank memory allocation \(min/avg/max\) = (.*) Mbytes", text)
    builds = re.search(r"Neighbor list builds = (\d+)", text)
    cpu = re.search(r"([0-9.]+)% CPU use with", text)
    wall = info["loop_seconds"]
    n = len(q)
    # share of the loop each rank was on a core: < 100 % when other jobs took the cores
    cpu_text = f" ({cpu.group(1)} % CPU)" if cpu else ""
    print(f"| plugin, {ranks} rank{'s' if ranks > 1 else ''}{cpu_text} | {n} | {steps} | "
          f"{wall:.3g} | {n * steps / wall:.3g} | {wall / (steps * dt):.3g} | "
          f"{max(rss) / 1024 if rss else float('nan'):.0f} MiB per rank "
          f"(LAMMPS: {lammps_mem.group(1).split()[-1] if lammps_mem else '?'} MiB) | "
          f"{builds.group(1) if builds else '?'} |", flush=True)


if __name__ == "__main__":
    main()
