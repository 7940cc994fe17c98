"""Snapshot-pair datasets: split, subsample, normalise (shared/method.md §4).

``build_dataset`` reads ddpd H5MD trajectories per split (``train``, ``validation``,
``test``; a trajectory belongs to exactly one split, so no frames of one run are mixed across
splits), keeps every ``stride``-th frame, and writes one HDF5 file:

    /attrs                 stats (JSON): dt, dim, mass, speed_scale, delta_v_scale,
                           number_density, cutoff, mean_neighbours, friction (A0, B0, C0),
                           d_ref; box (JSON); stride; sources per split
    /<split>/<k>/position  (T, N, D) float64, NaN where absent
    /<split>/<k>/velocity  (T, N, D)
    /<split>/<k>/time      (T,)
    /<split>/<k>/offset    (T,) accumulated Lees-Edwards offset (0 otherwise)
    /<split>/<k>/exterior  (T, N) bool: excluded from the loss, prescribed in rollouts
    /<split>/<k>/present   (T, N) bool: finite position and velocity

Statistics come from the TRAIN split only. ``load_dataset`` reads the file back and
``snapshots`` yields (x_t, x_{t+dt}) pairs of whole frames as :class:`Snapshot` tensors.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ddpd.io import atomic_path, read_trajectory
from ddpd.model.metriplectic import Snapshot
from ddpd.params import is_number, parse_params, require
from ddpd.space.box import Box
from ddpd.space.neighbours import Pairs, neighbour_pairs

SPLITS = ("train", "validation", "test")
VELOCITIES = ("backward_difference", "recorded")


@dataclass(frozen=True)
class DatasetParams:
    """Section ``dataset``.

    Attributes:
        stride: keep every stride-th frame; the model's dt is stride x frame interval (1).
        cutoff: length for the neighbour statistics (data length units); null -> from the
            training density so that a particle has ``target_neighbours`` neighbours (null).
        target_neighbours: mean neighbour count used when ``cutoff`` is null (8).
        exterior_margin: open boxes only: particles closer than this to the edge of the field
            of view are exterior (their neighbourhood is cut); null -> the cutoff (null).
        max_frames: keep at most this many frames per trajectory after striding; null = all.
        velocities: ``backward_difference`` (default): v_t = (q_t - q_{t-stride}) / dt from
            the unwrapped positions, the velocity consistent with the model's step
            q' = q + v' dt (method.md §4; the first kept frame has none); ``recorded``: the
            trajectory's own velocities (instantaneous for simulations). At a frame interval
            longer than the velocity memory (star centres dumped every tau) the recorded
            velocities are nearly uncorrelated with the next displacement (bench/model.md).
    """

    stride: int = 1
    cutoff: float | None = None
    target_neighbours: float = 8.0
    exterior_margin: float | None = None
    max_frames: int | None = None
    velocities: str = "backward_difference"

    def __post_init__(self) -> None:
        s = "dataset"
        require(isinstance(self.stride, int) and not isinstance(self.stride, bool)
              and self.stride >= 1, s, "stride", "an integer >= 1", self.stride)
        if self.cutoff is not None:
            require(is_number(self.cutoff) and self.cutoff > 0, s, "cutoff",
                  "a positive length or null", self.cutoff)
        require(is_number(self.target_neighbours) and self.target_neighbours > 0, s,
              "target_neighbours", "a positive number", self.target_neighbours)
        if self.exterior_margin is not None:
            require(is_number(self.exterior_margin) and self.exterior_margin >= 0, s,
                  "exterior_margin", "a length >= 0 or null", self.exterior_margin)
        if self.max_frames is not None:
            require(isinstance(self.max_frames, int) and self.max_frames >= 2, s, "max_frames",
                  "an integer >= 2 or null", self.max_frames)
        require(self.velocities in VELOCITIES, s, "velocities", f"one of {VELOCITIES}",
                self.velocities)


@dataclass
class TrajectoryData:
    """One strided trajectory of a split (arrays as in the module docstring)."""

    position: np.ndarray
    velocity: np.ndarray
    time: np.ndarray
    offset: np.ndarray
    exterior: np.ndarray
    present: np.ndarray
    source: str


@dataclass
class Dataset:
    """A built dataset: box, statistics and the strided trajectories of each split."""

    box: Box
    stats: dict
    splits: dict[str, list[TrajectoryData]]


def cutoff_for_neighbours(density: float, dim: int, neighbours: float) -> float:
    """h with density * (ball volume of radius h) = neighbours."""
    unit_ball = math.pi if dim == 2 else 4.0 * math.pi / 3.0
    return (neighbours / (density * unit_ball)) ** (1.0 / dim)


def _box_json(box: Box) -> str:
    return json.dumps(dataclasses.asdict(box))


def _load_split(paths: list[Path], p: DatasetParams, split: str) -> tuple[list, Box, float]:
    out = []
    box = None
    mass = None
    for path in paths:
        traj = read_trajectory(path)
        if box is None:
            box, mass = traj.box, traj.mass
        if traj.box.boundary != box.boundary or traj.box.dim != box.dim:
            raise ValueError(f"{path}: box {traj.box} differs from the other trajectories' {box}")
        if traj.mass != mass:
            raise ValueError(f"{path}: particle mass {traj.mass} differs from {mass}")
        keep = slice(None, None, p.stride)
        pos, vel, time = traj.position[keep], traj.velocity[keep], traj.time[keep]
        if p.velocities == "backward_difference":
            try:
                vel = traj.backward_difference_velocity(p.stride)
            except ValueError as err:
                raise ValueError(f"{path}: dataset.velocities 'backward_difference': {err}"
                                 ) from err
        if p.max_frames is not None:
            pos, vel, time = pos[: p.max_frames], vel[: p.max_frames], time[: p.max_frames]
        if len(time) < 2:
            raise ValueError(f"{path}: fewer than 2 frames after stride {p.stride}")
        steps = np.diff(time)
        if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
            raise ValueError(f"{path}: frames are not evenly spaced in time")
        if traj.box.boundary == "lees-edwards":
            if "lees_edwards_offset" in traj.observables:
                offset = np.asarray(traj.observables["lees_edwards_offset"])[keep][: len(time)]
            else:
                offset = traj.box.shear_rate * traj.box.edges[1] * time
        else:
            offset = np.zeros(len(time))
        exterior = np.zeros(pos.shape[:2], dtype=bool)
        if "exterior" in traj.observables:
            exterior = np.asarray(traj.observables["exterior"], dtype=bool)[keep][: len(time)]
        present = np.isfinite(pos).all(-1) & np.isfinite(vel).all(-1)
        out.append(TrajectoryData(pos, vel, time, np.asarray(offset, float), exterior, present,
                                  str(path)))
    return out, box, mass


def _mark_open_exterior(data: list[TrajectoryData], box: Box, margin: float) -> None:
    lo = np.asarray(box.origin)
    hi = lo + np.asarray(box.edges)
    for traj in data:
        with np.errstate(invalid="ignore"):
            near = ((traj.position - lo < margin) | (hi - traj.position < margin)).any(-1)
        traj.exterior = traj.exterior | (near & traj.present)


def _train_statistics(train: list[TrajectoryData], box: Box, mass: float,
                      p: DatasetParams) -> dict:
    dim = box.dim
    dt = float(train[0].time[1] - train[0].time[0])
    for traj in train:
        if not math.isclose(float(traj.time[1] - traj.time[0]), dt, rel_tol=1e-6):
            raise ValueError(f"{traj.source}: time step differs from the other training runs")
    peculiar, increments, counts = [], [], []
    for traj in train:
        for t in range(len(traj.time)):
            ok = traj.present[t]
            counts.append(ok.sum())
            if ok.any():
                v = traj.velocity[t, ok]
                peculiar.append(v - v.mean(0))
        scored = traj.present[:-1] & traj.present[1:] & ~traj.exterior[:-1]
        dv = traj.velocity[1:] - traj.velocity[:-1]
        increments.append(dv[scored])
    peculiar = np.concatenate(peculiar)
    increments = np.concatenate(increments)
    if len(increments) < 2:
        raise ValueError("training split has no scored particle (present at two frames, interior)")
    speed_scale = float(np.sqrt((peculiar**2).sum(-1).mean() / dim))
    delta_v_scale = float(increments.std(0).mean())
    number_density = float(np.mean(counts) / box.volume)
    cutoff = p.cutoff or cutoff_for_neighbours(number_density, dim, p.target_neighbours)
    if box.periodic and cutoff > min(box.edges) / 2:
        raise ValueError(f"dataset.cutoff {cutoff:.4g} exceeds half the box {box.edges}")
    n_pairs, n_parts = 0, 0
    for traj in train:
        for t in np.linspace(0, len(traj.time) - 1, min(10, len(traj.time))).astype(int):
            q = torch.as_tensor(traj.position[t])
            pairs = neighbour_pairs(q, box, cutoff, float(traj.offset[t]))
            n_pairs += len(pairs.i)
            n_parts += int(traj.present[t].sum())
    mean_neighbours = 2.0 * n_pairs / max(n_parts, 1)
    # Friction amplitudes matching the velocity-increment variance (see module docstring of
    # ddpd.model.metriplectic): var(dv) ~ 2 k_B dt n A^2 <taper> (D+1)/(2D) / m^2, k_B = 1.
    taper_mean = 1.0 - dim / (dim + 2.0)
    a2 = mass**2 * delta_v_scale**2 / (
        2.0 * dt * max(mean_neighbours, 1.0) * taper_mean * (dim + 1) / (2.0 * dim))
    energy = mass * speed_scale**2
    c2 = (0.1 * energy) ** 2 / (2.0 * dt * max(mean_neighbours, 1.0) * taper_mean)
    return dict(
        dt=dt, dim=dim, mass=float(mass), speed_scale=speed_scale, delta_v_scale=delta_v_scale,
        number_density=number_density, cutoff=float(cutoff), mean_neighbours=mean_neighbours,
        friction=[math.sqrt(a2), math.sqrt(a2), math.sqrt(c2)], d_ref=1.0 + 0.5 * mean_neighbours,
        n_train_trajectories=len(train),
    )


def build_dataset(splits: dict[str, list[Path]], params: dict, out: Path) -> None:
    """Build the snapshot dataset file ``out`` from trajectories per split.

    Args:
        splits: {"train": [...], "validation": [...], "test": [...]} H5MD trajectory paths;
            train and validation must be non-empty; a path may appear in one split only.
        params: section ``dataset`` (:class:`DatasetParams`).
        out: output HDF5 path (written atomically).
    """
    p = parse_params(DatasetParams, params, "dataset")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; expected {SPLITS}")
    for name in ("train", "validation"):
        if not splits.get(name):
            raise ValueError(f"split {name!r} needs at least one trajectory")
    seen: dict[str, str] = {}
    for name, paths in splits.items():
        for path in paths:
            key = str(Path(path).resolve())
            if key in seen:
                raise ValueError(f"{path} is in both split {seen[key]!r} and {name!r}")
            seen[key] = name
    data, boxes, masses = {}, {}, {}
    for name, paths in splits.items():
        if paths:
            data[name], boxes[name], masses[name] = _load_split([Path(x) for x in paths], p, name)
    box, mass = boxes["train"], masses["train"]
    for name in data:
        if boxes[name].boundary != box.boundary or boxes[name].dim != box.dim:
            raise ValueError(f"split {name!r} box {boxes[name]} differs from train box {box}")
    stats = _train_statistics(data["train"], box, mass, p)
    if box.boundary == "open":
        margin = p.exterior_margin if p.exterior_margin is not None else stats["cutoff"]
        for name in data:
            _mark_open_exterior(data[name], box, margin)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["stats"] = json.dumps(stats)
        f.attrs["box"] = _box_json(box)
        f.attrs["params"] = json.dumps(dataclasses.asdict(p))
        for name, trajs in data.items():
            group = f.create_group(name)
            for k, traj in enumerate(trajs):
                g = group.create_group(str(k))
                g.attrs["source"] = traj.source
                for key in ("position", "velocity", "time", "offset", "exterior", "present"):
                    g.create_dataset(key, data=getattr(traj, key), compression="gzip")


def load_dataset(path: Path) -> Dataset:
    """Read a file written by :func:`build_dataset`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    with h5py.File(path, "r") as f:
        if "stats" not in f.attrs:
            raise ValueError(f"{path}: not a ddpd dataset (no 'stats' attribute)")
        stats = json.loads(f.attrs["stats"])
        box_dict = json.loads(f.attrs["box"])
        box = Box(edges=tuple(box_dict["edges"]), boundary=box_dict["boundary"],
                  shear_rate=box_dict["shear_rate"], origin=tuple(box_dict["origin"]))
        splits = {}
        for name in f:
            splits[name] = [
                TrajectoryData(**{k: f[name][key][k][()] for k in
                                  ("position", "velocity", "time", "offset", "exterior",
                                   "present")}, source=str(f[name][key].attrs["source"]))
                for key in sorted(f[name], key=int)
            ]
    return Dataset(box, stats, splits)


def _frame(traj: TrajectoryData, t: int, box: Box, cutoff: float, dtype: torch.dtype,
           device: str) -> tuple[torch.Tensor, Pairs, np.ndarray]:
    rows = np.nonzero(traj.present[t])[0]
    q = torch.as_tensor(traj.position[t, rows], dtype=dtype, device=device)
    v = torch.as_tensor(traj.velocity[t, rows], dtype=dtype, device=device)
    return v, neighbour_pairs(q, box, cutoff, float(traj.offset[t])), rows


def snapshots(dataset: Dataset, split: str, cutoff: float, dtype: torch.dtype = torch.float32,
              device: str = "cpu") -> list[Snapshot]:
    """All snapshot pairs (t, t+1) of a split, with neighbour pairs precomputed.

    Scored particles: present at t and t+1 and not exterior at t.
    """
    out = []
    for traj in dataset.splits.get(split, []):
        frames = [_frame(traj, t, dataset.box, cutoff, dtype, device)
                  for t in range(len(traj.time))]
        for t in range(len(traj.time) - 1):
            v0, pairs0, rows0 = frames[t]
            v1, pairs1, rows1 = frames[t + 1]
            scored = traj.present[t] & traj.present[t + 1] & ~traj.exterior[t]
            where1 = np.full(traj.present.shape[1], -1)
            where1[rows1] = np.arange(len(rows1))
            keep = scored[rows0]
            idx0 = np.nonzero(keep)[0]
            idx1 = where1[rows0[idx0]]
            if len(idx0) == 0:
                continue
            out.append(Snapshot(v0, pairs0, v1, pairs1,
                                torch.as_tensor(idx0, device=device),
                                torch.as_tensor(idx1, device=device)))
    return out


def collate(batch: list[Snapshot]) -> Snapshot:
    """Join several snapshots into one block-diagonal snapshot (indices offset; frame0 labels
    each row's frame)."""
    def join(pairs_list: list[Pairs], offsets: list[int]) -> Pairs:
        return Pairs(
            torch.cat([p.i + o for p, o in zip(pairs_list, offsets, strict=True)]),
            torch.cat([p.j + o for p, o in zip(pairs_list, offsets, strict=True)]),
            torch.cat([p.r for p in pairs_list]), torch.cat([p.jump for p in pairs_list]))

    off0 = np.cumsum([0] + [len(s.v0) for s in batch[:-1]]).tolist()
    off1 = np.cumsum([0] + [len(s.v1) for s in batch[:-1]]).tolist()
    frames, first = [], 0
    for s in batch:  # frame labels stay distinct when joined snapshots are joined again
        if s.frame0 is None:
            frames.append(torch.full((len(s.v0),), first, dtype=torch.long, device=s.v0.device))
            first += 1
        else:
            frames.append(s.frame0 + first)
            first += int(s.frame0.max()) + 1 if len(s.frame0) else 0
    return Snapshot(
        torch.cat([s.v0 for s in batch]), join([s.pairs0 for s in batch], off0),
        torch.cat([s.v1 for s in batch]), join([s.pairs1 for s in batch], off1),
        torch.cat([s.idx0 + o for s, o in zip(batch, off0, strict=True)]),
        torch.cat([s.idx1 + o for s, o in zip(batch, off1, strict=True)]),
        torch.cat(frames),
    )
