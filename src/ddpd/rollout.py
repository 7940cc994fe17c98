"""Rollouts of a trained model from test-split initial states (shared/method.md §3-5).

``rollout(model_dir, dataset, params, out)`` starts from the first frame of test trajectory
k (k = 0 .. n_rollouts-1; S from the entropy teacher at t = 0 only) and integrates
``n_steps`` steps of the dataset's dt with the chosen integrator. Output:

* ``n_rollouts == 1``: ``out`` is one H5MD trajectory file;
* ``n_rollouts > 1``: ``out`` is a folder with ``rollout_000.h5``, ``rollout_001.h5``, ...

Each file has positions (wrapped) with image counts, velocities, the box of the data, the
model's mass, observables ``entropy`` (T, N), ``total_energy``, ``total_entropy`` (T,),
``total_momentum`` (T, D), and for sheared boxes ``lees_edwards_offset`` (T,) advancing as
shear_rate * L_y * t from the data's initial offset. Open boxes (video): particles present
and interior in the first frame are evolved; all others are prescribed from the data at every
step (absent ones are NaN), so n_steps may not exceed the test trajectory's length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ddpd.coarse.dataset import load_dataset
from ddpd.heap import retain_freed_memory
from ddpd.io.h5md import Trajectory, write_trajectory, write_trajectory_folder
from ddpd.model.api import load_model
from ddpd.params import is_number, parse_params, require
from ddpd.space.neighbours import VerletList, neighbour_pairs
from ddpd.train import require_cxx_compiler, resolve_device

log = logging.getLogger(__name__)

# A rollout has diverged when an evolved particle's speed is not finite or exceeds this many
# times the data's speed scale sigma_v (a Maxwellian reaches 1000 sigma_v with probability
# ~exp(-5e5)): a colloid model whose entropies ran away kept finite speeds of 1e6 sigma_v
# for 190 steps, which made every statistic meaningless without being flagged.
DIVERGED_SPEED = 1000.0


@dataclass(frozen=True)
class RolloutParams:
    """Section ``rollout``.

    Attributes:
        n_steps: number of steps of the dataset's dt; null = as many as the test
            trajectory has (same time window as the data, for the statistics) (null).
        integrator: "exact_energy" (default) or "euler".
        seed: seed of the noise (0).
        save_every: write every this many steps (10).
        n_rollouts: number of test trajectories to start from (1).
        device: "auto", "cpu" or "cuda" ("auto").
        threads: torch CPU threads; null = leave as set (null).
        skin: extra reach of the neighbour list as a fraction of the model's cutoff (0.2):
            the cell list runs only when a pair may have entered the cutoff
            (:class:`ddpd.space.neighbours.VerletList`); 0: a cell list every step. The
            pairs, and so the rollout, are the same bit for bit; only the speed differs.
            A periodic box too small for the longer reach runs without the list.
        compile: run the model's per-step evaluation of its learned terms through
            torch.compile (Inductor, dynamic shapes; :meth:`MetriplecticModel.compile_evaluation`)
            (false). Needs a C++ compiler on CPU; the first step compiles (47 s on 2 cores
            with a cold Inductor cache), so it pays for large N and long rollouts: Euler
            steps at N = 1e4 took 149 instead of 236 ms (bench/model.md, "Compiled
            friction-table interpolation, heap retention, compiled rollouts"). Same
            trajectories to round-off, not bit for bit, and not bit for bit from one compiled
            run to the next either (Inductor's parallel sums; eager rollouts repeat exactly).
            Models without it (the baselines) run eager (logged).
    """

    n_steps: int | None = None
    integrator: str = "exact_energy"
    seed: int = 0
    save_every: int = 10
    n_rollouts: int = 1
    device: str = "auto"
    threads: int | None = None
    skin: float = 0.2
    compile: bool = False

    def __post_init__(self) -> None:
        s = "rollout"
        for key in ("n_steps", "save_every", "n_rollouts"):
            value = getattr(self, key)
            if key == "n_steps" and value is None:
                continue
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, s, key,
                  "a positive integer", value)
        require(self.integrator in ("exact_energy", "euler"), s, "integrator",
              "'exact_energy' or 'euler'", self.integrator)
        require(isinstance(self.seed, int), s, "seed", "an integer", self.seed)
        require(self.device in ("auto", "cpu", "cuda"), s, "device", "'auto', 'cpu' or 'cuda'",
              self.device)
        if self.threads is not None:
            require(isinstance(self.threads, int) and self.threads >= 1, s, "threads",
                  "a positive integer or null", self.threads)
        require(is_number(self.skin) and self.skin >= 0, s, "skin",
                "a number >= 0 (a fraction of the cutoff; 0: no neighbour list)", self.skin)
        require(isinstance(self.compile, bool), s, "compile", "true or false", self.compile)


def _prescribe(model, state, traj, frame: int, fixed: torch.Tensor, box):
    """Overwrite the non-evolved particles with the data of ``frame`` (open boxes)."""
    dtype, dev = state.q.dtype, state.q.device
    q = state.q.clone()
    v = state.v.clone()
    S = state.S.clone()
    q[fixed] = torch.as_tensor(traj.position[frame], dtype=dtype, device=dev)[fixed]
    v[fixed] = torch.as_tensor(traj.velocity[frame], dtype=dtype, device=dev)[fixed]
    # absent = no finite position or velocity in the data (e.g. a track's first frame)
    absent = fixed & ~torch.as_tensor(traj.present[frame], device=dev)
    q[absent] = torch.nan
    v[absent] = torch.nan
    pairs = (state.neighbours.pairs(q, state.offset) if state.neighbours is not None
             else neighbour_pairs(q, box, model.cutoff, state.offset))
    with torch.no_grad():
        S_data = model.entropy(torch.nan_to_num(v), pairs)
    S[fixed] = S_data[fixed]
    S[absent] = torch.nan
    return state._replace(q=q, v=v, S=S, pairs=pairs)


def run_one(model, data, k: int, p: RolloutParams, dev: torch.device,
            split: str = "test") -> Trajectory:
    """One rollout from the first frame of trajectory ``k`` of ``split`` (the test split)."""
    box = data.box
    dt = float(data.stats["dt"])
    traj = data.splits[split][k]
    dtype = next(model.parameters()).dtype
    # Video velocities are backward differences: the first frame has none, so start
    # from the first frame in which some particle has a velocity.
    with_velocity = np.flatnonzero(np.isfinite(traj.velocity).all(axis=-1).any(axis=-1))
    if len(with_velocity) == 0:
        raise ValueError(f"{traj.source}: no frame of the trajectory has velocities")
    start = int(with_velocity[0])
    q0 = torch.as_tensor(traj.position[start], dtype=dtype, device=dev)
    v0 = torch.as_tensor(traj.velocity[start], dtype=dtype, device=dev)
    fixed = torch.zeros(len(q0), dtype=torch.bool, device=dev)
    steps_left = len(traj.time) - 1 - start
    n_steps = p.n_steps if p.n_steps is not None else steps_left
    if box.boundary == "open":
        if n_steps > steps_left:
            raise ValueError(
                f"rollout.n_steps {n_steps} exceeds the {steps_left} steps of test "
                f"trajectory {traj.source} (open boxes prescribe exterior particles from data)")
        fixed = torch.as_tensor(~(traj.present[start] & ~traj.exterior[start]), device=dev)
    else:
        if not traj.present[start].all():
            raise ValueError(f"{traj.source}: particles absent in the first frame of a "
                             "periodic box")
    v0 = torch.where(fixed[:, None], torch.nan_to_num(v0), v0)
    state = model.init_state(
        q0, v0, box, t=float(traj.time[start]), offset=float(traj.offset[start])
    )
    skin = p.skin * model.cutoff
    if skin > 0 and box.periodic and min(box.edges) < 2 * (model.cutoff + skin):
        log.info("rollout.skin %s: box edges %s are below twice cutoff + skin; a cell list "
                 "every step", p.skin, box.edges)
    elif skin > 0:
        state = state._replace(neighbours=VerletList(box, model.cutoff, skin))
    if box.boundary == "open":
        state = _prescribe(model, state, traj, start, fixed, box)
    gen = torch.Generator(device=dev).manual_seed(p.seed + k)
    frames: dict[str, list] = {key: [] for key in (
        "position", "velocity", "image", "time", "offset", "entropy", "total_energy",
        "total_entropy", "total_momentum")}

    def record(s):
        obs = model.observables(s, box)
        frames["position"].append(s.q.cpu().double().numpy())
        frames["velocity"].append(s.v.cpu().double().numpy())
        frames["image"].append(s.image.cpu().numpy())
        frames["time"].append(s.t)
        frames["offset"].append(s.offset)
        for key in ("entropy", "total_energy", "total_entropy", "total_momentum"):
            frames[key].append(obs[key].detach().cpu().double().numpy())

    record(state)
    diverged_at = None
    speed_limit = DIVERGED_SPEED * float(data.stats["speed_scale"])
    for step in tqdm(range(1, n_steps + 1), desc=f"rollout {k}"):
        state = model.step(state, box, dt, gen, p.integrator)
        if box.boundary == "open":
            state = _prescribe(model, state, traj, start + step, fixed, box)
        speed = torch.linalg.vector_norm(state.v[~fixed], dim=-1)
        if not bool((speed <= speed_limit).all()):  # also false for NaN
            diverged_at = step
            break
        if step % p.save_every == 0:
            record(state)
    if diverged_at is not None:
        # A model that blows up is a result, not a crash: from the step that diverged
        # (non-finite or runaway speeds, DIVERGED_SPEED) on, the frames are NaN
        # (absent particles for the statistics) and the step is recorded in the metadata.
        log.warning("rollout %d diverged at step %d of %d", k, diverged_at, n_steps)
        for key in frames:
            while len(frames[key]) < n_steps // p.save_every + 1:
                last = np.asarray(frames[key][-1])
                if key == "time":
                    frames[key].append(float(last) + p.save_every * dt)
                elif key == "offset":
                    rate = box.shear_rate * box.edges[1] if box.boundary == "lees-edwards" else 0
                    frames[key].append(float(last) + rate * p.save_every * dt)
                elif key == "image":
                    frames[key].append(np.zeros_like(last))
                else:
                    frames[key].append(np.full_like(last, np.nan, dtype=float))
    observables = {key: np.asarray(frames[key]) for key in
                   ("entropy", "total_energy", "total_entropy", "total_momentum")}
    if box.boundary == "lees-edwards":
        observables["lees_edwards_offset"] = np.asarray(frames["offset"])
    image_out = None if box.boundary == "open" else np.asarray(frames["image"])
    steps = np.arange(0, n_steps + 1, p.save_every)[: len(frames["time"])]
    return Trajectory(
        position=np.asarray(frames["position"]), velocity=np.asarray(frames["velocity"]),
        time=np.asarray(frames["time"]), box=box, step=steps, image=image_out,
        mass=float(model.mass), observables=observables,
        metadata=dict(source=traj.source, integrator=p.integrator, seed=p.seed + k,
                      n_steps=n_steps, start_frame=start, dt=dt, kind="rollout",
                      diverged_at_step=diverged_at),
    )


def rollout(model_dir: Path, dataset: Path, params: dict, out: Path) -> None:
    """Roll the trained model out from test-split initial states (module docstring)."""
    p = parse_params(RolloutParams, params, "rollout")
    if p.threads is not None:
        torch.set_num_threads(p.threads)
    retain_freed_memory()  # steps reuse their arrays' memory (ddpd.heap)
    dev = resolve_device(p.device)
    if p.compile and dev.type == "cpu":
        require_cxx_compiler("rollout.compile")
    model = load_model(Path(model_dir), dev)
    model.eval()
    if p.compile:
        if hasattr(model, "compile_evaluation"):
            model.compile_evaluation()
        else:
            log.warning("rollout.compile: the %s model has no compiled evaluation; it runs "
                        "eager", type(model).__name__)
    data = load_dataset(Path(dataset))
    tests = data.splits.get("test", [])
    if len(tests) < p.n_rollouts:
        raise ValueError(f"rollout.n_rollouts {p.n_rollouts} exceeds the {len(tests)} test "
                         f"trajectories of {dataset}")
    out = Path(out)
    if p.n_rollouts == 1:
        write_trajectory(out, run_one(model, data, 0, p, dev), overwrite=True)
        return
    write_trajectory_folder(out, (run_one(model, data, k, p, dev) for k in range(p.n_rollouts)))
