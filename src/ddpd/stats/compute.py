"""All statistics of one trajectory on common grids, written as one JSON file.

Statistics (shared/method.md §5): radial distribution function g(r)
(ddpd.stats.rdf), mean squared displacement, non-Gaussian parameter and self
van Hove function (ddpd.stats.displacement), velocity autocorrelation
(ddpd.stats.vacf); for Lees-Edwards boxes the velocity profile u_x(y), the
measured shear rate and the kinetic shear stress (ddpd.stats.shear).

Grids are fixed by the parameters (r in length units, lags in frames times the
frame interval), so truth and model files with the same frame interval share
them; ddpd.stats.compare relies on it (it interpolates a model onto the truth's
time grid where the intervals differ). Self van Hove entries are named by their
lag time, ``van_hove_t<lag x dt>``, so that only equal lag times are compared.

Displacement and velocity statistics use the unwrapped positions and, under
shear (lees-edwards with nonzero shear rate), only the gradient (y) and
vorticity (z) components: the flow direction carries the affine streaming.

Output JSON layout::

    {"source": str, "boundary": str, "dim": int, "components": [int],
     "n_frames": int, "n_particles": int, "dt": float, "mass": float,
     "units": {"length": str, "time": str}, "params": {...},
     "statistics": {name: {"x": [...], "y": [...], "x_label": str, "y_label": str}},
     "scalars": {name: float}}

NaN is written as null.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ddpd.io.h5md import Trajectory, atomic_path, read_trajectory
from ddpd.params import is_int, is_number, parse_params, require
from ddpd.space.box import Box
from ddpd.stats.displacement import mean_squared_displacement, non_gaussian_parameter, van_hove_self
from ddpd.stats.rdf import largest_r_max, radial_distribution_function
from ddpd.stats.shear import kinetic_shear_stress, profile_shear_rate, velocity_profile
from ddpd.stats.vacf import velocity_autocorrelation

SECTION = "statistics"


@dataclass(frozen=True)
class StatisticsParams:
    """Parameters of ``compute_statistics`` (config section ``statistics``).

    Attributes:
        r_max: largest distance of g(r) (length unit; < half the smallest box edge, less
            under Lees-Edwards tilt: ddpd.stats.rdf.largest_r_max); null = automatic: the
            smaller of 6 mean spacings (V/N)^(1/D) and 0.9 x that bound (0.5 x for open
            fields of view, border estimator). Default null.
        n_bins: number of g(r) bins on [0, r_max]. Default 60.
        rdf_stride: use every rdf_stride-th frame for g(r) (frames). Default 1.
        max_lag: largest lag of MSD and VACF (frames; < number of frames). Default 100.
        n_alpha2_lags: number of log-spaced lags in [1, max_lag] for alpha_2. Default 20.
        van_hove_lags: lags of the self van Hove function (frames, each < number of frames).
            Default (1, 10, 100).
        van_hove_r_max: largest displacement of G_s(r, t) (length unit); null = 3 mean
            spacings (V/N)^(1/D), the same for truth and model in the same box. Default null.
        van_hove_bins: number of G_s bins on [0, van_hove_r_max]. Default 60.
        profile_bins: number of y slabs of the velocity profile (sheared boxes only). Default 10.
        start_frame: frames before this one are discarded (equilibration). Default 0.
        frame_stride: analyse every frame_stride-th frame from start_frame on, e.g. the
            dataset stride x rollout save_every for the truth, so that its frame interval
            (and so every lag grid) equals the rollouts'. Lags count these frames. Default 1.
        velocities: ``backward_difference`` (default): velocity statistics (VACF, kinetic
            temperature, velocity profile, kinetic stress) use (x_t - x_{t-1}) / dt between
            analysed frames, the velocity of the coarse model's step q' = q + v' dt
            (method.md §4), so truth and rollouts are measured alike; ``recorded``: the
            trajectory's own velocities (instantaneous for simulations).
    """

    r_max: float | None = None
    n_bins: int = 60
    rdf_stride: int = 1
    max_lag: int = 100
    n_alpha2_lags: int = 20
    van_hove_lags: tuple[int, ...] = (1, 10, 100)
    van_hove_r_max: float | None = None
    van_hove_bins: int = 60
    profile_bins: int = 10
    start_frame: int = 0
    frame_stride: int = 1
    velocities: str = "backward_difference"

    def __post_init__(self) -> None:
        s = SECTION
        require(self.r_max is None or (is_number(self.r_max) and self.r_max > 0), s, "r_max",
                "null or a number > 0", self.r_max)
        require(is_int(self.n_bins) and self.n_bins >= 1, s, "n_bins", "an integer >= 1",
                self.n_bins)
        require(is_int(self.rdf_stride) and self.rdf_stride >= 1, s, "rdf_stride",
                "an integer >= 1", self.rdf_stride)
        require(is_int(self.max_lag) and self.max_lag >= 1, s, "max_lag", "an integer >= 1",
                self.max_lag)
        require(is_int(self.n_alpha2_lags) and self.n_alpha2_lags >= 1, s, "n_alpha2_lags",
                "an integer >= 1", self.n_alpha2_lags)
        lags = self.van_hove_lags
        require(isinstance(lags, list | tuple) and all(is_int(k) and k >= 1 for k in lags), s,
                "van_hove_lags", "a list of integers >= 1", lags)
        object.__setattr__(self, "van_hove_lags", tuple(lags))
        require(self.van_hove_r_max is None or (is_number(self.van_hove_r_max)
                                                 and self.van_hove_r_max > 0), s,
                "van_hove_r_max", "null or a number > 0", self.van_hove_r_max)
        require(is_int(self.van_hove_bins) and self.van_hove_bins >= 1, s, "van_hove_bins",
                "an integer >= 1", self.van_hove_bins)
        require(is_int(self.profile_bins) and self.profile_bins >= 2, s, "profile_bins",
                "an integer >= 2", self.profile_bins)
        require(is_int(self.start_frame) and self.start_frame >= 0, s, "start_frame",
                "an integer >= 0", self.start_frame)
        require(is_int(self.frame_stride) and self.frame_stride >= 1, s, "frame_stride",
                "an integer >= 1", self.frame_stride)
        require(self.velocities in ("backward_difference", "recorded"), s, "velocities",
                "'backward_difference' or 'recorded'", self.velocities)


def alpha2_lags(max_lag: int, n_lags: int) -> np.ndarray:
    """Distinct log-spaced integer lags in [1, max_lag]."""
    return np.unique(np.rint(np.geomspace(1, max_lag, n_lags)).astype(int))


def default_r_max(box: Box, n_particles: float) -> float:
    """Automatic g(r) range: min(6 (V/N)^(1/D), 0.9 (periodic) or 0.5 (open) x bound)."""
    spacing = (box.volume / max(n_particles, 1.0)) ** (1.0 / box.dim)
    return min(6.0 * spacing, (0.9 if box.periodic else 0.5) * largest_r_max(box))


def frame_interval(time: np.ndarray, source: str) -> float:
    """The constant time between frames; ValueError if frames are not equally spaced."""
    dt = np.diff(np.asarray(time, dtype=np.float64))
    if len(dt) == 0 or dt[0] <= 0 or not np.allclose(dt, dt[0], rtol=1e-6, atol=0.0):
        raise ValueError(f"{source}: frames must be equally spaced in time (got steps {dt[:5]})")
    return float(dt[0])


def analysis_components(traj: Trajectory) -> list[int]:
    """Components used for displacement/velocity statistics: all, or y[, z] under shear."""
    if traj.box.boundary == "lees-edwards" and traj.box.shear_rate != 0.0:
        return list(range(1, traj.dim))
    return list(range(traj.dim))


def trajectory_units(traj: Trajectory) -> dict[str, str]:
    """Length and time unit names: metadata['units'], else σ/τ (simulations), px/frame (open)."""
    meta_units = traj.metadata.get("units", {}) if isinstance(traj.metadata, dict) else {}
    default = ("px", "frame") if traj.box.boundary == "open" else ("σ", "τ")
    if not isinstance(meta_units, dict):
        meta_units = {}
    return {
        "length": str(meta_units.get("length", default[0])),
        "time": str(meta_units.get("time", default[1])),
    }


def _series(x: np.ndarray, y: np.ndarray, x_label: str, y_label: str) -> dict:
    return {"x": _json_list(x), "y": _json_list(y), "x_label": x_label, "y_label": y_label}


def _json_list(values: np.ndarray) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def trajectory_statistics(traj: Trajectory, params: StatisticsParams, source: str) -> dict:
    """All statistics of ``traj`` as the JSON-ready dict described in the module docstring."""
    p = params
    if p.start_frame >= traj.n_frames - 1:
        raise ValueError(f"{SECTION}.start_frame = {p.start_frame} leaves fewer than two frames "
                         f"of {source} ({traj.n_frames} frames)")
    frames = slice(p.start_frame, None, p.frame_stride)
    n_frames = len(range(traj.n_frames)[frames])
    for key, lag in [("max_lag", p.max_lag)] + [("van_hove_lags", k) for k in p.van_hove_lags]:
        if lag >= n_frames:
            raise ValueError(f"{SECTION}.{key}: lag {lag} needs more than the {n_frames} frames "
                             f"of {source}")
    dt = frame_interval(traj.time[frames], source)
    units = trajectory_units(traj)
    length, time = units["length"], units["time"]
    comps = analysis_components(traj)
    d = len(comps)

    position = traj.position[frames]
    if p.velocities == "backward_difference":
        velocity = traj.backward_difference_velocity(p.frame_stride, p.start_frame)
    else:
        velocity = traj.velocity[frames]
    present = traj.present[frames]  # positions; velocity statistics also need finite v
    moving = present & np.all(np.isfinite(velocity), axis=-1)
    unwrapped = traj.unwrapped_position()[frames][..., comps]
    offset = traj.observables.get("lees_edwards_offset")
    offset = None if offset is None else np.asarray(offset)[frames]

    stats: dict[str, dict] = {}
    mean_n = float(np.mean(present.sum(axis=1)))
    r_max = p.r_max if p.r_max is not None else default_r_max(traj.box, mean_n)
    if r_max >= largest_r_max(traj.box):
        raise ValueError(f"{SECTION}.r_max = {r_max} must be smaller than "
                         f"{largest_r_max(traj.box):.6g} (half the smallest box edge or plane "
                         f"distance) for {source}")
    r, g = radial_distribution_function(position, traj.box, r_max, p.n_bins, present, offset,
                                        p.rdf_stride)
    stats["rdf"] = _series(r, g, f"r [{length}]", "g(r)")
    lag_time = np.arange(p.max_lag + 1) * dt
    msd = mean_squared_displacement(unwrapped, present, p.max_lag)
    stats["msd"] = _series(lag_time, msd, f"t [{time}]", f"MSD [{length}²]")
    vacf = velocity_autocorrelation(velocity[..., comps], moving, p.max_lag)
    stats["vacf"] = _series(lag_time, vacf, f"t [{time}]", f"<v(0)·v(t)> [{length}²/{time}²]")
    lags = alpha2_lags(p.max_lag, p.n_alpha2_lags)
    stats["alpha2"] = _series(lags * dt, non_gaussian_parameter(unwrapped, present, lags),
                              f"t [{time}]", "α₂(t)")
    spacing = (traj.box.volume / max(mean_n, 1.0)) ** (1.0 / traj.dim)
    vh_r_max = p.van_hove_r_max if p.van_hove_r_max is not None else 3.0 * spacing
    for lag in p.van_hove_lags:
        r_s, g_s = van_hove_self(unwrapped, present, lag, vh_r_max, p.van_hove_bins)
        stats[f"van_hove_t{lag * dt:g}"] = _series(r_s, g_s, f"r [{length}]",
                                                   f"G_s(r, {lag * dt:g} {time}) [{length}^-{d}]")

    c0 = vacf[0]
    scalars: dict[str, float] = {
        "kinetic_temperature": float(traj.mass * c0 / d) if np.isfinite(c0) else math.nan,
        "number_density": mean_n / traj.box.volume,
    }
    if traj.box.boundary == "lees-edwards":
        y, u_x, counts = velocity_profile(position, velocity, traj.box, p.profile_bins, moving)
        stats["velocity_profile"] = _series(y, u_x, f"y [{length}]", f"u_x [{length}/{time}]")
        rate, u_0 = profile_shear_rate(y, u_x, counts)
        stress = kinetic_shear_stress(position, velocity, traj.box, traj.mass, rate, u_0, moving)
        mean_stress = float(np.mean(stress))
        scalars["imposed_shear_rate"] = float(traj.box.shear_rate)
        scalars["measured_shear_rate"] = rate
        scalars["kinetic_shear_stress"] = mean_stress
        imposed = traj.box.shear_rate
        scalars["kinetic_viscosity"] = -mean_stress / imposed if imposed != 0 else math.nan
        scalars["kinetic_viscosity_measured_rate"] = -mean_stress / rate if rate != 0 else math.nan
    return {
        "source": source,
        "boundary": traj.box.boundary,
        "dim": traj.dim,
        "components": comps,
        "n_frames": int(n_frames),
        "n_particles": traj.n_particles,
        "dt": dt,
        "mass": float(traj.mass),
        "units": units,
        "statistics": stats,
        "scalars": {k: (None if not math.isfinite(v) else v) for k, v in scalars.items()},
    }


def average_statistics(results: list[dict]) -> dict:
    """Mean over runs of every series (NaN-aware, on the first run's grid) and scalar.

    All runs must have the same statistics on the same grids (same parameters and frame
    interval); ``n_runs`` records how many were averaged.
    """
    first = results[0]
    merged = {**first, "source": [r["source"] for r in results], "n_runs": len(results)}
    merged["statistics"] = {}
    for name, series in first["statistics"].items():
        ys = []
        for r in results:
            other = r["statistics"].get(name)
            if other is None or len(other["x"]) != len(series["x"]) or not np.allclose(
                    np.array(other["x"], dtype=float), np.array(series["x"], dtype=float)):
                raise ValueError(f"statistic {name!r} of {r['source']} is not on the grid of "
                                 f"{first['source']}: average only runs of equal frame interval")
            ys.append(np.array(other["y"], dtype=float))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(ys, axis=0)
        merged["statistics"][name] = {**series, "y": _json_list(mean)}
    merged["scalars"] = {}
    for name in first["scalars"]:
        values = [r["scalars"].get(name) for r in results]
        values = [v for v in values if v is not None]
        merged["scalars"][name] = float(np.mean(values)) if values else None
    return merged


def compute_statistics(trajectory: Path, params: dict, out: Path) -> dict:
    """Compute all statistics of a trajectory and write them to ``out`` (JSON, atomic).

    Args:
        trajectory: H5MD trajectory (ddpd.io), or a folder of them (``rollout_000.h5``, ...,
            as written by rollouts with n_rollouts > 1): then every statistic is the mean
            over the files (``average_statistics``).
        params: the ``statistics`` config section (see StatisticsParams).
        out: output JSON path.

    Returns:
        The dict written to ``out``.
    """
    p = parse_params(StatisticsParams, params, SECTION)
    trajectory = Path(trajectory)
    if trajectory.is_dir():
        files = sorted(trajectory.glob("*.h5"))
        if not files:
            raise FileNotFoundError(f"no .h5 trajectory files in folder {trajectory}")
        result = average_statistics(
            [trajectory_statistics(read_trajectory(f), p, str(f)) for f in files])
    else:
        result = trajectory_statistics(read_trajectory(trajectory), p, str(trajectory))
    result["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(p).items()}
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, allow_nan=False))
    return result


def load_statistics(path: Path) -> dict:
    """Read a statistics JSON written by ``compute_statistics`` (null -> NaN in x and y)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a JSON statistics file ({exc})") from exc
    if "statistics" not in data:
        raise ValueError(f"{path}: no 'statistics' entry; expected a compute_statistics output")
    for series in data["statistics"].values():
        series["x"] = np.array(series["x"], dtype=float)
        series["y"] = np.array(series["y"], dtype=float)
    return data
