"""rollout.compile against the eager rollout on a trained model: wall time and how far apart.

Runs ``ddpd.rollout.rollout`` on test trajectory 0 of DATASET with ``compile`` false, true,
false, true (the first compiled run includes the compilation), same noise seed, and prints
the wall times, the position differences between the last eager and compiled runs, and
whether each pair of runs repeated itself bit for bit:

    OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive python bench/compiled_rollout.py \\
        MODEL_DIR DATASET --steps 150

Results are recorded by hand in bench/model.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ddpd.io import read_trajectory
from ddpd.rollout import rollout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    runs, seconds = {False: [], True: []}, {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for compiled in (False, True, False, True):
            out = Path(tmp) / f"compiled_{compiled}.h5"
            start = time.perf_counter()
            rollout(args.model_dir, args.dataset,
                    {"n_steps": args.steps, "save_every": 1, "device": "cpu",
                     "compile": compiled, "threads": args.threads, "seed": 0}, out)
            seconds[compiled].append(round(time.perf_counter() - start, 1))
            runs[compiled].append(read_trajectory(out))
    print(f"wall s: eager {seconds[False]}, compiled {seconds[True]} (first one compiles)")
    for compiled in (False, True):
        first, second = runs[compiled]
        same = np.array_equal(first.position, second.position, equal_nan=True)
        print(f"{'compiled' if compiled else 'eager'} runs repeat bit for bit: {same}")
    eager, compiled = runs[False][-1], runs[True][-1]
    both = np.isfinite(eager.position) & np.isfinite(compiled.position)
    for k in sorted({1, 10, 50, args.steps // 2, args.steps}):
        d = np.abs(eager.position[k] - compiled.position[k])[both[k]]
        print(f"step {k}: max |dq| {d.max():.3g}, median {np.median(d):.3g}")
    spread = [float(np.nanstd(r.observables["entropy"][-1])) for r in (eager, compiled)]
    print(f"entropy spread at the last step: eager {spread[0]:.3g}, compiled {spread[1]:.3g}")


if __name__ == "__main__":
    main()
