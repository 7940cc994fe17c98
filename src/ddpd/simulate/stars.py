"""Kremer-Grest star polymers (melt or explicit solvent) run with LAMMPS, coarse-grained
on the fly to star centres of mass.

Model (Kremer & Grest, J. Chem. Phys. 92, 5057 (1990); Grest, Kremer & Witten,
Macromolecules 20, 1376 (1987) for stars), LJ units (sigma = epsilon = m = k_B = 1):

* every bead pair: WCA, U(r) = 4 [(1/r)^12 - (1/r)^6] + 1 for r < 2^(1/6);
* bonds (core-arm and along arms): FENE, U(r) = -0.5 K R0^2 ln(1 - (r/R0)^2) + WCA,
  K = 30, R0 = 1.5; ``special_bonds fene`` (bonded pairs interact through the bond only);
* solvent: single WCA beads (``solvent_fraction`` of all beads);
* thermostat: DPD dissipative + random pair forces only (``pair dpd/tstat``; Soddemann,
  Duenweg & Kremer, Phys. Rev. E 68, 046702 (2003)): pairwise, so total momentum is
  conserved and the thermostat is Galilean invariant (works under shear);
* steady shear (rate gamma_dot > 0): triclinic box deformed at constant xy engineering
  rate with velocity remapping across y (``fix deform ... remap v``): Lees-Edwards
  boundaries, flow u_x = gamma_dot (y - L_y / 2) started with that profile.

Protocol: random-walk arms from random centres -> soft push-off (``pair soft`` with a
ramped prefactor, limited NVE + Langevin) -> WCA relaxation (limited NVE + Langevin) ->
equilibration (NVE + DPD thermostat, shear switched on) -> production, where every
``dump_interval`` the bead state is gathered and reduced to one coarse particle per star.

Lees-Edwards representation of the output: LAMMPS flips the tilted box whenever the
tilt passes half the box, so we keep the *accumulated* offset
delta_x(t) = gamma_dot L_y t_shear ourselves (t_shear: time since shear started) and map
the continuous unwrapped star centre U into wrapped coordinates and image counts with
U = (x + i_x L_x + i_y delta_x, y + i_y L_y, z + i_z L_z); velocities are given in the
frame of the wrapped position (v_x jumps by gamma_dot L_y per y image).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddpd.io import Trajectory, write_trajectory
from ddpd.simulate import engine
from ddpd.simulate.params import is_int, is_number, parse_params, require, steps_of
from ddpd.space.box import Box

SECTION = "simulate_stars"
WCA_CUTOFF = 2.0 ** (1.0 / 6.0)
FENE_K = 30.0
FENE_R0 = 1.5
BOND_LENGTH = 0.97  # initial bond length of the random-walk arms (sigma)
SOFT_PREFACTOR = 60.0  # final prefactor A of the soft push-off, U = A (1 + cos(pi r / rc))
MAX_BEAD_DENSITY = 1.2
# (T, n_stars) observables of every star run (see star_observables)
PER_STAR_OBSERVABLES = ("rg2", "asphericity", "end_to_end", "internal_kinetic_energy",
                        "potential_energy", "internal_energy")


@dataclass(frozen=True)
class StarParams:
    """Parameters of :func:`run_stars` (config section ``simulate_stars``). LJ units.

    Attributes:
        arms: number of arms per star (>= 1). Default 5.
        arm_length: beads per arm, core excluded (>= 1). Default 10.
        n_stars: number of stars (>= 2). Default 40.
        bead_density: total bead number density (polymer + solvent), sigma^-3, in
            (0, 1.2]. Default 0.85 (melt density of the Kremer-Grest model).
        solvent_fraction: number fraction of single solvent beads among all beads, in
            [0, 1); 0 = melt. Default 0.
        temperature: k_B T / epsilon of the DPD thermostat. Default 1.0.
        dt: time step, tau. Default 0.01 (0.015 is unstable for this model).
        push_off_time: duration of the overlap removal (soft ramp, then WCA with
            limited displacement), tau. Default 20.
        equilibration_time: NVE + DPD thermostat (and shear) before production, tau.
            Default 500.
        production_time: recorded duration, tau; frames at 0, dump_interval, ...
            Default 500.
        dump_interval: time between recorded frames, tau; a multiple of dt. Default 1.
        dpd_gamma: DPD friction coefficient at rest, epsilon tau / sigma^2. Default 5.
        dpd_gamma_shear: DPD friction under shear (must remove viscous heat). Default 20.
        dpd_cutoff: DPD thermostat cutoff, sigma. Default 2^(1/6).
    """

    arms: int = 5
    arm_length: int = 10
    n_stars: int = 40
    bead_density: float = 0.85
    solvent_fraction: float = 0.0
    temperature: float = 1.0
    dt: float = 0.01
    push_off_time: float = 20.0
    equilibration_time: float = 500.0
    production_time: float = 500.0
    dump_interval: float = 1.0
    dpd_gamma: float = 5.0
    dpd_gamma_shear: float = 20.0
    dpd_cutoff: float = WCA_CUTOFF

    def __post_init__(self) -> None:
        s = SECTION
        for key in ("arms", "arm_length", "n_stars"):
            value = getattr(self, key)
            require(is_int(value) and value >= 1, s, key, "a positive integer", value)
        require(self.n_stars >= 2, s, "n_stars", "at least 2 stars", self.n_stars)
        for key in ("bead_density", "solvent_fraction", "temperature", "dt", "push_off_time",
                    "equilibration_time", "production_time", "dump_interval", "dpd_gamma",
                    "dpd_gamma_shear", "dpd_cutoff"):
            value = getattr(self, key)
            require(is_number(value), s, key, "a finite number", value)
        require(0 < self.bead_density <= MAX_BEAD_DENSITY, s, "bead_density",
                f"a density in (0, {MAX_BEAD_DENSITY}] (denser systems cannot be built)",
                self.bead_density)
        require(0 <= self.solvent_fraction < 1, s, "solvent_fraction", "a fraction in [0, 1)",
                self.solvent_fraction)
        for key in ("temperature", "dt", "push_off_time", "dump_interval", "dpd_gamma",
                    "dpd_gamma_shear", "dpd_cutoff"):
            value = getattr(self, key)
            require(value > 0, s, key, "a positive number", value)
        require(self.dt <= 0.02, s, "dt", "a time step <= 0.02 tau (the model is stiff)",
                self.dt)
        require(self.equilibration_time >= 0, s, "equilibration_time", "a time >= 0",
                self.equilibration_time)
        require(self.production_time >= self.dump_interval, s, "production_time",
                "at least one dump_interval", self.production_time)
        require(self.dpd_cutoff >= 1.0, s, "dpd_cutoff", "a cutoff >= 1 sigma", self.dpd_cutoff)
        steps_of(self.dump_interval, self.dt, s, "dump_interval")
        steps_of(self.production_time, self.dump_interval, s, "production_time")

    @property
    def beads_per_star(self) -> int:
        return 1 + self.arms * self.arm_length

    @property
    def n_polymer_beads(self) -> int:
        return self.n_stars * self.beads_per_star

    @property
    def n_solvent_beads(self) -> int:
        phi = self.solvent_fraction
        return int(round(self.n_polymer_beads * phi / (1.0 - phi)))

    @property
    def n_beads(self) -> int:
        return self.n_polymer_beads + self.n_solvent_beads

    @property
    def box_length(self) -> float:
        return (self.n_beads / self.bead_density) ** (1.0 / 3.0)


@dataclass(frozen=True)
class StarSystem:
    """Initial configuration built in Python.

    Attributes:
        position: (N, 3) unwrapped bead positions; stars first (core, then arm 0 beads
            from the core outwards, arm 1, ...), solvent last.
        molecule: (N,) star index + 1 (0 for solvent).
        bonds: (M, 2) zero-based bead indices of FENE bonds.
        box_length: edge of the cubic box, sigma.
    """

    position: np.ndarray
    molecule: np.ndarray
    bonds: np.ndarray
    box_length: float


def build_stars(p: StarParams, rng: np.random.Generator) -> StarSystem:
    """Random stars (cores uniform in the box, arms as random walks of bond length 0.97)
    plus uniformly placed solvent beads; overlaps are removed later by the push-off."""
    box = p.box_length
    bps = p.beads_per_star
    cores = rng.uniform(0.0, box, size=(p.n_stars, 3))
    steps = rng.normal(size=(p.n_stars, p.arms, p.arm_length, 3))
    steps *= BOND_LENGTH / np.linalg.norm(steps, axis=-1, keepdims=True)
    arms = cores[:, None, None, :] + np.cumsum(steps, axis=2)
    stars = np.concatenate([cores[:, None, :], arms.reshape(p.n_stars, -1, 3)], axis=1)
    solvent = rng.uniform(0.0, box, size=(p.n_solvent_beads, 3))
    position = np.concatenate([stars.reshape(-1, 3), solvent], axis=0)
    molecule = np.concatenate([np.repeat(np.arange(1, p.n_stars + 1), bps),
                               np.zeros(p.n_solvent_beads, dtype=np.int64)])
    # bonds within one star: core-first bead of each arm, then along each arm
    local = []
    for arm in range(p.arms):
        first = 1 + arm * p.arm_length
        local.append((0, first))
        local.extend((first + k, first + k + 1) for k in range(p.arm_length - 1))
    local = np.asarray(local, dtype=np.int64)
    bonds = (local[None, :, :] + bps * np.arange(p.n_stars)[:, None, None]).reshape(-1, 2)
    return StarSystem(position=position, molecule=molecule, bonds=bonds, box_length=box)


def write_data_file(path: Path, system: StarSystem, triclinic: bool) -> None:
    """LAMMPS data file (atom_style bond): one atom type, one bond type, cubic box
    [0, L)^3 (with zero tilt if ``triclinic``), atoms wrapped with image flags."""
    box = system.box_length
    image = np.floor(system.position / box).astype(np.int64)
    wrapped = system.position - image * box
    wrapped = np.where(wrapped >= box, 0.0, wrapped)  # guard round-off at the upper edge
    n_atoms = len(wrapped)
    lines = [
        "ddpd star polymers (Kremer-Grest)",
        "",
        f"{n_atoms} atoms",
        f"{len(system.bonds)} bonds",
        "1 atom types",
        "1 bond types",
        "",
        f"0.0 {box:.17g} xlo xhi",
        f"0.0 {box:.17g} ylo yhi",
        f"0.0 {box:.17g} zlo zhi",
    ]
    if triclinic:
        lines.append("0.0 0.0 0.0 xy xz yz")
    lines += ["", "Masses", "", "1 1.0", "", "Atoms # bond", ""]
    ids = np.arange(1, n_atoms + 1)
    atoms = [
        f"{i} {m} 1 {x:.17g} {y:.17g} {z:.17g} {ix} {iy} {iz}"
        for i, m, (x, y, z), (ix, iy, iz) in zip(ids, system.molecule, wrapped, image,
                                                 strict=True)
    ]
    bonds = [f"{k} 1 {a + 1} {b + 1}" for k, (a, b) in enumerate(system.bonds, start=1)]
    path.write_text("\n".join(lines + atoms + ["", "Bonds", ""] + bonds) + "\n")


def lees_edwards_wrap(unwrapped: np.ndarray, edges: np.ndarray, offset: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Wrapped positions and image counts of unwrapped positions (..., 3) in a box
    [0, L) with Lees-Edwards offset ``offset`` (0 = periodic):
    U = (x + i_x L_x + i_y offset, y + i_y L_y, z + i_z L_z)."""
    image = np.zeros(unwrapped.shape, dtype=np.int64)
    wrapped = unwrapped.copy()
    image[..., 1] = np.floor(unwrapped[..., 1] / edges[1])
    wrapped[..., 1] -= image[..., 1] * edges[1]
    wrapped[..., 0] -= image[..., 1] * offset
    for axis in (0, 2):
        image[..., axis] = np.floor(wrapped[..., axis] / edges[axis])
        wrapped[..., axis] -= image[..., axis] * edges[axis]
    wrapped = np.where(wrapped >= edges, wrapped - edges, wrapped)  # round-off at L
    return wrapped, image


def star_observables(position: np.ndarray, velocity: np.ndarray, arms: int, arm_length: int,
                     bead_potential_energy: np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
    """Per-star centre of mass, shape and energy of unwrapped bead data.

    Args:
        position: (n_stars, beads_per_star, 3) unwrapped bead positions (equal masses).
        velocity: (n_stars, beads_per_star, 3) bead velocities in one common frame.
        bead_potential_energy: (n_stars, beads_per_star) each bead's share of the potential
            energy (LAMMPS ``compute pe/atom``: every pair and bond energy split equally
            between its two beads), or None.

    Returns (n_stars arrays): ``com`` (., 3), ``com_velocity`` (., 3), ``rg2`` =
    tr G with G = <(r - R)(r - R)^T> the gyration tensor, ``asphericity`` b =
    lambda_1 - (lambda_2 + lambda_3) / 2 with lambda_1 >= lambda_2 >= lambda_3 the
    eigenvalues of G (Theodorou & Suter, Macromolecules 18, 1206 (1985)), ``end_to_end``
    = mean core-to-arm-end distance, ``internal_kinetic_energy`` = sum_b |v_b - V|^2 / 2;
    with ``bead_potential_energy``: ``potential_energy`` = the star's share sum_b e_b (the
    shares of all beads add up to the system's potential energy) and ``internal_energy`` =
    internal kinetic + potential energy, the star's energy less its centre-of-mass kinetic
    energy (so that sum_i (M |V_i|^2 / 2 + internal_energy_i) plus the solvent's energy is
    the total energy). Energies in epsilon (LJ units, bead mass 1).
    """
    com = position.mean(axis=1)
    com_velocity = velocity.mean(axis=1)
    rel = position - com[:, None, :]
    gyration = np.einsum("sbi,sbj->sij", rel, rel) / position.shape[1]
    eig = np.linalg.eigvalsh(gyration)  # ascending
    ends = position[:, arm_length::arm_length][:, :arms]
    end_to_end = np.linalg.norm(ends - position[:, :1], axis=-1).mean(axis=1)
    internal = 0.5 * np.sum((velocity - com_velocity[:, None, :]) ** 2, axis=(1, 2))
    out = {
        "com": com,
        "com_velocity": com_velocity,
        "rg2": eig.sum(axis=1),
        "asphericity": eig[:, 2] - 0.5 * (eig[:, 0] + eig[:, 1]),
        "end_to_end": end_to_end,
        "internal_kinetic_energy": internal,
    }
    if bead_potential_energy is not None:
        if bead_potential_energy.shape != position.shape[:2]:
            raise ValueError(f"bead_potential_energy has shape {bead_potential_energy.shape}, "
                             f"expected (n_stars, beads_per_star) {position.shape[:2]}")
        out["potential_energy"] = bead_potential_energy.sum(axis=1)
        out["internal_energy"] = internal + out["potential_energy"]
    return out


def thermal_temperature(position_y: np.ndarray, velocity: np.ndarray, shear_rate: float,
                        box_y: float) -> float:
    """Bead kinetic temperature with the streaming profile u_x = gamma_dot (y - L_y/2)
    and the centre-of-mass velocity removed: T = sum m |c|^2 / (3N - 3), m = 1.

    ``position_y`` and ``velocity`` must be in one frame (both unwrapped or both wrapped).
    """
    peculiar = velocity.copy()
    peculiar[:, 0] -= shear_rate * (position_y - 0.5 * box_y)
    peculiar -= peculiar.mean(axis=0)
    return float(np.sum(peculiar**2) / (3 * len(peculiar) - 3))


def input_commands(p: StarParams, data_file: Path, seeds: list[int], shear_rate: float
                   ) -> list[str]:
    """LAMMPS input from reading the data file through push-off to the start of
    equilibration (NVE + DPD thermostat, shear deformation if ``shear_rate`` > 0).

    Also usable as a stand-alone input script (benchmarks, MPI runs with ``lmp``).
    ``seeds``: three positive integers < 9e8 (velocities, Langevin, DPD).
    """
    temp = p.temperature
    gamma = p.dpd_gamma_shear if shear_rate > 0 else p.dpd_gamma
    n_push = max(1, steps_of(p.push_off_time, p.dt, SECTION, "push_off_time") // 2)
    n_dump = steps_of(p.dump_interval, p.dt, SECTION, "dump_interval")
    lines = [
        "units lj",
        "atom_style bond",
        "atom_modify map array",
        "boundary p p p",
        f"read_data {data_file}",
        "bond_style fene",
        f"bond_coeff 1 {FENE_K} {FENE_R0} 1.0 1.0",
        "special_bonds fene",
        "neighbor 0.4 bin",
        "neigh_modify every 1 delay 0 check yes",
        "comm_modify vel yes cutoff 2.5",  # > FENE R0 + skin: bonds cross ranks
        f"timestep {p.dt}",
        "thermo_style custom step temp pe ke press pxy lx xy",
        f"thermo {max(1, 10 * n_dump)}",
        "thermo_modify lost error flush yes",
        # 1) soft push-off: prefactor ramped from 0 to SOFT_PREFACTOR
        f"pair_style soft {WCA_CUTOFF}",
        "pair_coeff * * 0.0",
        f"variable soft_a equal ramp(0.0,{SOFT_PREFACTOR})",
        "fix push all adapt 1 pair soft a * * v_soft_a",
        f"velocity all create {temp} {seeds[0]} dist gaussian mom yes rot no",
        "fix limit all nve/limit 0.05",
        f"fix bath all langevin {temp} {temp} 1.0 {seeds[1]} zero yes",
        f"run {n_push}",
        "unfix push",
        # 2) WCA + DPD thermostat pair styles; relax remaining overlaps gently
        f"pair_style hybrid/overlay lj/cut {WCA_CUTOFF} "
        f"dpd/tstat {temp} {temp} {p.dpd_cutoff} {seeds[2]}",
        f"pair_coeff * * lj/cut 1.0 1.0 {WCA_CUTOFF}",
        f"pair_coeff * * dpd/tstat {gamma} {p.dpd_cutoff}",
        "pair_modify pair lj/cut shift yes",
        f"run {n_push}",
        "unfix limit",
        "unfix bath",
        # 3) momentum-conserving dynamics from zero total momentum
        "velocity all zero linear",
    ]
    if shear_rate > 0:
        box = p.box_length
        u_max = 0.5 * shear_rate * box
        lines += [
            f"velocity all ramp vx {-u_max:.17g} {u_max:.17g} y 0.0 {box:.17g} "
            "sum yes units box",
            f"fix shear all deform 1 xy erate {shear_rate:.17g} remap v flip yes",
        ]
    lines += [
        "fix integrate all nve",
        "compute fine all property/atom xu yu zu iy",
        # each bead's share of pair + bond energy; tallied on the thermo step that ends
        # every run, i.e. on every recorded frame
        "compute bead_pe all pe/atom",
    ]
    return lines


FrameHook = Callable[[Any, dict[str, Any]], None]


def simulate_stars(params: dict, log: Path, seed: int, shear_rate: float = 0.0,
                   on_frame: FrameHook | None = None) -> Trajectory:
    """Run the star system and return its coarse trajectory (nothing is written but
    the LAMMPS log). See :func:`run_stars`.

    ``on_frame(lmp, frame)`` is called at each recorded frame with the LAMMPS instance
    and the bead data: ``time``, ``unwrapped`` (N, 3), ``velocity`` (N, 3, box frame),
    ``image_y`` (N,), ``offset``, ``edges`` (3,), ``tilt`` (for tests and diagnostics). It
    may define computes at frame 0 (the first recorded run sets LAMMPS up again) and must
    change nothing later (the later runs skip the set-up, :func:`engine.frame_run`).
    """
    p = parse_params(StarParams, params, SECTION)
    require(is_number(shear_rate) and shear_rate >= 0, SECTION, "shear_rate",
            "a shear rate >= 0 (1/tau)", shear_rate)
    require(is_int(seed) and seed >= 0, SECTION, "seed", "an integer >= 0", seed)
    sheared = shear_rate > 0
    rng = np.random.default_rng(seed)
    lammps_seeds = [int(s) for s in rng.integers(1, 900_000_000, size=4)]  # Marsaglia RNG limit
    system = build_stars(p, rng)
    gamma = p.dpd_gamma_shear if sheared else p.dpd_gamma
    n_equil = round(p.equilibration_time / p.dt)
    n_dump = steps_of(p.dump_interval, p.dt, SECTION, "dump_interval")
    n_frames = round(p.production_time / p.dump_interval) + 1

    lmp = engine.create_lammps(log)
    try:
        with tempfile.TemporaryDirectory(prefix="ddpd-stars-") as tmp:
            data = Path(tmp) / "stars.data"
            write_data_file(data, system, triclinic=sheared)
            engine.commands(lmp, input_commands(p, data, lammps_seeds, shear_rate))
        if n_equil > 0:
            engine.command(lmp, f"run {n_equil}")
        t_shear0 = n_equil * p.dt

        frames: dict[str, list] = {k: [] for k in (
            "com", "com_velocity", "image", *PER_STAR_OBSERVABLES, "fine_temperature",
            "fine_momentum", "lees_edwards_offset")}
        n_atoms = p.n_beads
        bps = p.beads_per_star
        first_step = int(lmp.get_thermo("step"))
        span = (first_step, first_step + (n_frames - 1) * n_dump)
        for frame in range(n_frames):
            if frame > 0:
                engine.command(lmp, engine.frame_run(n_dump, setup=frame == 1, span=span))
            if lmp.get_natoms() != n_atoms:
                raise engine.LammpsError(
                    f"LAMMPS lost atoms ({lmp.get_natoms()} of {n_atoms} left; "
                    f"LAMMPS log: {engine.log_path(lmp)})")
            time = frame * n_dump * p.dt
            _lo, edges, tilt = engine.box_geometry(lmp)
            offset = shear_rate * edges[1] * (t_shear0 + time)
            if sheared and not _same_modulo(offset, tilt, edges[0]):
                raise engine.LammpsError(
                    f"LAMMPS box tilt {tilt} disagrees with the accumulated Lees-Edwards "
                    f"offset {offset} (mod {edges[0]}); LAMMPS log: {engine.log_path(lmp)}")
            fine = engine.gather(lmp, "c_fine", 4)
            unwrapped = fine[:, :3]
            image_y = np.rint(fine[:, 3]).astype(np.int64)
            velocity = engine.gather(lmp, "v", 3)
            bead_pe = engine.gather(lmp, "c_bead_pe", 1)[:, 0]
            # velocity in the unwrapped (continuous) frame: add the jump per y image
            velocity_u = velocity.copy()
            velocity_u[:, 0] += image_y * shear_rate * edges[1]
            if on_frame is not None:
                on_frame(lmp, {"time": time, "unwrapped": unwrapped, "velocity": velocity,
                               "image_y": image_y, "offset": offset, "edges": edges,
                               "tilt": tilt})
            n_poly = p.n_polymer_beads
            obs = star_observables(unwrapped[:n_poly].reshape(p.n_stars, bps, 3),
                                   velocity_u[:n_poly].reshape(p.n_stars, bps, 3),
                                   p.arms, p.arm_length,
                                   bead_pe[:n_poly].reshape(p.n_stars, bps))
            com, image = lees_edwards_wrap(obs["com"], edges, offset)
            com_velocity = obs["com_velocity"].copy()
            com_velocity[:, 0] -= image[:, 1] * shear_rate * edges[1]
            frames["com"].append(com)
            frames["com_velocity"].append(com_velocity)
            frames["image"].append(image)
            for key in PER_STAR_OBSERVABLES:
                frames[key].append(obs[key])
            frames["fine_temperature"].append(
                thermal_temperature(unwrapped[:, 1], velocity_u, shear_rate, edges[1]))
            frames["fine_momentum"].append(velocity.sum(axis=0))
            frames["lees_edwards_offset"].append(offset)
        version = engine.lammps_version(lmp)
    finally:
        engine.close(lmp)

    edges_out = tuple(float(e) for e in edges)
    metadata = {
        "units": "lj",
        "params": asdict(p),
        "seed": int(seed),
        "shear_rate": float(shear_rate),
        "n_beads": p.n_beads,
        "n_polymer_beads": p.n_polymer_beads,
        "n_solvent_beads": p.n_solvent_beads,
        "beads_per_star": bps,
        "solvent_beads_per_star": p.n_solvent_beads / p.n_stars,
        "dpd_gamma_used": gamma,
        "lammps_version": version,
        "time_origin": "start of production",
        "velocity_frame": "frame of the wrapped position (Lees-Edwards jump removed)",
    }
    box_out = (Box(edges_out, "lees-edwards", float(shear_rate)) if sheared
               else Box(edges_out, "periodic"))
    observables = {k: np.asarray(frames[k]) for k in (
        *PER_STAR_OBSERVABLES, "fine_temperature", "fine_momentum", "lees_edwards_offset")}
    return Trajectory(
        position=np.asarray(frames["com"]),
        velocity=np.asarray(frames["com_velocity"]),
        time=np.arange(n_frames) * n_dump * p.dt,
        step=np.arange(n_frames) * n_dump,
        image=np.asarray(frames["image"]),
        box=box_out,
        mass=float(bps),
        observables=observables,
        metadata=metadata,
    )


def _same_modulo(a: float, b: float, period: float, tol: float = 1e-6) -> bool:
    d = (a - b) / period
    return abs(d - round(d)) * period < tol * max(1.0, abs(a))


def run_stars(params: dict, out: Path, log: Path, seed: int, shear_rate: float) -> None:
    """Simulate Kremer-Grest stars with LAMMPS and write their centre-of-mass trajectory.

    Args:
        params: config section ``simulate_stars`` (keys of :class:`StarParams`).
        out: H5MD trajectory (written atomically; nothing is left on failure).
        log: LAMMPS log file.
        seed: seed of the initial configuration and all LAMMPS random streams.
        shear_rate: gamma_dot (1/tau); 0 = at rest (periodic box), > 0 = steady shear
            in x with gradient along y (Lees-Edwards box).

    Output (LJ units, time from the start of production): positions (T, n_stars, 3)
    wrapped, image counts, centre-of-mass velocities, mass = beads per star; observables
    ``rg2``, ``asphericity``, ``end_to_end``, ``internal_kinetic_energy``,
    ``potential_energy``, ``internal_energy`` (T, n_stars; see :func:`star_observables`),
    ``fine_temperature``, ``lees_edwards_offset`` (T,), ``fine_momentum`` (T, 3).
    ``fine_temperature`` removes the streaming profile and the total-momentum drift
    (3N - 3 degrees of freedom); ``fine_momentum`` is the sum of the bead velocities as
    LAMMPS holds them (each in the frame of its wrapped position): exactly conserved at
    rest; under shear it changes whenever a bead crosses the y boundary (Lees-Edwards
    momentum exchange) and fluctuates around zero.

    Raises:
        ValueError: bad parameters (before LAMMPS starts), naming the key.
        LammpsError: LAMMPS failed; the message names the LAMMPS log file.
    """
    traj = simulate_stars(params, Path(log), seed, shear_rate)
    write_trajectory(Path(out), traj, overwrite=True)
