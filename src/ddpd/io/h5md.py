"""The one trajectory format of the study: H5MD 1.1 files written with h5py.

Layout (https://nongnu.org/h5md/h5md.html, "particles" and "observables"):

    /h5md                       version = [1, 1]; author/, creator/
    /particles/<group>/box      attrs dimension, boundary; edges (D,)
                                 + ddpd attrs: ddpd_boundary, shear_rate, origin
    /particles/<group>/position step (T,), time (T,), value (T, N, D)   wrapped
    /particles/<group>/image    step, time, value (T, N, D) int32        optional
    /particles/<group>/velocity step, time, value (T, N, D)
    /particles/<group>/mass     scalar
    /observables/<group>/<name> step, time, value (T,) or (T, N)
    /parameters/ddpd            attrs: json metadata (units, provenance)

Missing particles (tracks that start or end inside a video) have NaN positions
and velocities. ``lees_edwards_offset`` (T,) is stored as an observable: the
accumulated x shift of the image above the box (shared/method.md §1).

Writes are atomic: the file is written next to its destination and renamed
into place only when complete, so a failing step leaves no partial output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ddpd import __version__
from ddpd.space.box import Box

H5MD_VERSION = (1, 1)


class TrajectoryFormatError(ValueError):
    """A file is not a ddpd H5MD trajectory or is inconsistent."""


@dataclass
class Trajectory:
    """A particle trajectory with per-particle observables.

    Attributes:
        position: (T, N, D) positions (wrapped into the box if periodic).
        velocity: (T, N, D) velocities.
        time: (T,) times in the trajectory's time unit.
        box: the box geometry.
        step: (T,) integer step numbers (defaults to frame index).
        image: (T, N, D) integer image counts, so ``position + image * edges``
            is the unwrapped position (Lees-Edwards: plus ``image_y * offset`` in x).
        mass: particle mass (scalar).
        observables: name -> (T,) or (T, N) arrays (e.g. ``rg2``,
            ``lees_edwards_offset``, ``exterior``).
        metadata: JSON-serialisable provenance (units, parameters, seeds).
    """

    position: np.ndarray
    velocity: np.ndarray
    time: np.ndarray
    box: Box
    step: np.ndarray | None = None
    image: np.ndarray | None = None
    mass: float = 1.0
    observables: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64)
        self.velocity = np.asarray(self.velocity, dtype=np.float64)
        self.time = np.asarray(self.time, dtype=np.float64)
        if self.position.ndim != 3:
            raise TrajectoryFormatError(
                f"position must be (T, N, D), got shape {self.position.shape}"
            )
        n_frames, _, dim = self.position.shape
        if self.velocity.shape != self.position.shape:
            raise TrajectoryFormatError(
                f"velocity shape {self.velocity.shape} != position shape {self.position.shape}"
            )
        if self.time.shape != (n_frames,):
            raise TrajectoryFormatError(f"time must be ({n_frames},), got {self.time.shape}")
        if dim != self.box.dim:
            raise TrajectoryFormatError(f"positions are {dim}D but the box is {self.box.dim}D")
        if self.step is None:
            self.step = np.arange(n_frames, dtype=np.int64)
        self.step = np.asarray(self.step, dtype=np.int64)
        if self.image is not None:
            self.image = np.asarray(self.image, dtype=np.int32)
            if self.image.shape != self.position.shape:
                raise TrajectoryFormatError("image must have the shape of position")
        for name, value in self.observables.items():
            value = np.asarray(value)
            if value.shape[:1] != (n_frames,):
                raise TrajectoryFormatError(
                    f"observable {name!r} has shape {value.shape}, expected ({n_frames}, ...)"
                )
            self.observables[name] = value

    @property
    def n_frames(self) -> int:
        return self.position.shape[0]

    @property
    def n_particles(self) -> int:
        return self.position.shape[1]

    @property
    def dim(self) -> int:
        return self.position.shape[2]

    @property
    def present(self) -> np.ndarray:
        """(T, N) bool: particle has a finite position in that frame."""
        return np.all(np.isfinite(self.position), axis=-1)

    def unwrapped_position(self) -> np.ndarray:
        """(T, N, D) positions with periodic images undone.

        Lees-Edwards: crossing the y boundary upward shifts x by the accumulated
        offset, so the unwrapped x adds ``image_y * lees_edwards_offset``.
        """
        if self.image is None:
            return self.position.copy()
        edges = np.asarray(self.box.edges)
        unwrapped = self.position + self.image * edges
        if self.box.boundary == "lees-edwards":
            offset = self.observables["lees_edwards_offset"]
            unwrapped[..., 0] += self.image[..., 1] * offset[:, None]
        return unwrapped

    def backward_difference_velocity(self, stride: int = 1, start: int = 0) -> np.ndarray:
        """(T', N, D) velocities v_t = (x_t - x_{t-1}) / (t_t - t_{t-1}) of frames start::stride.

        shared/method.md §4: the velocity consistent with the coarse step q' = q + v' dt,
        from the unwrapped positions (the differences are between kept frames; the first
        kept frame has none: NaN). Without image counts the positions are taken as
        continuous, as in :meth:`unwrapped_position`.
        Lees-Edwards: the velocity is given in the frame of the wrapped position, whose x
        velocity is lower by shear_rate * L_y per upward y image (the velocity jump across
        the boundary, method.md §1).
        """
        if stride < 1 or start < 0:
            raise ValueError(f"need stride >= 1 and start >= 0, got {stride} and {start}")
        keep = slice(start, None, stride)
        position = self.unwrapped_position()[keep]
        time = self.time[keep]
        velocity = np.full_like(position, np.nan)
        if len(time) > 1:
            velocity[1:] = np.diff(position, axis=0) / np.diff(time)[:, None, None]
        if self.box.boundary == "lees-edwards" and self.image is not None:
            jump = self.box.shear_rate * self.box.edges[1]
            velocity[..., 0] -= self.image[keep][..., 1] * jump
        return velocity


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _write_element(
    group: h5py.Group, name: str, value: np.ndarray, step: np.ndarray, time: np.ndarray
) -> None:
    element = group.create_group(name)
    element.create_dataset("step", data=step)
    element.create_dataset("time", data=time)
    element.create_dataset(
        "value", data=value, compression="gzip", compression_opts=4, shuffle=True
    )


def write_trajectory(
    path: str | os.PathLike, traj: Trajectory, group: str = "all", overwrite: bool = False
) -> None:
    """Write ``traj`` as H5MD to ``path`` atomically.

    Raises FileExistsError if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array(H5MD_VERSION, dtype=np.int32)
        h5md.create_group("author").attrs["name"] = "ddpd"
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "ddpd"
        creator.attrs["version"] = __version__

        particles = f.create_group(f"particles/{group}")
        box = particles.create_group("box")
        box.attrs["dimension"] = traj.dim
        h5md_boundary = "none" if traj.box.boundary == "open" else "periodic"
        box.attrs["boundary"] = np.array([h5md_boundary] * traj.dim, dtype=h5py.string_dtype())
        box.attrs["ddpd_boundary"] = traj.box.boundary
        box.attrs["shear_rate"] = traj.box.shear_rate
        box.attrs["origin"] = np.asarray(traj.box.origin)
        box.create_dataset("edges", data=np.asarray(traj.box.edges))

        _write_element(particles, "position", traj.position, traj.step, traj.time)
        _write_element(particles, "velocity", traj.velocity, traj.step, traj.time)
        if traj.image is not None:
            _write_element(particles, "image", traj.image, traj.step, traj.time)
        particles.create_dataset("mass", data=float(traj.mass))

        observables = f.create_group(f"observables/{group}")
        for name, value in traj.observables.items():
            _write_element(observables, name, value, traj.step, traj.time)

        params = f.create_group("parameters/ddpd")
        params.attrs["metadata"] = json.dumps(traj.metadata, sort_keys=True, default=str)


def write_trajectory_folder(out: str | os.PathLike, trajectories: Iterable[Trajectory]) -> None:
    """Write several runs as ``out/rollout_000.h5``, ... atomically: into a temporary folder
    beside ``out`` that replaces ``out`` only when every file is written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for k, traj in enumerate(trajectories):
            write_trajectory(tmp_dir / f"rollout_{k:03d}.h5", traj)
        if out.exists():
            shutil.rmtree(out)
        tmp_dir.rename(out)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def read_trajectory(path: str | os.PathLike, group: str = "all") -> Trajectory:
    """Read a trajectory written by :func:`write_trajectory`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TrajectoryFormatError: the file is not a ddpd H5MD trajectory (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrajectoryFormatError(f"{path}: not an HDF5 file ({exc})") from exc
    with f:
        if "h5md" not in f or f"particles/{group}" not in f:
            raise TrajectoryFormatError(f"{path}: no H5MD particles group {group!r}")
        particles = f[f"particles/{group}"]
        box_group = particles["box"]
        origin = box_group.attrs.get("origin")
        box = Box(
            edges=tuple(box_group["edges"][()]),
            boundary=str(box_group.attrs["ddpd_boundary"]),
            shear_rate=float(box_group.attrs.get("shear_rate", 0.0)),
            origin=None if origin is None else tuple(origin),
        )
        observables: dict[str, np.ndarray] = {}
        if f"observables/{group}" in f:
            for name, element in f[f"observables/{group}"].items():
                observables[name] = element["value"][()]
        metadata = {}
        if "parameters/ddpd" in f:
            metadata = json.loads(f["parameters/ddpd"].attrs.get("metadata", "{}"))
        return Trajectory(
            position=particles["position/value"][()],
            velocity=particles["velocity/value"][()],
            time=particles["position/time"][()],
            step=particles["position/step"][()],
            image=particles["image/value"][()] if "image" in particles else None,
            box=box,
            mass=float(particles["mass"][()]) if "mass" in particles else 1.0,
            observables=observables,
            metadata=metadata,
        )
