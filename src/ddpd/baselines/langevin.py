"""Reference baseline: independent Langevin particles (no interactions).

Each particle's peculiar velocity w is an Ornstein-Uhlenbeck process

    dw = -gamma w dt + sqrt(2 gamma k_B T / m) dW,     dq = (w + u(y) e_x) dt,

with u(y) = gamma_dot y + u_0 the streaming profile under Lees-Edwards shear
(u = 0 otherwise). Fit (``fit_langevin``): m from the trajectory, k_B T = m <w_a^2>
(per component), gamma from the initial exponential decay of the normalised
VACF, C(t)/C(0) = exp(-gamma t) (least squares of ln C/C(0) through the origin
over the lags before it first drops below ``vacf_threshold``). Under shear only
the gradient/vorticity components enter the fit (ddpd.stats.compute), and
(gamma_dot, u_0) come from the velocity profile of the training data.

Rollout (``rollout_langevin``): the exact discrete update of the integrated OU
process over one frame interval h (Gillespie, Phys. Rev. E 54, 2084 (1996)),
with s = k_B T / m, e = exp(-gamma h):

    w' = w e + xi_w,                     Var xi_w = s (1 - e^2)
    Δq = w (1 - e) / gamma + xi_q,       Var xi_q = s (2 gamma h - 3 + 4 e - e^2) / gamma^2
    Cov(xi_q, xi_w) = s (1 - e)^2 / gamma

plus the streaming displacement u(y_mid) h (midpoint y of the step: exact for
u linear in y when the y motion over the step is linear). Periodic boxes wrap
with image counts; Lees-Edwards crossings of y shift x by the accumulated
offset gamma_dot L_y t (the velocity jump follows from u(y)); open boxes do not
wrap. The first law and the entropy are not modelled: ``total_energy`` of a
rollout is the kinetic energy only.

Overdamped regime: when the frames do not resolve the velocity relaxation
(C(h)/C(0) <= vacf_threshold, typical of video, whose velocities are backward
differences and anticorrelated), the fit switches (``regime: auto``) to
Brownian particles: D from the slope of MSD(t) = 2 d D t + c over lags
1..max_fit_lag (c absorbs localisation noise), and the rollout draws
Δq = sqrt(2 D h) xi (+ streaming) with velocities the backward differences
Δq / h, as in the tracked data (shared/method.md §4). The initial frame keeps
its velocities (NaN in video).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from ddpd.io.h5md import (
    Trajectory,
    atomic_path,
    read_trajectory,
    write_trajectory,
    write_trajectory_folder,
)
from ddpd.params import is_int, is_number, parse_params, require
from ddpd.space.box import Box
from ddpd.stats.compute import analysis_components, frame_interval
from ddpd.stats.displacement import mean_squared_displacement
from ddpd.stats.shear import profile_shear_rate, velocity_profile
from ddpd.stats.vacf import velocity_autocorrelation

FIT_SECTION = "langevin"
REGIMES = ("auto", "underdamped", "overdamped")
MIN_RESOLVED_DECAY = 0.05  # C(dt)/C(0) below this: velocities decorrelate within a frame
ROLLOUT_SECTION = "rollout"


@dataclass(frozen=True)
class LangevinFitParams:
    """Parameters of the Langevin fit (config section ``langevin``).

    Attributes:
        vacf_threshold: fit ln C(t)/C(0) over lags before C/C(0) first drops below this
            (dimensionless, in (0, 1)). Default 0.3.
        max_fit_lag: largest VACF lag considered (frames, >= 1). Default 50.
        profile_bins: y slabs for the streaming profile of sheared data. Default 10.
        regime: "auto" (underdamped if C(dt)/C(0) > vacf_threshold, else overdamped),
            "underdamped" (Langevin OU velocities) or "overdamped" (Brownian). Default "auto".
    """

    vacf_threshold: float = 0.3
    max_fit_lag: int = 50
    profile_bins: int = 10
    regime: str = "auto"

    def __post_init__(self) -> None:
        s = FIT_SECTION
        require(is_number(self.vacf_threshold) and 0 < self.vacf_threshold < 1, s,
                "vacf_threshold", "a number in (0, 1)", self.vacf_threshold)
        require(is_int(self.max_fit_lag) and self.max_fit_lag >= 1, s, "max_fit_lag",
                "an integer >= 1", self.max_fit_lag)
        require(is_int(self.profile_bins) and self.profile_bins >= 2, s, "profile_bins",
                "an integer >= 2", self.profile_bins)
        require(self.regime in REGIMES, s, "regime", f"one of {REGIMES}", self.regime)


@dataclass(frozen=True)
class LangevinRolloutParams:
    """Parameters of a Langevin rollout: the study's ``rollout`` section, same meaning as for
    the learned model (ddpd.rollout), so both rollouts share frames and seeds.

    Attributes:
        n_steps: number of steps of the data's frame interval dt; null = as many as the
            initial trajectory has after ``start_frame`` (as ddpd.rollout). Default null.
        seed: random seed; rollout k uses seed + k. Default 0.
        save_every: write every save_every-th step (frame interval of the output
            = save_every x dt). Default 10 (as ddpd.rollout).
        n_rollouts: number of test trajectories to start from (1: ``out`` is a file; more:
            ``out`` is a folder of rollout_000.h5, ...). Default 1.
        start_frame: frame of each initial trajectory to start from. Default 0.
        integrator, device, threads: learned-model keys of the shared section, accepted and
            ignored (the Langevin update is exact and runs on the CPU).
    """

    n_steps: int | None = None
    seed: int = 0
    save_every: int = 10
    n_rollouts: int = 1
    start_frame: int = 0
    integrator: str | None = None
    device: str | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        s = ROLLOUT_SECTION
        require(self.n_steps is None or (is_int(self.n_steps) and self.n_steps >= 1), s,
                "n_steps", "null or an integer >= 1", self.n_steps)
        require(is_int(self.seed) and self.seed >= 0, s, "seed", "an integer >= 0", self.seed)
        for key in ("save_every", "n_rollouts"):
            value = getattr(self, key)
            require(is_int(value) and value >= 1, s, key, "an integer >= 1", value)
        require(is_int(self.start_frame) and self.start_frame >= 0, s, "start_frame",
                "an integer >= 0", self.start_frame)


def fit_decay_rate(vacf: np.ndarray, dt: float, threshold: float) -> tuple[float, int]:
    """gamma from C(t)/C(0) = exp(-gamma t); returns (gamma, number of lags used)."""
    if not (np.isfinite(vacf[0]) and vacf[0] > 0):
        raise ValueError(f"VACF at lag 0 must be positive, got {vacf[0]}")
    ratio = vacf / vacf[0]
    below = np.flatnonzero(~(ratio > threshold))
    n_fit = int(below[0]) if len(below) else len(ratio)
    if n_fit < 2:
        if not (np.isfinite(ratio[1]) and ratio[1] > MIN_RESOLVED_DECAY):
            raise ValueError(f"VACF decays within one frame (C(dt)/C(0) = {ratio[1]:.3g}); "
                             "cannot fit a Langevin friction: use finer frames")
        return float(-math.log(ratio[1]) / dt), 1
    t = np.arange(n_fit) * dt
    log_ratio = np.log(ratio[:n_fit])
    return float(-np.dot(t, log_ratio) / np.dot(t, t)), n_fit - 1


def fit_langevin(train_trajectories: list[Trajectory], params: dict | None = None) -> dict:
    """Fit m, k_B T, gamma (and the shear profile) to training trajectories.

    All trajectories must share the box dimension, the boundary, the frame interval and the
    mass. Returns a JSON-serialisable dict (keys: model, regime, diffusion, dim, boundary,
    mass, kT, gamma, dt, shear_rate, measured_shear_rate, profile_intercept, n_fit_lags,
    vacf and msd (lags 0..max_fit_lag), params).
    """
    p = parse_params(LangevinFitParams, params, FIT_SECTION)
    if not train_trajectories:
        raise ValueError("fit_langevin needs at least one training trajectory")
    first = train_trajectories[0]
    dt = frame_interval(first.time, "training trajectory 0")
    weighted_vacf = 0.0
    weights = 0.0
    sum_w2, n_w2 = 0.0, 0
    weighted_msd = 0.0
    msd_weights = 0.0
    profile_fits = []
    max_lag = min([p.max_fit_lag] + [t.n_frames - 1 for t in train_trajectories])
    if max_lag < 1:
        raise ValueError("training trajectories need at least two frames")
    for k, traj in enumerate(train_trajectories):
        if (traj.dim, traj.box.boundary, traj.mass) != (first.dim, first.box.boundary, first.mass):
            raise ValueError(f"training trajectory {k}: dim/boundary/mass differ from trajectory 0")
        if not math.isclose(frame_interval(traj.time, f"training trajectory {k}"), dt,
                            rel_tol=1e-6):
            raise ValueError(f"training trajectory {k}: frame interval differs from trajectory 0")
        comps = analysis_components(traj)
        present = traj.present & np.all(np.isfinite(traj.velocity), axis=-1)
        w = traj.velocity[..., comps]
        vacf = velocity_autocorrelation(w, present, max_lag)
        n_pairs = present.sum()
        weighted_vacf = weighted_vacf + np.nan_to_num(vacf) * n_pairs
        weights += n_pairs
        sum_w2 += float(np.sum(w[present] ** 2))
        located = traj.present
        msd = mean_squared_displacement(traj.unwrapped_position()[..., comps], located, max_lag)
        weighted_msd = weighted_msd + np.nan_to_num(msd) * located.sum()
        msd_weights += located.sum()
        n_w2 += int(present.sum()) * len(comps)
        if traj.box.boundary == "lees-edwards":
            y, u_x, counts = velocity_profile(traj.position, traj.velocity, traj.box,
                                              p.profile_bins, present)
            profile_fits.append(profile_shear_rate(y, u_x, counts))
    if n_w2 == 0:
        raise ValueError("training trajectories have no present particle with a velocity")
    vacf = weighted_vacf / weights
    msd = weighted_msd / msd_weights
    d = len(analysis_components(first))
    slope = np.polyfit(np.arange(1, max_lag + 1) * dt, msd[1:], 1)[0] if max_lag >= 2 else (
        msd[1] / dt)
    diffusion = float(slope / (2 * d))
    resolved = vacf[0] > 0 and vacf[1] / vacf[0] > p.vacf_threshold
    regime = p.regime if p.regime != "auto" else ("underdamped" if resolved else "overdamped")
    kT = float(first.mass * sum_w2 / n_w2)
    if regime == "underdamped":
        gamma, n_fit = fit_decay_rate(vacf, dt, p.vacf_threshold)
    else:
        if not diffusion > 0:
            raise ValueError(f"MSD slope gives a non-positive diffusion coefficient {diffusion}")
        gamma, n_fit = kT / (first.mass * diffusion), max_lag
    if not gamma > 0:
        raise ValueError(f"fitted friction gamma = {gamma} is not positive")
    shear_rate = float(first.box.shear_rate) if first.box.boundary == "lees-edwards" else 0.0
    intercept = float(np.mean([f[1] for f in profile_fits])) if profile_fits else 0.0
    return {
        "model": "langevin",
        "regime": regime,
        "diffusion": diffusion,
        "dim": first.dim,
        "boundary": first.box.boundary,
        "mass": float(first.mass),
        "kT": kT,
        "gamma": gamma,
        "dt": dt,
        "shear_rate": shear_rate,
        "measured_shear_rate": float(np.mean([f[0] for f in profile_fits])) if profile_fits
        else 0.0,
        "profile_intercept": intercept,
        "n_fit_lags": n_fit,
        "vacf": vacf.tolist(),
        "msd": msd.tolist(),
        "params": asdict(p),
    }


def _ou_step_coefficients(gamma: float, kT_over_m: float, h: float) -> dict[str, float]:
    e = math.exp(-gamma * h)
    var_w = kT_over_m * -math.expm1(-2.0 * gamma * h)
    var_q = kT_over_m * (2.0 * gamma * h - 3.0 + 4.0 * e - e * e) / gamma**2
    cov = kT_over_m * (1.0 - e) ** 2 / gamma
    sigma_w = math.sqrt(var_w)
    return {
        "e": e,
        "drift_q": -math.expm1(-gamma * h) / gamma,
        "sigma_w": sigma_w,
        "q_from_w_noise": cov / sigma_w,
        "sigma_q_rest": math.sqrt(max(var_q - cov * cov / var_w, 0.0)),
    }


def rollout_langevin(
    params_fitted: dict,
    initial: Trajectory,
    n_steps: int,
    dt: float,
    seed: int,
    box: Box | None = None,
) -> Trajectory:
    """Generate ``n_steps`` frames after frame 0 of ``initial`` (module docstring).

    Particles absent at frame 0 (NaN position) are dropped. Underdamped: a NaN initial
    velocity is drawn from the Maxwell distribution at the fitted temperature. Overdamped
    (``params_fitted["regime"] == "overdamped"``, needs ``diffusion``): Brownian steps,
    velocities are backward differences, frame 0 keeps the initial velocities.

    Returns:
        Trajectory of n_steps + 1 frames spaced by dt, with observables ``total_momentum``
        (T, D), ``total_energy`` (T,, kinetic) and ``lees_edwards_offset`` (T,) if sheared.
    """
    for key in ("mass", "kT", "gamma", "dim"):
        if key not in params_fitted:
            raise ValueError(f"fitted Langevin parameters lack key {key!r}")
    box = initial.box if box is None else box
    mass, kT, gamma = (float(params_fitted[k]) for k in ("mass", "kT", "gamma"))
    if int(params_fitted["dim"]) != box.dim:
        raise ValueError(f"fitted model is {params_fitted['dim']}D but the box is {box.dim}D")
    if not (mass > 0 and kT > 0 and gamma > 0 and dt > 0 and n_steps >= 1):
        raise ValueError(f"need mass, kT, gamma, dt > 0 and n_steps >= 1; got {mass}, {kT}, "
                         f"{gamma}, {dt}, {n_steps}")
    rng = np.random.default_rng(seed)
    keep = np.all(np.isfinite(initial.position[0]), axis=-1)
    q = initial.position[0][keep].copy()
    n, dim = q.shape
    image = (np.zeros((n, dim), dtype=np.int64) if initial.image is None
             else initial.image[0][keep].astype(np.int64))
    sheared = box.boundary == "lees-edwards"
    rate = float(box.shear_rate) if sheared else 0.0
    u_0 = float(params_fitted.get("profile_intercept", 0.0)) if sheared else 0.0
    lo, edges = np.asarray(box.origin), np.asarray(box.edges)
    offset0 = 0.0
    if sheared and "lees_edwards_offset" in initial.observables:
        offset0 = float(initial.observables["lees_edwards_offset"][0])
    t0 = float(initial.time[0])

    def streaming(y: np.ndarray) -> np.ndarray:
        return rate * y + u_0

    overdamped = params_fitted.get("regime", "underdamped") == "overdamped"
    diffusion = float(params_fitted.get("diffusion", math.nan))
    if overdamped and not diffusion > 0:
        raise ValueError(f"overdamped Langevin fit needs a diffusion > 0, got {diffusion}")
    w = initial.velocity[0][keep].copy()
    if sheared:
        w[:, 0] -= streaming(q[:, 1])
    missing = ~np.isfinite(w)
    if not overdamped:
        w[missing] = rng.normal(0.0, math.sqrt(kT / mass), size=int(missing.sum()))

    c = _ou_step_coefficients(gamma, kT / mass, dt)
    brownian_step = math.sqrt(2.0 * diffusion * dt) if overdamped else 0.0
    positions = np.empty((n_steps + 1, n, dim))
    velocities = np.empty_like(positions)
    images = np.empty((n_steps + 1, n, dim), dtype=np.int32)
    offsets = offset0 + rate * edges[1] * dt * np.arange(n_steps + 1)

    def record(k: int) -> None:
        positions[k] = q
        velocities[k] = w
        if sheared:
            velocities[k, :, 0] += streaming(q[:, 1])
        images[k] = image

    def wrap(k: int) -> None:
        nonlocal q, image
        if not box.periodic:
            return
        if sheared:
            cross_y = np.floor((q[:, 1] - lo[1]) / edges[1]).astype(np.int64)
            q[:, 1] -= cross_y * edges[1]
            q[:, 0] -= cross_y * offsets[k]
            image[:, 1] += cross_y  # x + image_x L_x + image_y offset(t) stays continuous
        shift = np.floor((q - lo) / edges).astype(np.int64)
        q -= shift * edges
        image += shift

    wrap(0)
    record(0)
    for k in range(1, n_steps + 1):
        z_w = rng.standard_normal((n, dim))
        if overdamped:
            dq = brownian_step * z_w
        else:
            z_q = rng.standard_normal((n, dim))
            dq = w * c["drift_q"] + c["q_from_w_noise"] * z_w + c["sigma_q_rest"] * z_q
            w = w * c["e"] + c["sigma_w"] * z_w
        if sheared:
            dq[:, 0] += streaming(q[:, 1] + 0.5 * dq[:, 1]) * dt
        if overdamped:  # backward difference (peculiar part; record() adds the streaming)
            w = dq / dt
            if sheared:
                w[:, 0] -= streaming(q[:, 1] + 0.5 * dq[:, 1])
        q = q + dq
        wrap(k)
        record(k)

    finite_v = np.where(np.isfinite(velocities), velocities, 0.0)
    observables: dict[str, np.ndarray] = {
        "total_momentum": mass * finite_v.sum(axis=1),
        "total_energy": 0.5 * mass * (finite_v**2).sum(axis=(1, 2)),
    }
    if sheared:
        observables["lees_edwards_offset"] = offsets
    return Trajectory(
        position=positions,
        velocity=velocities,
        time=t0 + dt * np.arange(n_steps + 1),
        box=box,
        image=images if box.periodic else None,
        mass=mass,
        observables=observables,
        metadata={"model": "langevin", "seed": seed, "fitted": {
            k: params_fitted[k] for k in ("regime", "mass", "kT", "gamma", "diffusion",
                                          "shear_rate", "profile_intercept")
            if k in params_fitted},
            "total_energy": "kinetic energy only (no internal energy in this baseline)"},
    )


def images_by_continuity(position: np.ndarray, box: Box,
                         offset: np.ndarray | None = None) -> np.ndarray:
    """(T, N, D) image counts that make ``Trajectory.unwrapped_position`` continuous.

    For wrapped positions without images (snapshot datasets): between frames each particle
    moves less than half a box edge, so the nearest image of its previous unwrapped position
    is the right one. Lees-Edwards: a y crossing (|Δy| ~ L_y) changes image_y first, and the
    x image then absorbs the accumulated offset. Absent (NaN) frames keep the last images.
    """
    n_frames = position.shape[0]
    edges = np.asarray(box.edges)
    sheared = box.boundary == "lees-edwards"
    image = np.zeros(position.shape, dtype=np.int64)
    previous = np.nan_to_num(position[0])
    for t in range(1, n_frames):
        img = image[t - 1].copy()
        ok = np.all(np.isfinite(position[t]), axis=-1)
        q = np.where(ok[:, None], position[t], 0.0)
        if sheared:  # y first: the x image depends on image_y through the offset
            img[:, 1] = np.where(ok, np.rint((previous[:, 1] - q[:, 1]) / edges[1]),
                                 img[:, 1]).astype(np.int64)
        unwrapped = q + img * edges
        if sheared:
            unwrapped[:, 0] += img[:, 1] * offset[t]
        shift = np.where(ok[:, None], np.rint((previous - unwrapped) / edges), 0).astype(np.int64)
        img += shift
        image[t] = img
        previous = np.where(ok[:, None], unwrapped + shift * edges, previous)
    return image


def load_trajectories(path: Path, split: str = "train") -> list[Trajectory]:
    """Trajectories of a snapshot dataset's ``split`` (ddpd.coarse.dataset file), or the one
    trajectory of a ddpd H5MD file.

    Dataset trajectories get images by continuity (``images_by_continuity``), the mass of
    the dataset statistics and the observables ``lees_edwards_offset`` and ``exterior``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset or trajectory file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not an HDF5 dataset or trajectory ({exc})") from exc
    with f:
        is_dataset = "stats" in f.attrs
        if is_dataset:
            stats = json.loads(f.attrs["stats"])
            box_dict = json.loads(f.attrs["box"])
            box = Box(edges=tuple(box_dict["edges"]), boundary=box_dict["boundary"],
                      shear_rate=box_dict["shear_rate"], origin=tuple(box_dict["origin"]))
            if split not in f or len(f[split]) == 0:
                raise ValueError(f"{path}: dataset has no trajectories in split {split!r}")
            trajs = []
            for key in sorted(f[split], key=int):
                g = f[split][key]
                position, time = g["position"][()], g["time"][()]
                offset = g["offset"][()]
                observables = {"exterior": g["exterior"][()]}
                if box.boundary == "lees-edwards":
                    observables["lees_edwards_offset"] = offset
                trajs.append(Trajectory(
                    position=position, velocity=g["velocity"][()], time=time, box=box,
                    image=images_by_continuity(position, box, offset) if box.periodic else None,
                    mass=float(stats["mass"]), observables=observables,
                    metadata={"source": str(g.attrs.get("source", f"{path}:{split}/{key}"))}))
            return trajs
    return [read_trajectory(path)]


def train_langevin(dataset: Path | list[Path], out_json: Path, params: dict | None = None) -> dict:
    """Fit the baseline to a dataset file's train split (or to trajectory files); write JSON.

    Args:
        dataset: a ddpd.coarse.dataset file (its ``train`` split is used), or a list of ddpd
            H5MD trajectory files.
        out_json: fitted parameters (JSON, atomic write).
        params: section ``langevin`` (LangevinFitParams); null = defaults.
    """
    paths = [dataset] if isinstance(dataset, str | Path) else list(dataset)
    trajs = [traj for path in paths for traj in load_trajectories(Path(path), "train")]
    fitted = fit_langevin(trajs, params)
    fitted["trained_on"] = [str(path) for path in paths]
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(fitted, indent=1))
    return fitted


def _totals(velocity: np.ndarray, mass: float) -> dict[str, np.ndarray]:
    finite = np.where(np.isfinite(velocity), velocity, 0.0)
    return {"total_momentum": mass * finite.sum(axis=1),
            "total_energy": 0.5 * mass * (finite**2).sum(axis=(1, 2))}


def rollout_from(fitted: dict, traj: Trajectory, p: LangevinRolloutParams, seed: int
                 ) -> Trajectory:
    """One rollout from frame ``p.start_frame`` of ``traj``, saved every ``p.save_every`` steps.

    Open boxes (video), as for the learned model (ddpd.rollout): particles present and
    interior at the start are evolved, all others are prescribed from the data at every
    frame (absent ones NaN), so n_steps may not exceed the data left after the start.
    """
    start = p.start_frame
    if start >= traj.n_frames:
        source = traj.metadata.get("source", "the initial trajectory")
        raise ValueError(f"{ROLLOUT_SECTION}.start_frame = {start} but {source} has "
                         f"{traj.n_frames} frames")
    rest = traj.n_frames - 1 - start
    n_steps = p.n_steps if p.n_steps is not None else rest
    if n_steps < 1:
        raise ValueError(f"{ROLLOUT_SECTION}.n_steps: nothing to roll out after frame {start}")
    dt = frame_interval(traj.time, "initial trajectory") if traj.n_frames > 1 else float(
        fitted["dt"])
    frame = slice(start, start + 1)
    evolved = traj.present[start]
    is_open = traj.box.boundary == "open"
    if is_open:
        if n_steps > rest:
            raise ValueError(f"{ROLLOUT_SECTION}.n_steps {n_steps} exceeds the {rest} frames left "
                             "in the data: open boxes prescribe the other particles from data")
        exterior = traj.observables.get("exterior")
        if exterior is not None:
            evolved = evolved & ~np.asarray(exterior[start], dtype=bool)
    initial = Trajectory(
        position=traj.position[frame][:, evolved], velocity=traj.velocity[frame][:, evolved],
        time=traj.time[frame], box=traj.box, mass=traj.mass,
        image=None if traj.image is None else traj.image[frame][:, evolved],
        observables={k: v[frame] for k, v in traj.observables.items() if np.ndim(v) == 1})
    rolled = rollout_langevin(fitted, initial, n_steps, dt, seed)
    if is_open:
        window = slice(start, start + n_steps + 1)
        position, velocity = traj.position[window].copy(), traj.velocity[window].copy()
        position[:, evolved], velocity[:, evolved] = rolled.position, rolled.velocity
        observables = {**_totals(velocity, rolled.mass),
                       "evolved": np.broadcast_to(evolved, position.shape[:2]).copy()}
        rolled = Trajectory(position=position, velocity=velocity, time=rolled.time,
                            box=traj.box, mass=rolled.mass, observables=observables,
                            metadata=rolled.metadata)
    keep = slice(None, None, p.save_every)
    rolled.metadata.update(source=str(traj.metadata.get("source", "")), start_frame=start,
                           n_steps=n_steps, dt=dt, save_every=p.save_every, kind="rollout")
    return Trajectory(
        position=rolled.position[keep], velocity=rolled.velocity[keep], time=rolled.time[keep],
        step=np.arange(n_steps + 1)[keep], box=rolled.box,
        image=None if rolled.image is None else rolled.image[keep], mass=rolled.mass,
        observables={k: v[keep] for k, v in rolled.observables.items()},
        metadata=rolled.metadata)


def rollout_langevin_file(fitted_json: Path, dataset: Path, params: dict | None,
                          out: Path) -> None:
    """Roll the fitted baseline out from test initial states and write H5MD (atomic).

    Args:
        fitted_json: output of ``train_langevin``.
        dataset: a ddpd.coarse.dataset file (rollout k starts from test trajectory k, seed
            ``seed + k``) or one H5MD trajectory file (the initial state).
        params: the ``rollout`` section (LangevinRolloutParams).
        out: one file if n_rollouts == 1, else a folder of rollout_000.h5, ... (as ddpd.rollout).
    """
    p = parse_params(LangevinRolloutParams, params, ROLLOUT_SECTION)
    fitted_json = Path(fitted_json)
    if not fitted_json.is_file():
        raise FileNotFoundError(f"fitted Langevin parameters not found: {fitted_json}")
    fitted = json.loads(fitted_json.read_text())
    trajs = load_trajectories(Path(dataset), "test")
    if len(trajs) < p.n_rollouts:
        raise ValueError(f"{ROLLOUT_SECTION}.n_rollouts {p.n_rollouts} exceeds the {len(trajs)} "
                         f"test trajectories of {dataset}")
    rollouts = [rollout_from(fitted, trajs[k], p, p.seed + k) for k in range(p.n_rollouts)]
    out = Path(out)
    if p.n_rollouts == 1:
        write_trajectory(out, rollouts[0], overwrite=True)
        return
    write_trajectory_folder(out, rollouts)
