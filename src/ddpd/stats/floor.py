"""The error floor: an independent fine-grained replica cut to the rollouts' window.

A model's statistics differ from the held-out truth's by the model's error plus the
sampling noise of two finite runs. The floor measures the second part alone: an
independent replica of the same system and condition (the first validation run: its own
seed and initial state, same length) scored against the truth exactly like a model
(shared/method.md §5). To be comparable, the replica must be analysed over the frames a
rollout has: ddpd.rollout starts at the first frame of the (strided) data that has
velocities (frame 1 with backward-difference velocities, method.md §4; frame 0 with
recorded ones), runs ``n_steps`` steps of the dataset's dt (default: to the end of the
data) and saves every ``save_every``-th step. ``floor_window`` writes exactly those frames
of the replica, as a trajectory file that ``ddpd statistics`` then treats like a rollout.

Frame k of the output is frame ``stride * (start + k * save_every)`` of the replica, with
its wrapped positions, image counts and per-frame observables (``lees_edwards_offset``, so
unwrapping stays exact), and as velocities the dataset's convention at that frame
(backward differences over ``stride`` frames or the recorded ones), as a rollout stores
its model velocities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpd.io.h5md import Trajectory, read_trajectory, write_trajectory, write_trajectory_folder
from ddpd.params import is_int, parse_params, require

SECTION = "floor"


@dataclass(frozen=True)
class FloorParams:
    """The window of the rollouts (from the config sections ``dataset`` and ``rollout``).

    Attributes:
        stride: dataset.stride: the model's dt is stride x the replica's frame interval (1).
        max_frames: dataset.max_frames: frames kept per trajectory after striding; null = all.
        velocities: dataset.velocities: ``backward_difference`` (default) or ``recorded``.
        n_steps: rollout.n_steps (steps of the model's dt); null = to the end of the data.
        save_every: rollout.save_every (steps) (10, as ddpd.rollout).
    """

    stride: int = 1
    max_frames: int | None = None
    velocities: str = "backward_difference"
    n_steps: int | None = None
    save_every: int = 10

    def __post_init__(self) -> None:
        s = SECTION
        require(is_int(self.stride) and self.stride >= 1, s, "stride", "an integer >= 1",
                self.stride)
        require(self.max_frames is None or (is_int(self.max_frames) and self.max_frames >= 2),
                s, "max_frames", "an integer >= 2 or null", self.max_frames)
        require(self.velocities in ("backward_difference", "recorded"), s, "velocities",
                "'backward_difference' or 'recorded'", self.velocities)
        require(self.n_steps is None or (is_int(self.n_steps) and self.n_steps >= 1), s,
                "n_steps", "an integer >= 1 or null", self.n_steps)
        require(is_int(self.save_every) and self.save_every >= 1, s, "save_every",
                "an integer >= 1", self.save_every)


def window_frames(traj: Trajectory, p: FloorParams, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Replica frame indices of the rollout window and the dataset velocities there.

    Returns:
        (frames, velocity): frames (K,) indices into ``traj``; velocity (K, N, D) in the
        dataset's convention (length unit / time unit).
    """
    if p.velocities == "backward_difference":
        velocity = traj.backward_difference_velocity(p.stride)
    else:
        velocity = traj.velocity[:: p.stride]
    n_data = len(velocity) if p.max_frames is None else min(len(velocity), p.max_frames)
    # as ddpd.rollout: start at the first frame in which some particle has a velocity
    with_velocity = np.flatnonzero(np.isfinite(velocity[:n_data]).all(axis=-1).any(axis=-1))
    if len(with_velocity) == 0:
        raise ValueError(f"{source}: no frame has velocities (dataset.velocities "
                         f"{p.velocities!r}, stride {p.stride})")
    start = int(with_velocity[0])
    steps_left = n_data - 1 - start
    n_steps = p.n_steps if p.n_steps is not None else steps_left
    if n_steps > steps_left:
        raise ValueError(f"{source}: rollout.n_steps {n_steps} exceeds the {steps_left} steps "
                         f"of this replica after its first frame with velocities; the floor "
                         "replica must cover the rollouts' window")
    if n_steps < p.save_every:
        raise ValueError(f"{source}: the window of {n_steps} steps holds fewer than two saved "
                         f"frames (rollout.save_every {p.save_every})")
    strided = start + p.save_every * np.arange(n_steps // p.save_every + 1)
    return p.stride * strided, velocity[strided]


def replica_window(traj: Trajectory, p: FloorParams, source: str) -> Trajectory:
    """The frames of ``traj`` that a rollout from it would hold (module docstring)."""
    frames, velocity = window_frames(traj, p, source)
    n_frames = traj.n_frames
    observables = {name: np.asarray(value)[frames] for name, value in traj.observables.items()
                   if np.ndim(value) >= 1 and len(value) == n_frames}
    metadata = dict(traj.metadata) if isinstance(traj.metadata, dict) else {}
    metadata.update(kind="floor_replica", source=source, replica_frames=[int(frames[0]),
                    int(frames[-1]), int(frames[1] - frames[0])],
                    window={"stride": p.stride, "max_frames": p.max_frames,
                            "velocities": p.velocities, "n_steps": p.n_steps,
                            "save_every": p.save_every})
    return Trajectory(
        position=traj.position[frames], velocity=velocity, time=traj.time[frames],
        box=traj.box, step=traj.step[frames],
        image=None if traj.image is None else traj.image[frames], mass=traj.mass,
        observables=observables, metadata=metadata)


def floor_window(replicas: list[Path], params: dict, out: Path) -> None:
    """Write the rollout window of each independent replica (the error floor's input).

    Args:
        replicas: fine-grained (coarse-grained, tracked) trajectories independent of the
            truth, one per rollout (rollout.n_rollouts).
        params: FloorParams keys, i.e. dataset.stride/max_frames/velocities and
            rollout.n_steps/save_every.
        out: one H5MD file for one replica; a folder of ``rollout_000.h5``, ... for more, as
            ddpd.rollout writes, so that ``ddpd statistics`` averages them alike.
    """
    p = parse_params(FloorParams, params, SECTION)
    if not replicas:
        raise ValueError("floor_window needs at least one replica trajectory")
    windows = [replica_window(read_trajectory(path), p, str(path)) for path in replicas]
    if len(windows) == 1:
        write_trajectory(out, windows[0], overwrite=True)
    else:
        write_trajectory_folder(out, windows)
