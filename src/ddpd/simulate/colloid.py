"""Dense 2D bidisperse colloidal suspension with a dragged probe, run with LAMMPS.

The "truth" behind the synthetic microscopy videos. LJ units (sigma = diameter of the
small particles, epsilon = k_B T at temperature 1, m = mass of a small particle).

* Particles of diameters d_1, d_2 (default 1.0 and 1.4, 50:50 by number; the classic
  bidisperse glass former, e.g. Perera & Harrowell, J. Chem. Phys. 111, 5441 (1999))
  at area fraction phi = sum_i pi d_i^2 / 4 / (L_x L_y), probe included.
* Pair repulsion: WCA scaled to the contact distance sigma_ij = (d_i + d_j) / 2,
  U(r) = 4 [(sigma_ij/r)^12 - (sigma_ij/r)^6] + 1 for r < 2^(1/6) sigma_ij.
* Dynamics: underdamped Langevin (``fix langevin`` + ``fix nve``, ``fix enforce2d``),
  m_i = d_i^2 (equal areal mass density) and Stokes friction gamma_i = gamma d_i, so the
  free diffusion coefficient is D_i = k_B T / (gamma d_i).
* Local driver: one probe of diameter ``probe_diameter`` moved at constant velocity
  ``probe_speed`` along x (``fix move linear``), from the start of equilibration on; it
  pushes the suspension aside and causes rearrangements. probe_speed = 0: a fixed
  obstacle.

Output velocities are backward differences of unwrapped positions over one dump interval,
v(t) = [q(t) - q(t - dt_dump)] / dt_dump, which is what video tracking can measure; the
instantaneous ones are kept as observable ``instantaneous_velocity``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddpd.io import Trajectory, write_trajectory
from ddpd.simulate import engine
from ddpd.simulate.params import is_int, is_number, parse_params, require, steps_of
from ddpd.space.box import Box

SECTION = "simulate_colloid"
WCA_FACTOR = 2.0 ** (1.0 / 6.0)
SOFT_PREFACTOR = 30.0
MAX_FRAME_DISPLACEMENT = 0.1  # per-frame RMS displacement / mean spacing


@dataclass(frozen=True)
class ColloidParams:
    """Parameters of :func:`run_colloid` (config section ``simulate_colloid``). LJ units.

    Attributes:
        n_particles: number of suspension particles (probe excluded), >= 2. Default 600.
        area_fraction: area fraction phi of all disks (probe included), in (0, 0.85].
            Default 0.75.
        diameters: the two particle diameters [d_1, d_2], sigma. Default [1.0, 1.4].
        number_ratio: number fraction of particles of diameter d_1, in [0, 1].
            Default 0.5.
        temperature: k_B T / epsilon. Default 1.0.
        friction: Langevin friction gamma of a d = 1 particle (m tau^-1); gamma_i =
            gamma d_i. Default 10.
        dt: time step, tau. Default 0.005.
        push_off_time: overlap removal (soft ramp, then WCA with limited steps), tau.
            Default 5.
        equilibration_time: driven equilibration before recording, tau. Default 50.
        production_time: recorded duration, tau. Default 50.
        dump_interval: time between frames, tau; a multiple of dt; particles must move
            less than 0.1 mean spacing (RMS) per frame. Default 0.05.
        probe_diameter: diameter of the dragged probe, sigma. Default 3.0.
        probe_speed: probe velocity along x, sigma / tau; 0 = fixed obstacle.
            Default 0.5.
    """

    n_particles: int = 600
    area_fraction: float = 0.75
    diameters: list[float] = field(default_factory=lambda: [1.0, 1.4])
    number_ratio: float = 0.5
    temperature: float = 1.0
    friction: float = 10.0
    dt: float = 0.005
    push_off_time: float = 5.0
    equilibration_time: float = 50.0
    production_time: float = 50.0
    dump_interval: float = 0.05
    probe_diameter: float = 3.0
    probe_speed: float = 0.5

    def __post_init__(self) -> None:
        s = SECTION
        require(is_int(self.n_particles) and self.n_particles >= 2, s, "n_particles",
                "an integer >= 2", self.n_particles)
        d = self.diameters
        require(isinstance(d, (list, tuple)) and len(d) == 2 and all(is_number(x) and x > 0
                                                                     for x in d),
                s, "diameters", "two positive diameters [d_1, d_2]", d)
        object.__setattr__(self, "diameters", [float(x) for x in d])
        for key in ("area_fraction", "number_ratio", "temperature", "friction", "dt",
                    "push_off_time", "equilibration_time", "production_time",
                    "dump_interval", "probe_diameter", "probe_speed"):
            value = getattr(self, key)
            require(is_number(value), s, key, "a finite number", value)
        require(0 < self.area_fraction <= 0.85, s, "area_fraction",
                "an area fraction in (0, 0.85] (denser packings cannot be built)",
                self.area_fraction)
        require(0 <= self.number_ratio <= 1, s, "number_ratio", "a fraction in [0, 1]",
                self.number_ratio)
        for key in ("temperature", "friction", "dt", "push_off_time", "dump_interval",
                    "probe_diameter"):
            value = getattr(self, key)
            require(value > 0, s, key, "a positive number", value)
        require(self.equilibration_time >= 0, s, "equilibration_time", "a time >= 0",
                self.equilibration_time)
        require(self.probe_speed >= 0, s, "probe_speed", "a speed >= 0", self.probe_speed)
        require(self.production_time >= self.dump_interval, s, "production_time",
                "at least one dump_interval", self.production_time)
        steps_of(self.dump_interval, self.dt, s, "dump_interval")
        steps_of(self.production_time, self.dump_interval, s, "production_time")

    @property
    def counts(self) -> tuple[int, int]:
        n1 = int(round(self.number_ratio * self.n_particles))
        return n1, self.n_particles - n1

    @property
    def box_length(self) -> float:
        n1, n2 = self.counts
        d1, d2 = self.diameters
        area = math.pi / 4 * (n1 * d1**2 + n2 * d2**2 + self.probe_diameter**2)
        return math.sqrt(area / self.area_fraction)

    @property
    def spacing(self) -> float:
        """Mean interparticle spacing sqrt(A / N), sigma (probe counted)."""
        return self.box_length / math.sqrt(self.n_particles + 1)


def free_rms_displacement(time: float, temperature: float, mass: float, friction: float,
                          dim: int = 2) -> float:
    """RMS displacement of a free Langevin particle after ``time`` (Ornstein-Uhlenbeck):
    <dr^2> = 2 dim D [t - tau_m (1 - exp(-t / tau_m))], D = k_B T / gamma, tau_m = m / gamma.
    An upper bound for caged particles in a dense suspension."""
    diffusion = temperature / friction
    tau_m = mass / friction
    msd = 2 * dim * diffusion * (time - tau_m * (1.0 - math.exp(-time / tau_m)))
    return math.sqrt(msd)


def check_frame_displacement(p: ColloidParams) -> None:
    """Raise ValueError unless particles move < 0.1 mean spacing per frame (free-particle
    estimate for each species; the probe's drag distance per frame)."""
    limit = MAX_FRAME_DISPLACEMENT * p.spacing
    for d in p.diameters:
        rms = free_rms_displacement(p.dump_interval, p.temperature, d**2, p.friction * d)
        if rms >= limit:
            raise ValueError(
                f"{SECTION}.dump_interval: free particles (d = {d}) move {rms:.3g} sigma RMS per "
                f"frame, more than {MAX_FRAME_DISPLACEMENT} x spacing = {limit:.3g}; expected a "
                "smaller dump_interval (or larger friction)")
    if p.probe_speed * p.dump_interval >= limit:
        raise ValueError(
            f"{SECTION}.probe_speed: the probe moves {p.probe_speed * p.dump_interval:.3g} sigma "
            f"per frame, more than {MAX_FRAME_DISPLACEMENT} x spacing = {limit:.3g}; expected a "
            "smaller probe_speed or dump_interval")


def build_colloid(p: ColloidParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random initial positions (N + 1, 2) in [0, L)^2 and types (1: d_1, 2: d_2,
    3: probe, last). Overlaps are removed by the push-off."""
    n1, n2 = p.counts
    n = p.n_particles + 1
    position = rng.uniform(0.0, p.box_length, size=(n, 2))
    types = np.concatenate([np.full(n1, 1), np.full(n2, 2), [3]])
    order = rng.permutation(p.n_particles)  # mix species along the id order
    types[: p.n_particles] = types[: p.n_particles][order]
    return position, types


def _write_data_file(path: Path, position: np.ndarray, types: np.ndarray, box: float,
                     masses: list[float]) -> None:
    lines = ["ddpd 2D bidisperse suspension with probe", "", f"{len(position)} atoms",
             "3 atom types", "", f"0.0 {box:.17g} xlo xhi", f"0.0 {box:.17g} ylo yhi",
             "-0.5 0.5 zlo zhi", "", "Masses", ""]
    lines += [f"{t} {m:.17g}" for t, m in enumerate(masses, start=1)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i} {t} {x:.17g} {y:.17g} 0.0"
              for i, (t, (x, y)) in enumerate(zip(types, position, strict=True), start=1)]
    path.write_text("\n".join(lines) + "\n")


def simulate_colloid(params: dict, log: Path, seed: int,
                     on_frame: Callable[[Any, dict[str, Any]], None] | None = None
                     ) -> Trajectory:
    """Run the suspension and return its truth trajectory (see :func:`run_colloid`).

    ``on_frame(lmp, frame)`` is called at each recorded frame with the LAMMPS instance and
    ``time``, ``unwrapped`` (N + 1, 2) (for tests and diagnostics); it may read LAMMPS but
    not change it (the recorded runs skip LAMMPS's set-up, :func:`engine.frame_run`).
    """
    p = parse_params(ColloidParams, params, SECTION)
    require(is_int(seed) and seed >= 0, SECTION, "seed", "an integer >= 0", seed)
    check_frame_displacement(p)
    rng = np.random.default_rng(seed)
    lammps_seeds = [int(s) for s in rng.integers(1, 900_000_000, size=3)]  # Marsaglia RNG limit
    position, types = build_colloid(p, rng)
    diam = [p.diameters[0], p.diameters[1], p.probe_diameter]
    masses = [d**2 for d in diam]
    box = p.box_length
    n_push = max(1, steps_of(p.push_off_time, p.dt, SECTION, "push_off_time") // 2)
    n_equil = round(p.equilibration_time / p.dt)
    n_dump = steps_of(p.dump_interval, p.dt, SECTION, "dump_interval")
    n_frames = round(p.production_time / p.dump_interval) + 1
    damp = 1.0 / p.friction  # m / gamma of a d = 1 particle; scaled by d per type below
    pairs = [(i, j) for i in range(1, 4) for j in range(i, 4)]
    soft = [f"pair_coeff {i} {j} 0.0 {0.5 * (diam[i - 1] + diam[j - 1]):.17g}"
            for i, j in pairs]
    wca = []
    for i, j in pairs:
        sigma = 0.5 * (diam[i - 1] + diam[j - 1])
        wca.append(f"pair_coeff {i} {j} 1.0 {sigma:.17g} {WCA_FACTOR * sigma:.17g}")
    scale = " ".join(f"scale {t} {diam[t - 1]:.17g}" for t in (1, 2))

    lmp = engine.create_lammps(log)
    try:
        with tempfile.TemporaryDirectory(prefix="ddpd-colloid-") as tmp:
            data = Path(tmp) / "colloid.data"
            _write_data_file(data, position, types, box, masses)
            engine.commands(lmp, ["units lj", "dimension 2", "atom_style atomic",
                                  "atom_modify map array", "boundary p p p",
                                  f"read_data {data}"])
        engine.commands(lmp, [
            "group probe type 3",
            "group suspension type 1 2",
            f"neighbor {0.3 * max(diam[:2]):.17g} bin",
            "neigh_modify every 1 delay 0 check yes",
            f"timestep {p.dt}",
            "thermo_style custom step temp pe press",
            f"thermo {max(1, 20 * n_dump)}",
            "thermo_modify lost error flush yes",
            # 1) soft push-off with the probe held in place
            f"pair_style soft {max(diam):.17g}",
            *soft,
            f"variable soft_a equal ramp(0.0,{SOFT_PREFACTOR})",
            "fix push all adapt 1 pair soft a * * v_soft_a",
            f"velocity suspension create {p.temperature} {lammps_seeds[0]} dist gaussian",
            "fix limit suspension nve/limit 0.02",
            f"fix bath suspension langevin {p.temperature} {p.temperature} {damp:.17g} "
            f"{lammps_seeds[1]} {scale}",
            "fix flat all enforce2d",  # enforce2d must come after the force-changing fixes
            f"run {n_push}",
            "unfix push",
            # 2) WCA repulsion, still with limited steps
            f"pair_style lj/cut {WCA_FACTOR * max(diam):.17g}",
            *wca,
            "pair_modify shift yes",
            f"run {n_push}",
            "unfix limit",
            "unfix flat",
            # 3) Langevin dynamics, probe dragged at constant velocity
            "fix integrate suspension nve",
            f"fix drag probe move linear {p.probe_speed:.17g} 0.0 0.0",
            "fix flat all enforce2d",
            "compute unwrapped all property/atom xu yu",
        ])
        if n_equil > 0:
            engine.command(lmp, f"run {n_equil}")
        engine.command(lmp, engine.frame_run(n_dump))  # the frame before t = 0
        previous = engine.gather(lmp, "c_unwrapped", 2)
        n_atoms = p.n_particles + 1
        positions, velocities, instantaneous, images = [], [], [], []
        for frame in range(n_frames):
            engine.command(lmp, engine.frame_run(n_dump))
            if lmp.get_natoms() != n_atoms:
                raise engine.LammpsError(
                    f"LAMMPS lost atoms ({lmp.get_natoms()} of {n_atoms} left; "
                    f"LAMMPS log: {engine.log_path(lmp)})")
            unwrapped = engine.gather(lmp, "c_unwrapped", 2)
            if on_frame is not None:
                on_frame(lmp, {"time": frame * n_dump * p.dt, "unwrapped": unwrapped})
            image = np.floor(unwrapped / box).astype(np.int64)
            positions.append(unwrapped - image * box)
            images.append(image)
            velocities.append((unwrapped - previous) / (n_dump * p.dt))
            instantaneous.append(engine.gather(lmp, "v", 3)[:, :2])
            previous = unwrapped
        version = engine.lammps_version(lmp)
    finally:
        engine.close(lmp)

    velocity = np.asarray(velocities)
    rms = np.sqrt(np.mean(np.sum((velocity[:, :-1] * p.dump_interval) ** 2, axis=-1), axis=1))
    limit = MAX_FRAME_DISPLACEMENT * p.spacing
    if rms.max() >= limit:
        raise ValueError(
            f"{SECTION}.dump_interval: particles moved {rms.max():.3g} sigma RMS in one frame, "
            f"more than {MAX_FRAME_DISPLACEMENT} x spacing = {limit:.3g}; expected a smaller "
            "dump_interval")
    position = np.asarray(positions)
    position = np.where(position >= box, position - box, position)
    diameter = np.asarray([diam[t - 1] for t in types])
    metadata = {
        "units": "lj",
        "params": asdict(p),
        "seed": int(seed),
        "probe": int(p.n_particles),
        "spacing": p.spacing,
        "max_rms_frame_displacement": float(rms.max()),
        "lammps_version": version,
        "velocity": "backward difference of unwrapped positions over dump_interval",
        "time_origin": "start of production",
    }
    return Trajectory(
        position=position,
        velocity=velocity,
        time=np.arange(n_frames) * n_dump * p.dt,
        step=np.arange(n_frames) * n_dump,
        image=np.asarray(images),
        box=Box((box, box), "periodic"),
        mass=1.0,
        observables={
            "diameter": np.broadcast_to(diameter, (n_frames, n_atoms)).copy(),
            "instantaneous_velocity": np.asarray(instantaneous),
        },
        metadata=metadata,
    )


def run_colloid(params: dict, out: Path, log: Path, seed: int) -> None:
    """Simulate the driven 2D suspension and write its truth trajectory (LJ units).

    Args:
        params: config section ``simulate_colloid`` (keys of :class:`ColloidParams`).
        out: H5MD trajectory (written atomically; nothing is left on failure).
        log: LAMMPS log file.
        seed: seed of the initial positions and of all LAMMPS random streams.

    Output: positions (T, N + 1, 2) wrapped into the periodic box, image counts,
    velocities = backward differences over ``dump_interval``; observables ``diameter``
    (T, N + 1) and ``instantaneous_velocity`` (T, N + 1, 2); metadata ``probe`` (index of
    the probe, the last particle), ``params``, ``seed``. Particle masses are d^2 (the
    trajectory's scalar ``mass`` is that of a d = 1 particle).

    Raises:
        ValueError: bad parameters (before LAMMPS starts) or frames too far apart.
        LammpsError: LAMMPS failed; the message names the LAMMPS log file.
    """
    traj = simulate_colloid(params, Path(log), seed)
    write_trajectory(Path(out), traj, overwrite=True)
