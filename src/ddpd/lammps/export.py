"""Tabulated learned functions and a numpy evaluator of the drift (the DPD-like inference path).

A trained :class:`ddpd.model.metriplectic.MetriplecticModel` has three learned functions of one
or two scalar inputs (shared/method.md §1):

* the kernel w(s), s = r/h in [0, 1], and its slope dw/dr = (dw/ds)/h;
* the internal energy U(S, V) with T = dU/dS, P = -dU/dV and dT/dS = d^2U/dS^2;
* the per-particle friction factors a, b, c of (s, T) and their slopes d/dT (the pair
  amplitudes are A_ij = a(s, T_i) a(s, T_j) (1 - s^2), the same for B and C).

:func:`export_tables` evaluates them with the network (autograd derivatives, float64) on
uniform grids and stores them in one ``.npz`` together with the maximum interpolation error
against the network, measured at the cell centres of every grid (where (bi)linear
interpolation is worst) and at random points. :class:`Tables` reads the file and
interpolates (linear in 1D, bilinear in 2D); :func:`table_rates` uses it to evaluate the
deterministic drift of method.md §2 (conservative force, M dS and k_B div M, closed forms of
:mod:`ddpd.model.bracket` rewritten in numpy) and the pair amplitudes that the noise needs,
without torch in the loop.

Units: as the training data (lengths, velocities, energies in m * v^2 of the data).
Outside the tabulated (S, V) or T range values are clamped to the table edge and
:attr:`Tables.out_of_range` counts the clamped evaluations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ddpd.io import atomic_path
from ddpd.params import parse_params, require

TABLE_FORMAT = "ddpd-lammps-tables-1"


@dataclass(frozen=True)
class ExportParams:
    """Section ``lammps.export``.

    Attributes:
        n_kernel: grid points of w(s) and w'(s) on s in [0, 1] (2001).
        n_entropy: grid points along S of the U(S, V) table (201).
        n_volume: grid points along V of the U(S, V) table (201).
        n_distance: grid points along s of the a, b, c (s, T) table (101).
        n_temperature: grid points along T of the a, b, c (s, T) table (201).
        entropy_range: [S_min, S_max] (entropy units of the model); null = from the dataset
            (teacher entropies of its frames) and, when given, a rollout of the model,
            widened by ``margin`` (null).
        volume_range: [V_min, V_max] specific volume 1/d (dimensionless); null = from the
            dataset (and rollout) widened by ``margin`` (null).
        margin: fraction of each data range added on both sides (0.25).
        max_frames: frames per trajectory of the dataset used for the ranges (20).
        n_check: random points per table for the error check (20000).
    """

    n_kernel: int = 2001
    n_entropy: int = 201
    n_volume: int = 201
    n_distance: int = 101
    n_temperature: int = 201
    entropy_range: tuple[float, float] | None = None
    volume_range: tuple[float, float] | None = None
    margin: float = 0.25
    max_frames: int = 20
    n_check: int = 20000

    def __post_init__(self) -> None:
        for key in ("n_kernel", "n_entropy", "n_volume", "n_distance", "n_temperature"):
            value = getattr(self, key)
            require(value >= 3, "lammps.export", key, "an integer >= 3", value)
        for key in ("entropy_range", "volume_range"):
            value = getattr(self, key)
            if value is not None:
                require(np.isfinite(value).all() and value[0] < value[1], "lammps.export", key,
                        "[min, max] with min < max", value)
        if self.volume_range is not None:
            require(self.volume_range[0] > 0, "lammps.export", "volume_range",
                    "positive specific volumes", self.volume_range)
        require(self.margin >= 0, "lammps.export", "margin", "a number >= 0", self.margin)
        require(self.max_frames >= 1, "lammps.export", "max_frames", "an integer >= 1",
                self.max_frames)
        require(self.n_check >= 1, "lammps.export", "n_check", "an integer >= 1", self.n_check)


# -- interpolation ------------------------------------------------------------------------
def _cell(x: np.ndarray, lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cell index (int), fraction in the cell, and the number of clamped points."""
    u = (np.asarray(x, dtype=np.float64) - lo) / (hi - lo) * (n - 1)
    outside = int(np.count_nonzero((u < 0) | (u > n - 1)))
    u = np.clip(u, 0.0, n - 1)
    k = np.minimum(u.astype(np.int64), n - 2)
    return k, u - k, outside


def interp1(table: np.ndarray, lo: float, hi: float, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear interpolation of ``table`` (n, k) on a uniform grid of [lo, hi]; (len(x), k)."""
    k, t, outside = _cell(x, lo, hi, table.shape[0])
    t = t[:, None]
    return (1 - t) * table[k] + t * table[k + 1], outside


def interp2(table: np.ndarray, lo: tuple[float, float], hi: tuple[float, float],
            x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Bilinear interpolation of ``table`` (nx, ny, k) on a uniform grid; (len(x), k)."""
    kx, tx, out_x = _cell(x, lo[0], hi[0], table.shape[0])
    ky, ty, out_y = _cell(y, lo[1], hi[1], table.shape[1])
    tx, ty = tx[:, None], ty[:, None]
    value = ((1 - tx) * (1 - ty) * table[kx, ky] + tx * (1 - ty) * table[kx + 1, ky]
             + (1 - tx) * ty * table[kx, ky + 1] + tx * ty * table[kx + 1, ky + 1])
    return value, out_x + out_y


# -- network evaluation -------------------------------------------------------------------
def _network_kernel(model, s: np.ndarray) -> np.ndarray:
    """(n, 2): w(s) and dw/dr from the network (float64)."""
    import torch

    w, dw_dr = model.kernel_and_slope(torch.as_tensor(s, dtype=torch.float64))
    return np.stack([w.detach().numpy(), dw_dr.detach().numpy()], axis=1)


def _network_thermo(model, S: np.ndarray, V: np.ndarray) -> np.ndarray:
    """(n, 4): U, T, P, dT/dS from the network (float64)."""
    import torch

    U, T, P, dT = model.thermo(torch.as_tensor(S, dtype=torch.float64),
                               torch.as_tensor(V, dtype=torch.float64))
    return np.stack([x.detach().numpy() for x in (U, T, P, dT)], axis=1)


def _network_amplitudes(model, s: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(n, 6): a, b, c and their T-slopes from the model (its network or friction table)."""
    import torch

    s_t = torch.as_tensor(s, dtype=torch.float64)
    T_t = torch.as_tensor(T, dtype=torch.float64)
    f, df = model.amplitudes_and_slopes(s_t, T_t)
    return np.concatenate([f.detach().numpy(), df.detach().numpy()], axis=1)


def _data_ranges(model, dataset: Path, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Teacher entropies and specific volumes of the dataset's frames (all splits)."""
    import torch

    from ddpd.coarse.dataset import load_dataset
    from ddpd.model import bracket
    from ddpd.space.neighbours import neighbour_pairs

    data = load_dataset(dataset)
    S_all, V_all = [], []
    for trajs in data.splits.values():
        for traj in trajs:
            frames = np.linspace(0, len(traj.time) - 1, min(max_frames, len(traj.time)))
            for t in np.unique(frames.astype(int)):
                ok = np.isfinite(traj.position[t]).all(-1) & np.isfinite(traj.velocity[t]).all(-1)
                if ok.sum() < 2:
                    continue
                q = torch.as_tensor(traj.position[t][ok], dtype=torch.float64)
                v = torch.as_tensor(traj.velocity[t][ok], dtype=torch.float64)
                pairs = neighbour_pairs(q, data.box, model.cutoff, float(traj.offset[t]))
                with torch.no_grad():
                    S = model.entropy(v, pairs)
                    _, s = model.pair_geometry(pairs)
                    d = bracket.density(model.kernel(s), model.self_weight(v), pairs.i,
                                        pairs.j, len(q))
                S_all.append(S.numpy())
                V_all.append(1.0 / d.numpy())
    if not S_all:
        raise ValueError(f"{dataset}: no frame with at least two particles with velocities")
    return np.concatenate(S_all), np.concatenate(V_all)


def _rollout_ranges(model, rollout: Path, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Entropies and specific volumes the model itself visits: frames of one of its rollouts
    (:func:`ddpd.rollout.run_one`: H5MD with the observable ``entropy``)."""
    import torch

    from ddpd.io import read_trajectory
    from ddpd.model import bracket
    from ddpd.space.neighbours import neighbour_pairs

    traj = read_trajectory(rollout)
    if "entropy" not in traj.observables:
        raise ValueError(f"{rollout}: not a rollout of a metriplectic model (no observable "
                         "'entropy')")
    frames = np.unique(np.linspace(0, len(traj.time) - 1,
                                   min(max_frames, len(traj.time))).astype(int))
    S_all, V_all = [], []
    offset = traj.observables.get("lees_edwards_offset")
    for t in frames:
        ok = np.isfinite(traj.position[t]).all(-1)
        if ok.sum() < 2:
            continue
        q = torch.as_tensor(traj.position[t][ok], dtype=torch.float64)
        pairs = neighbour_pairs(q, traj.box, model.cutoff,
                                float(offset[t]) if offset is not None else 0.0)
        with torch.no_grad():
            _, s = model.pair_geometry(pairs)
            d = bracket.density(model.kernel(s), model.self_weight(q), pairs.i, pairs.j, len(q))
        S_all.append(traj.observables["entropy"][t][ok])
        V_all.append(1.0 / d.numpy())
    if not S_all:
        raise ValueError(f"{rollout}: no frame with at least two particles")
    return np.concatenate(S_all), np.concatenate(V_all)


def _widen(lo: float, hi: float, margin: float) -> tuple[float, float]:
    span = max(hi - lo, 1e-6 * max(abs(lo), abs(hi), 1.0))
    return lo - margin * span, hi + margin * span


def _max_errors(exact: np.ndarray, approx: np.ndarray, names: list[str]) -> dict:
    """Per column: max absolute error and that divided by max |exact|."""
    out = {}
    for k, name in enumerate(names):
        err = float(np.max(np.abs(approx[:, k] - exact[:, k])))
        scale = float(np.max(np.abs(exact[:, k])))
        out[name] = {"max_abs": err, "max_rel": err / scale if scale > 0 else err}
    return out


def core_pair_energy(energy_scale: float, radius: float, dist: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The pair core prior psi(r) = e (1 - r/r0)^2 below r0 (0 beyond) and dpsi/dr (P,).

    e = core_repulsion m sigma_v^2 (``energy_scale``), r0 = ``radius``; zero everywhere when
    either is 0. Numpy twin of :meth:`ddpd.model.metriplectic.MetriplecticModel.core_pair_energy`.
    """
    if energy_scale <= 0 or radius <= 0:
        return np.zeros_like(dist), np.zeros_like(dist)
    x = np.clip(1.0 - dist / radius, 0.0, None)
    return energy_scale * x * x, -2.0 * energy_scale * x / radius


def export_tables(model_dir: Path, out_npz: Path, params: dict,
                  dataset: Path | None = None, rollout: Path | None = None) -> dict:
    """Tabulate a trained model's w, U and (a, b, c) and write them to ``out_npz``.

    Args:
        model_dir: trained model folder (``hparams.json``, ``model.pt``).
        out_npz: output ``.npz`` (written atomically).
        params: section ``lammps.export`` (:class:`ExportParams`).
        dataset: dataset file (:func:`ddpd.coarse.dataset.build_dataset`) giving the S and V
            ranges when ``entropy_range`` / ``volume_range`` are null.
        rollout: optional rollout of the same model (:func:`ddpd.rollout.run_one`); the null
            ranges then cover its frames too. The model's own dynamics can spread S much
            wider than the teacher's labels of the data (the study's melt model: teacher S
            in [-1.0, 1.3], rollout S in [-35, 20]), and look-ups outside the table are
            clamped.

    Returns:
        The interpolation errors {table: {column: {max_abs, max_rel}}} (also stored in the
        file under ``errors`` as JSON).
    """
    import torch

    from ddpd.model.api import load_model
    from ddpd.model.metriplectic import MetriplecticModel

    p = parse_params(ExportParams, params, "lammps.export")
    model = load_model(Path(model_dir)).double().eval()
    if not isinstance(model, MetriplecticModel):
        raise ValueError(f"{model_dir}: lammps export needs a metriplectic model, got "
                         f"{type(model).__name__}")
    S_range, V_range = p.entropy_range, p.volume_range
    if S_range is None or V_range is None:
        if dataset is None:
            raise ValueError("lammps.export: entropy_range and volume_range are null, so a "
                             "dataset file is needed to take the ranges from")
        S_data, V_data = _data_ranges(model, Path(dataset), p.max_frames)
        if rollout is not None:
            S_roll, V_roll = _rollout_ranges(model, Path(rollout), p.max_frames)
            S_data, V_data = np.concatenate([S_data, S_roll]), np.concatenate([V_data, V_roll])
        if S_range is None:
            S_range = _widen(float(S_data.min()), float(S_data.max()), p.margin)
        if V_range is None:
            lo, hi = _widen(float(V_data.min()), float(V_data.max()), p.margin)
            V_range = (max(lo, 0.5 * float(V_data.min())), hi)
    rng = np.random.default_rng(0)

    # 1D kernel table on s in [0, 1]
    s_grid = np.linspace(0.0, 1.0, p.n_kernel)
    kernel = _network_kernel(model, s_grid)
    s_mid = 0.5 * (s_grid[1:] + s_grid[:-1])
    s_chk = np.concatenate([s_mid, rng.uniform(0, 1, p.n_check)])
    errors = {"kernel": _max_errors(_network_kernel(model, s_chk),
                                    interp1(kernel, 0.0, 1.0, s_chk)[0], ["w", "dw_dr"])}

    # 2D thermodynamic table on (S, V)
    S_grid = np.linspace(*S_range, p.n_entropy)
    V_grid = np.linspace(*V_range, p.n_volume)
    SS, VV = np.meshgrid(S_grid, V_grid, indexing="ij")
    thermo = _network_thermo(model, SS.ravel(), VV.ravel()).reshape(*SS.shape, 4)
    S_mid, V_mid = np.meshgrid(0.5 * (S_grid[1:] + S_grid[:-1]),
                               0.5 * (V_grid[1:] + V_grid[:-1]), indexing="ij")
    S_chk = np.concatenate([S_mid.ravel(), rng.uniform(*S_range, p.n_check)])
    V_chk = np.concatenate([V_mid.ravel(), rng.uniform(*V_range, p.n_check)])
    errors["thermo"] = _max_errors(
        _network_thermo(model, S_chk, V_chk),
        interp2(thermo, (S_range[0], V_range[0]), (S_range[1], V_range[1]), S_chk, V_chk)[0],
        ["U", "T", "P", "dT_dS"])

    # 2D friction table on (s, T) over the temperatures of the (S, V) table
    T_range = _widen(float(thermo[..., 1].min()), float(thermo[..., 1].max()), 0.05)
    T_range = (max(T_range[0], 0.5 * float(thermo[..., 1].min())), T_range[1])
    d_grid = np.linspace(0.0, 1.0, p.n_distance)
    T_grid = np.linspace(*T_range, p.n_temperature)
    DD, TT = np.meshgrid(d_grid, T_grid, indexing="ij")
    amp = _network_amplitudes(model, DD.ravel(), TT.ravel()).reshape(*DD.shape, 6)
    d_mid, T_mid = np.meshgrid(0.5 * (d_grid[1:] + d_grid[:-1]),
                               0.5 * (T_grid[1:] + T_grid[:-1]), indexing="ij")
    d_chk = np.concatenate([d_mid.ravel(), rng.uniform(0, 1, p.n_check)])
    T_chk = np.concatenate([T_mid.ravel(), rng.uniform(*T_range, p.n_check)])
    errors["friction"] = _max_errors(
        _network_amplitudes(model, d_chk, T_chk),
        interp2(amp, (0.0, T_range[0]), (1.0, T_range[1]), d_chk, T_chk)[0],
        ["a", "b", "c", "da_dT", "db_dT", "dc_dT"])

    with torch.no_grad():
        w_self = float(model.self_weight(torch.zeros((), dtype=torch.float64)))
    header = dict(format=TABLE_FORMAT, dim=model.dim, cutoff=model.cutoff,
                  mass=float(model.mass.detach()), k_B=float(model.k_B.detach()), w_self=w_self,
                  entropy_range=list(S_range), volume_range=list(V_range),
                  temperature_range=list(T_range), model_dir=str(model_dir),
                  friction_scheme=model.friction_scheme,
                  core_energy_scale=(model.core_repulsion * model.energy_scale
                                     if model.has_core else 0.0),
                  core_radius=model.core_radius if model.has_core else 0.0)
    out_npz = Path(out_npz)
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, kernel=kernel, thermo=thermo, friction=amp,
                 header=np.array(json.dumps(header)), errors=np.array(json.dumps(errors)))
    return errors


class Tables:
    """Interpolated learned functions read from an :func:`export_tables` file.

    Attributes: dim, cutoff (h), mass, k_B, w_self (= w(0)), the ranges, friction_scheme
    (of the model: 'explicit' or 'midpoint'), core_energy_scale and core_radius (the pair
    core prior, evaluated exactly; 0: none), ``errors`` (the stored interpolation errors)
    and ``out_of_range`` (clamped evaluations so far).
    """

    def __init__(self, path: Path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"lammps tables file not found: {path}")
        with np.load(path) as f:
            try:
                header = json.loads(str(f["header"]))
                self.kernel_table = f["kernel"]
                self.thermo_table = f["thermo"]
                self.friction_table = f["friction"]
                self.errors = json.loads(str(f["errors"]))
            except KeyError as exc:
                raise ValueError(f"{path}: not a ddpd lammps tables file ({exc})") from exc
        if header.get("format") != TABLE_FORMAT:
            raise ValueError(f"{path}: expected format {TABLE_FORMAT!r}, got "
                             f"{header.get('format')!r}")
        self.dim = int(header["dim"])
        self.cutoff = float(header["cutoff"])
        self.mass = float(header["mass"])
        self.k_B = float(header["k_B"])
        self.w_self = float(header["w_self"])
        self.entropy_range = tuple(header["entropy_range"])
        self.volume_range = tuple(header["volume_range"])
        self.temperature_range = tuple(header["temperature_range"])
        self.friction_scheme = str(header.get("friction_scheme", "explicit"))
        # the pair core prior, exact (not tabulated); files before it have none
        self.core_energy_scale = float(header.get("core_energy_scale", 0.0))
        self.core_radius = float(header.get("core_radius", 0.0))
        self.out_of_range = 0
        if not (np.diff(self.thermo_table[:, :, 0], axis=0) > 0).all():
            raise ValueError(f"{path}: the tabulated U(S, V) is not strictly increasing in S "
                             "(T <= 0 in the table), so S cannot be solved from U")

    def core(self, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """psi(r) and dpsi/dr per pair of the pair core prior (:func:`core_pair_energy`)."""
        return core_pair_energy(self.core_energy_scale, self.core_radius, dist)

    def kernel(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w(s) and dw/dr per pair."""
        value, _ = interp1(self.kernel_table, 0.0, 1.0, s)
        return value[:, 0], value[:, 1]

    def thermo(self, S: np.ndarray, V: np.ndarray, count: bool = True) -> np.ndarray:
        """(N, 4): U, T, P, dT/dS per particle; ``count``: add clamped look-ups to
        :attr:`out_of_range` (False for a repeated look-up of the same state)."""
        value, outside = interp2(self.thermo_table, (self.entropy_range[0], self.volume_range[0]),
                                 (self.entropy_range[1], self.volume_range[1]), S, V)
        if count:
            self.out_of_range += outside
        return value

    def entropy_at(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        """S with the interpolated U(S, V) equal to ``U``, per particle (N,).

        At fixed V the bilinear table is piecewise linear in S, with nodes
        U_k(V) = (1 - t_V) U[k, k_V] + t_V U[k, k_V + 1]; a bisection over k finds the cell
        with U_k <= U < U_{k+1} and the cell's line is inverted, so U(S(U), V) = U to
        round-off (the inverse the exact-energy entropy update needs, method.md §3). Outside
        the tabulated S range the edge cell's line extrapolates (counted in
        :attr:`out_of_range`). V is clamped as in :meth:`thermo`.
        (The file was refused at reading if U is not strictly increasing in S.)
        """
        table = self.thermo_table[:, :, 0]
        n_S = table.shape[0]
        ky, ty, outside = _cell(V, self.volume_range[0], self.volume_range[1], table.shape[1])
        U = np.asarray(U, dtype=np.float64)

        def node(k: np.ndarray) -> np.ndarray:
            return (1 - ty) * table[k, ky] + ty * table[k, ky + 1]

        lo = np.zeros(len(U), dtype=np.int64)
        hi = np.full(len(U), n_S - 1, dtype=np.int64)
        while (open_ := hi - lo > 1).any():
            mid = (lo + hi) // 2
            below = node(mid) <= U
            lo = np.where(open_ & below, mid, lo)
            hi = np.where(open_ & ~below, mid, hi)
        u0, u1 = node(lo), node(lo + 1)
        frac = (U - u0) / (u1 - u0)
        self.out_of_range += outside + int(np.count_nonzero((frac < 0) | (frac > 1)))
        step = (self.entropy_range[1] - self.entropy_range[0]) / (n_S - 1)
        return self.entropy_range[0] + (lo + frac) * step

    def amplitudes(self, s: np.ndarray, T: np.ndarray) -> np.ndarray:
        """(P, 6): a, b, c (s, T) and their T-slopes."""
        value, outside = interp2(self.friction_table, (0.0, self.temperature_range[0]),
                                 (1.0, self.temperature_range[1]), s, T)
        self.out_of_range += outside
        return value


class PairTerms(NamedTuple):
    """Per-pair terms of the step (P pairs).

    e (P, D), v_ij (P, D), A, B, C, T_i, T_j (P,): what the pair noise needs; rate_v (P, D):
    the pair's velocity rate of i (M dS + k_B div M; j gets -rate_v); rate_Si, rate_Sj (P,):
    its entropy rates of i and j (the heat proposals of the exact-energy entropy update,
    :func:`ddpd.lammps.external.exact_heat_entropy`).
    """

    e: np.ndarray
    v_ij: np.ndarray
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    T_i: np.ndarray
    T_j: np.ndarray
    rate_v: np.ndarray
    rate_Si: np.ndarray
    rate_Sj: np.ndarray


def _scatter(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Sum rows of ``values`` (P,) or (P, k) into n bins."""
    if values.ndim == 1:
        return np.bincount(index, weights=values, minlength=n)
    return np.stack([np.bincount(index, weights=values[:, k], minlength=n)
                     for k in range(values.shape[1])], axis=1)


def pair_shares(values: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Half of each pair's value (P,) to each of its two particles: (N,) (a pair energy split
    between its particles, e.g. the core prior's psi)."""
    return 0.5 * (_scatter(values, i, n) + _scatter(values, j, n))


def table_rates(tables: Tables, v: np.ndarray, S: np.ndarray, i: np.ndarray, j: np.ndarray,
                r: np.ndarray, jump: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, PairTerms, np.ndarray, np.ndarray,
                           np.ndarray]:
    """Deterministic rate of (v, S) and the pair noise amplitudes, from the tables.

    Implements method.md §2 with the closed forms of :mod:`ddpd.model.bracket`:
    F_i = -sum_j [(P_i/d_i^2 + P_j/d_j^2) w'(r) + psi'(r)] e (psi: the pair core prior,
    :meth:`Tables.core`); (M dS)_pair = M e_Si + M e_Sj with
    M = J K J^T + c c^T; k_B div M as :func:`ddpd.model.bracket.pair_divergence`.

    Args:
        tables: the interpolated functions.
        v: (N, D) velocities; S: (N,) entropies.
        i, j: (P,) pair indices; r: (P, D) r_ij = q_i - q_j (image convention applied), all
            with |r| < h; jump: (P, D) Lees-Edwards velocity jump or None.

    Returns:
        rate (N, D+1) = (F/m + friction drift, Sdot), U (N,), :class:`PairTerms`, the
        conservative force F (N, D), the specific volume V = 1/d (N,) and the core prior's
        energy per particle (N,), half of each of its pairs' psi.
    """
    n, dim = v.shape
    h, m, k_B = tables.cutoff, tables.mass, tables.k_B
    dist = np.sqrt((r * r).sum(-1))
    e = r / dist[:, None]
    s = dist / h
    w, dw_dr = tables.kernel(s)
    d = tables.w_self + _scatter(w, i, n) + _scatter(w, j, n)
    U, T, P, dT = tables.thermo(S, 1.0 / d).T
    psi, dpsi_dr = tables.core(dist)
    coef = -(P[i] / d[i] ** 2 + P[j] / d[j] ** 2) * dw_dr - dpsi_dr
    F = _scatter(coef[:, None] * e, i, n) - _scatter(coef[:, None] * e, j, n)
    core = pair_shares(psi, i, j, n)

    Ti, Tj, dTi, dTj = T[i], T[j], dT[i], dT[j]
    f_i = tables.amplitudes(s, Ti)
    f_j = tables.amplitudes(s, Tj)
    tau = (1.0 - s * s)[:, None]
    amp = f_i[:, :3] * f_j[:, :3] * tau
    amp_di = f_i[:, 3:] * f_j[:, :3] * tau
    amp_dj = f_i[:, :3] * f_j[:, 3:] * tau
    A, B, C = amp.T
    Ai, Bi, Ci = amp_di.T
    Aj, Bj, Cj = amp_dj.T
    u = v[i] - v[j]
    if jump is not None:
        u = u + jump
    eu = (e * u).sum(-1)

    def k_dot(a2: np.ndarray, b2: np.ndarray, x: np.ndarray, ex: np.ndarray) -> np.ndarray:
        """K x for K = (a2/2) I + (a2/2 + (b2 - a2)/D) e e^T (a2 = A^2, b2 = B^2)."""
        return 0.5 * a2[:, None] * x + ((0.5 * a2 + (b2 - a2) / dim) * ex)[:, None] * e

    Ku = k_dot(A * A, B * B, u, eu)
    uKu = (u * Ku).sum(-1)
    trK = 0.5 * A * A * dim + 0.5 * A * A + (B * B - A * A) / dim
    # (M dS) per pair: J K J^T g + c (c.g), g = e_Si + e_Sj, J^T g = -kappa u
    kappa = 0.5 / Ti + 0.5 / Tj
    cg = C / Ti - C / Tj
    drift_vi = -kappa[:, None] * Ku / m
    drift_Si = kappa * uKu / (2 * Ti) + C / Ti * cg
    drift_Sj = kappa * uKu / (2 * Tj) - C / Tj * cg
    # k_B div M per pair (ddpd.model.bracket.pair_divergence); dK/dT = K(A dA, B dB)' slopes
    dKi_u = k_dot(2 * A * Ai, 2 * B * Bi, u, eu)
    dKj_u = k_dot(2 * A * Aj, 2 * B * Bj, u, eu)
    uKiu = (u * dKi_u).sum(-1)
    uKju = (u * dKj_u).sum(-1)
    ti, tj = Ti[:, None], Tj[:, None]
    div_vi = (dTi[:, None] * (-dKi_u / (2 * m * ti) + Ku / (2 * m * ti**2))
              + dTj[:, None] * (-dKj_u / (2 * m * tj) + Ku / (2 * m * tj**2)))
    d_SiSi = uKiu / (4 * Ti**2) - uKu / (2 * Ti**3) + 2 * C * Ci / Ti**2 - 2 * C**2 / Ti**3
    d_SjSj = uKju / (4 * Tj**2) - uKu / (2 * Tj**3) + 2 * C * Cj / Tj**2 - 2 * C**2 / Tj**3
    d_SiSj = (uKju / (4 * Ti * Tj) - uKu / (4 * Ti * Tj**2) - 2 * C * Cj / (Ti * Tj)
              + C**2 / (Ti * Tj**2))
    d_SjSi = (uKiu / (4 * Ti * Tj) - uKu / (4 * Ti**2 * Tj) - 2 * C * Ci / (Ti * Tj)
              + C**2 / (Ti**2 * Tj))
    div_Si = -trK / (m * Ti) + dTi * d_SiSi + dTj * d_SiSj
    div_Sj = -trK / (m * Tj) + dTj * d_SjSj + dTi * d_SjSi
    pair_v = drift_vi + k_B * div_vi
    rate_Si, rate_Sj = drift_Si + k_B * div_Si, drift_Sj + k_B * div_Sj
    rate = np.zeros((n, dim + 1))
    rate[:, :dim] = F / m + _scatter(pair_v, i, n) - _scatter(pair_v, j, n)
    rate[:, dim] = _scatter(rate_Si, i, n) + _scatter(rate_Sj, j, n)
    return (rate, U, PairTerms(e, u, A, B, C, Ti, Tj, pair_v, rate_Si, rate_Sj), F,
            1.0 / d, core)
