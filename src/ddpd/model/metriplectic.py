"""The learned metriplectic particle model of shared/method.md, as a torch module.

The module only holds the learned functions and the data scales; every physical quantity is
computed by the pure functions of :mod:`ddpd.model.bracket`, :mod:`ddpd.model.noise`,
:mod:`ddpd.model.teacher` and :mod:`ddpd.model.likelihood`, and the steppers live in
:mod:`ddpd.model.integrate`.

Scales (from the training split, see :mod:`ddpd.coarse.dataset`): sigma_v (speed), m (mass),
e0 = m sigma_v^2 (energy), dt. U = e0 u(S, -V d_ref) with u input-convex; T = dU/dS is of
order e0 and k_B = exp(log_k_B) starts at 1 so that k_B T ~ m sigma_v^2 (equipartition).
Friction amplitudes start at values estimated from the velocity-increment variance of the
data (:func:`ddpd.coarse.dataset.friction_scales`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ddpd.model import bracket
from ddpd.model.equipartition import frames_kinetic_temperature, kinetic_temperature
from ddpd.model.hermite_table import bicubic_hermite, hermite_interpolate, unit_grid
from ddpd.model.likelihood import gaussian_nll
from ddpd.model.nets import MLP, ConvexIncreasing, SeparableConvexIncreasing
from ddpd.model.params import ModelParams, parse_params
from ddpd.model.teacher import teacher_entropy
from ddpd.space.neighbours import Pairs, neighbour_pairs


def thermo_by_autograd(internal_energy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       S: torch.Tensor, V: torch.Tensor, second: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """U, T = dU/dS, P = -dU/dV and dT/dS of any U(S, V), by autograd (graph kept if needed).

    For models whose U is not the input-convex network (the known truth) and as the
    reference of :meth:`MetriplecticModel.thermo` in the tests.
    """
    keep_graph = second or torch.is_grad_enabled()
    with torch.enable_grad():
        S_in = S if S.requires_grad else S.detach().requires_grad_(True)
        V_in = V if V.requires_grad else V.detach().requires_grad_(True)
        U = internal_energy(S_in, V_in)
        dU_dS, dU_dV = torch.autograd.grad(U.sum(), (S_in, V_in), create_graph=keep_graph)
        dT = None
        if second:
            (dT,) = torch.autograd.grad(dU_dS.sum(), S_in, create_graph=True)
    return U, dU_dS, -dU_dV, dT


class Terms(NamedTuple):
    """Everything the dynamics needs at one state (N particles, P pairs, D dimensions).

    Attributes:
        e: (P, D) unit vectors r_ij / r.   s: (P,) r / h.   v_ij: (P, D) relative velocity.
        w: (P,) kernel.   d: (N,) density.   V: (N,) specific volume 1/d.
        U: (N,) internal energy.   T: (N,) temperature dU/dS.   P: (N,) pressure -dU/dV.
        dT: (N,) d^2U/dS^2.   F: (N, D) conservative force.
        A, B, C: (P,) pair friction amplitudes.
        M: (P, 2D+2, 2D+2) pair friction blocks over (v_i, v_j, S_i, S_j), or None when not
            asked for (``evaluate(blocks=False)``: the steppers and the likelihood use the
            closed forms :func:`bracket.pair_friction_drift` and :func:`bracket.particle_blocks`).
        drift_M: (P, 2D+2) M dS per pair.   drift_div: (P, 2D+2) k_B div M per pair (or None).
        u_M: (P, D) the relative velocity at which M's entropy rows are taken (v_ij, or the
            midpoint velocity of :meth:`MetriplecticModel.midpoint_terms`).
    """

    e: torch.Tensor
    s: torch.Tensor
    v_ij: torch.Tensor
    w: torch.Tensor
    d: torch.Tensor
    V: torch.Tensor
    U: torch.Tensor
    T: torch.Tensor
    P: torch.Tensor
    dT: torch.Tensor
    F: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    M: torch.Tensor | None
    drift_M: torch.Tensor
    drift_div: torch.Tensor | None
    u_M: torch.Tensor


class Snapshot(NamedTuple):
    """One scored snapshot pair (x_t, x_{t+dt}) of whole frames.

    Attributes:
        v0: (N0, D) velocities at t of the particles present at t.
        pairs0: neighbour pairs at t (indices into v0).
        v1: (N1, D) velocities at t + dt of the particles present then.
        pairs1: neighbour pairs at t + dt.
        idx0: (K,) scored particles (present at both times, interior) as rows of v0.
        idx1: (K,) the same particles as rows of v1.
        frame0: (N0,) the frame of each row of v0 when several snapshots are joined
            (:func:`ddpd.coarse.dataset.collate`); None: one frame. The equipartition
            prior removes each frame's own mean velocity (:mod:`ddpd.model.equipartition`).
    """

    v0: torch.Tensor
    pairs0: Pairs
    v1: torch.Tensor
    pairs1: Pairs
    idx0: torch.Tensor
    idx1: torch.Tensor
    frame0: torch.Tensor | None = None


class MetriplecticModel(nn.Module):
    """Learned w(r), U(S, V), friction amplitudes a, b, c and the entropy teacher.

    Args (all saved in :attr:`hparams`): dim, cutoff (h), width, depth, teacher_features,
    mass, learn_mass, speed_scale (sigma_v), dt, friction (A0, B0, C0 initial pair
    amplitudes), d_ref (typical density), delta_v_scale (residual scale of dv), jitter,
    learn_k_B (false: k_B stays at its start value, set from equipartition, which fixes the
    gauge (S, T, k_B, A^2, B^2, C^2) -> (l S, T/l, l k_B, A^2/l, ...) that leaves the
    dynamics of (q, v) and the likelihood unchanged),
    friction_scheme ("midpoint": the friction drift M dS of a step is taken at the
    midpoint velocities (v(t) + v(t+dt))/2, in the likelihood and in the exact-energy
    rollout step, which keeps k_B T = m <v^2> exact at any dt for the linear friction, see
    :func:`bracket.midpoint_velocity_change`; "explicit": at v(t), as in the reference),
    kernel_shape ("monotone": phi_w(s) = u(0) - u(s) with u convex and strictly increasing
    (:class:`ConvexIncreasing`), so w(0) = 1 and dw/dr < 0 on (0, h): the density falls
    with distance and, with P >= 0, every pair force is repulsive, also at contact
    (dw/dr(0) < 0); "free": phi_w an MLP as in shared/method.md §1, which let the learned
    kernel rise with r (attraction) and particles pair up in rollouts, see bench/model.md),
    kernel_table (G > 0: phi_w is evaluated with its slope on G + 1 nodes of [0, 1] and
    interpolated by cubic Hermite polynomials, :mod:`ddpd.model.hermite_table`, in training
    and rollouts alike; its cost no longer grows with the number of pairs; 0: the network
    on every pair),
    friction_table (G > 0: the friction network's log-amplitudes y(s, T) are evaluated with
    their slopes on the lattice s = k/G (k = 0..G) by ln(T/e0) = l/G over the cells the
    pairs occupy, and interpolated by bicubic Hermite patches (:meth:`tabled_log_amplitudes`),
    in training and rollouts alike; 0: the network on both sides of every pair),
    energy ("coupled": U(S, V) one input-convex network, shared/method.md §1; "separable":
    U = U_S(S) + U_V(V), :class:`SeparableConvexIncreasing`, so P does not depend on S),
    core_repulsion, core_radius (the pair core prior psi(r) = eps m sigma_v^2 (1 - r/r0)^2
    below r0 = core_radius, the training data's closest approach (:meth:`set_core_radius`);
    it adds to the energy and the conservative force, :meth:`core_pair_energy`; off when
    either is 0).
    """

    # the dataclass of its `train.model` section (checked with the configuration)
    params_class = ModelParams

    def __init__(self, dim: int, cutoff: float, width: int, depth: int, teacher_features: int,
                 mass: float, learn_mass: bool, speed_scale: float, dt: float,
                 friction: tuple[float, float, float], d_ref: float, delta_v_scale: float,
                 jitter: float = 1e-4, friction_scheme: str = "midpoint",
                 learn_k_B: bool = True, kernel_shape: str = "monotone",
                 kernel_table: int = 0, core_repulsion: float = 0.0, core_radius: float = 0.0,
                 friction_table: int = 0, energy: str = "coupled"):
        super().__init__()
        self.hparams = dict(
            dim=dim, cutoff=cutoff, width=width, depth=depth, teacher_features=teacher_features,
            mass=mass, learn_mass=learn_mass, speed_scale=speed_scale, dt=dt,
            friction=list(friction), d_ref=d_ref, delta_v_scale=delta_v_scale, jitter=jitter,
            friction_scheme=friction_scheme, learn_k_B=learn_k_B, kernel_shape=kernel_shape,
            kernel_table=kernel_table, core_repulsion=core_repulsion, core_radius=core_radius,
            friction_table=friction_table, energy=energy,
        )
        if core_repulsion < 0 or core_radius < 0:
            raise ValueError(f"train.model.core_repulsion: expected >= 0 with a core radius "
                             f">= 0, got {core_repulsion!r} and {core_radius!r}")
        self.core_repulsion = float(core_repulsion)
        self.core_radius = float(core_radius)
        if kernel_table != 0 and kernel_table < 2:
            raise ValueError(f"train.model.kernel_table: expected 0 (off) or at least 2 "
                             f"intervals, got {kernel_table!r}")
        self.kernel_table = kernel_table
        if friction_table != 0 and friction_table < 2:
            raise ValueError(f"train.model.friction_table: expected 0 (off) or at least 2 "
                             f"intervals, got {friction_table!r}")
        self.friction_table = friction_table
        self.bicubic = bicubic_hermite  # torch.compile'd by compile_friction_table()
        if kernel_shape not in ("monotone", "free"):
            raise ValueError(f"train.model.kernel_shape: expected 'monotone' or 'free', got "
                             f"{kernel_shape!r}")
        self.kernel_shape = kernel_shape
        if friction_scheme not in ("midpoint", "explicit"):
            raise ValueError(f"train.model.friction_scheme: expected 'midpoint' or 'explicit', "
                             f"got {friction_scheme!r}")
        self.friction_scheme = friction_scheme
        self.dim = dim
        self.cutoff = cutoff
        self.speed_scale = speed_scale
        self.energy_scale = mass * speed_scale**2
        self.d_ref = d_ref
        self.jitter = jitter
        self.delta_v_scale = delta_v_scale
        log_m = torch.tensor(math.log(mass))
        if learn_mass:
            self.log_mass = nn.Parameter(log_m)
        else:
            self.register_buffer("log_mass", log_m)
        if learn_k_B:
            self.log_k_B = nn.Parameter(torch.tensor(0.0))
        else:  # fixes the gauge (S, T, k_B, A^2) -> (l S, T / l, l k_B, A^2 / l)
            self.register_buffer("log_k_B", torch.tensor(0.0))
        self.kernel_net = (ConvexIncreasing(1, width, depth) if kernel_shape == "monotone"
                           else MLP(1, 1, width, depth))
        if energy not in ("coupled", "separable"):
            raise ValueError(f"train.model.energy: expected 'coupled' or 'separable', got "
                             f"{energy!r}")
        self.energy_net = (ConvexIncreasing(2, width, depth) if energy == "coupled"
                           else SeparableConvexIncreasing(2, width, depth))
        self.friction_net = MLP(2, 3, width, depth)
        self.register_buffer("log_amp0", 0.5 * torch.log(torch.tensor(friction)))
        self.phi = MLP(3, teacher_features, width, depth, zero_last=False)
        self.g = MLP(teacher_features, 1, width, depth, zero_last=False)

    # -- learned functions -------------------------------------------------------------
    @property
    def mass(self) -> torch.Tensor:
        return torch.exp(self.log_mass)

    @property
    def k_B(self) -> torch.Tensor:
        return torch.exp(self.log_k_B)

    def log_kernel_shape(self, s: torch.Tensor) -> torch.Tensor:
        """phi_w(s): MLP ('free') or u(0) - u(s), u convex increasing ('monotone').

        Interpolated from the table of :attr:`kernel_table` nodes when that is set.
        """
        if self.kernel_table:
            return self.log_kernel_shape_and_slope(s)[0]
        if self.kernel_shape == "monotone":
            origin = torch.zeros(1, 1, dtype=s.dtype, device=s.device)
            return self.kernel_net(origin)[0] - self.kernel_net(s[..., None])
        return self.kernel_net(s[..., None])[..., 0]

    def log_kernel_shape_and_slope(self, s: torch.Tensor
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """phi_w(s) and dphi_w/ds in one forward-mode pass (phi_w of :meth:`log_kernel_shape`).

        With :attr:`kernel_table` G > 0: the network's phi_w and slope on the G + 1 nodes,
        then the cubic Hermite interpolant and its derivative at ``s``.
        """
        if self.kernel_table:
            nodes = unit_grid(self.kernel_table, s)
            return hermite_interpolate(*self.network_log_kernel_shape_and_slope(nodes), s)
        return self.network_log_kernel_shape_and_slope(s)

    def network_log_kernel_shape_and_slope(self, s: torch.Tensor
                                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """phi_w(s) and dphi_w/ds of the network itself at every ``s`` (no table)."""
        x = s[..., None]
        if self.kernel_shape == "monotone":
            origin = torch.zeros(1, 1, dtype=s.dtype, device=s.device)
            u, du = self.kernel_net.forward_with_slope(x, 0)
            return self.kernel_net(origin)[0] - u, -du
        phi, dphi = self.kernel_net.forward_with_slope(x, 0)
        return phi[..., 0], dphi[..., 0]

    def kernel(self, s: torch.Tensor) -> torch.Tensor:
        """w(s) (dimensionless), s = r/h in [0, 1)."""
        return bracket.kernel(s, self.log_kernel_shape(s))

    def internal_energy(self, S: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """U(S, V) in energy units (e0 = m sigma_v^2)."""
        x = torch.stack([S, -V * self.d_ref], dim=-1)
        return self.energy_scale * self.energy_net(x)

    def amplitudes(self, s: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        """Per-particle factors (a, b, c)(s, T), (..., 3); A_ij = a_i a_j (1 - s^2)."""
        if self.friction_table:
            return torch.exp(self.tabled_log_amplitudes(s, T)[0] + self.log_amp0)
        x = torch.stack([s, T / self.energy_scale], dim=-1)
        return torch.exp(self.friction_net(x) + self.log_amp0)

    def thermo(self, S: torch.Tensor, V: torch.Tensor, second: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """U, T = dU/dS, P = -dU/dV and dT/dS = d^2U/dS^2 per particle (energy units).

        With x = (S, -V d_ref) and U = e0 u(x): T = e0 du/dx_0, P = e0 d_ref du/dx_1,
        dT/dS = e0 d^2u/dx_0^2, in one forward-mode pass
        (:meth:`ConvexIncreasing.forward_with_derivatives`); ``second=False`` returns None
        for dT/dS. Equals :func:`thermo_by_autograd` of :meth:`internal_energy` (tests).
        """
        x = torch.stack([S, -V * self.d_ref], dim=-1)
        u, du, d2u = self.energy_net.forward_with_derivatives(x, 0)
        e0 = self.energy_scale
        return (e0 * u, e0 * du[..., 0], e0 * self.d_ref * du[..., 1],
                e0 * d2u if second else None)

    def energy_and_temperature(self, S: torch.Tensor, V: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """U and T = dU/dS only (energy units), one forward-mode pass along S: what the
        exact-energy step's entropy solve needs (:func:`ddpd.model.integrate.solve_entropy`),
        without P and dT/dS. Equals the first two outputs of :meth:`thermo` (tests)."""
        x = torch.stack([S, -V * self.d_ref], dim=-1)
        u, du = self.energy_net.forward_with_slope(x, 0)
        return self.energy_scale * u, self.energy_scale * du

    def kernel_and_slope(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """w(s) and dw/dr = (dw/ds) / h per pair.

        phi_w and phi_w' in one forward-mode pass (:meth:`ConvexIncreasing.forward_with_slope`,
        :meth:`MLP.forward_with_slope`), then w = exp(phi_w) tau^2 and
        dw/ds = w phi_w' - 4 s exp(phi_w) tau, tau = 1 - s^2: differentiable in the network
        parameters with one backward pass (autograd of :meth:`kernel` is the tests' reference).
        """
        phi, dphi = self.log_kernel_shape_and_slope(s)
        tau = bracket.taper(s)
        shape = torch.exp(phi)
        w = shape * tau * tau
        dw_ds = w * dphi - 4.0 * s * shape * tau
        return w, dw_ds / self.cutoff

    def amplitudes_and_slopes(self, s: torch.Tensor, T: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b, c)(s, T) and d(a, b, c)/dT, each (..., 3), in one forward-mode pass
        (of the network at every point, or of its :attr:`friction_table` nodes)."""
        if self.friction_table:
            y, dy_dT = self.tabled_log_amplitudes(s, T)
        else:
            x = torch.stack([s, T / self.energy_scale], dim=-1)
            y, dy = self.friction_net.forward_with_slope(x, 1)
            dy_dT = dy / self.energy_scale
        f = torch.exp(y + self.log_amp0)
        return f, f * dy_dT

    def compile_friction_table(self) -> None:
        """Run the friction table's interpolation (:func:`bicubic_hermite`, forward and
        backward) through torch.compile with dynamic shapes (``train.compile``).

        :meth:`tabled_log_amplitudes` stays eager under a compiled loss (below); its
        interpolation, eager, builds (Q, 16, C) intermediates: forward and backward on the
        162,406 pair rows of a training step at N = 1e4 took 171-213 ms eager and 60-79 ms
        compiled (bench/model.md, "Compiled friction-table interpolation, heap retention,
        compiled rollouts"). Same values to round-off.
        """
        self.bicubic = torch.compile(bicubic_hermite, dynamic=True)

    def compile_evaluation(self) -> None:
        """Run :meth:`evaluate` through torch.compile with dynamic shapes (``rollout.compile``),
        and the friction table's interpolation (:meth:`compile_friction_table`).

        :meth:`evaluate` is most of a rollout step, as some 60 separate element-wise
        passes over the pairs per step when eager; compiled, Inductor fuses them: at N = 1e4
        (bench_model.py's setting, both tables) 73 instead of 174 ms a call (bench/model.md,
        "Compiled friction-table interpolation, heap retention, compiled rollouts"). The
        step's other parts (noise, entropy solve, neighbour list) stay eager. Same values to
        round-off.
        """
        self.compile_friction_table()
        self.evaluate = torch.compile(self.evaluate, dynamic=True)

    # Eager under torch.compile (train.compile): the occupied lattice rows depend on the
    # temperatures' range, read with .item(); compiled, every new range recompiled the graph
    # (17 s a training step at N = 1e4, bench/model.md). The interpolation itself is compiled
    # on its own (compile_friction_table), with the range as a dynamic shape.
    @torch.compiler.disable
    def tabled_log_amplitudes(self, s: torch.Tensor, T: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-amplitudes y(s, T) (Q, 3) and dy/dT from the bicubic :attr:`friction_table`.

        Lattice (G = friction_table): s_k = k/G, k = 0..G, and lambda_l = l/G for the
        integers l of the cells that ln(T/e0) of the queries occupy (T > 0: T = dU/dS with U
        strictly increasing in S). At each node the network gives y, dy/ds and dy/dx_T
        (x_T = T/e0) by forward mode; per unit of lattice index p_s = y_s / G,
        p_lambda = x_T y_x / G, and the cross slope is the second-order difference of
        p_lambda along k (central; one-sided at s = 0, 1): errors O(G^-4) in y and O(G^-3)
        in dy/dT (tests). The nodes sit at fixed points, so y(s, T) is one function
        whatever the other queries; only how many cells are evaluated depends on the spread
        of T (about (ln(T_max/T_min) G + 2) (G + 1) nodes).
        dy/dT = (dp/dlambda_index) G / T, exact for the interpolant.
        """
        shape = s.shape
        s, T = s.reshape(-1), T.reshape(-1)
        G = self.friction_table
        e0 = self.energy_scale
        index_T = torch.log(T / e0) * G
        known = index_T.detach()
        known = known[torch.isfinite(known)]
        if known.numel() == 0:
            lo, hi = 0, 1
        else:
            low, high = torch.aminmax(known)  # one read of the range (one sync on a GPU)
            lo = math.floor(low.item())
            hi = max(math.floor(high.item()) + 1, lo + 1)
        s_nodes = unit_grid(G, s)
        x_nodes = torch.exp(torch.arange(lo, hi + 1, dtype=s.dtype, device=s.device) / G)
        grid = torch.stack(torch.broadcast_tensors(s_nodes[:, None], x_nodes[None, :]), -1)
        y, jacobian = self.friction_net.forward_with_jacobian(grid)
        y_s, y_x = jacobian.unbind(-1)
        p_s = y_s / G
        p_l = y_x * x_nodes[None, :, None] / G
        p_sl = 0.5 * torch.cat([-3 * p_l[:1] + 4 * p_l[1:2] - p_l[2:3], p_l[2:] - p_l[:-2],
                                3 * p_l[-1:] - 4 * p_l[-2:-1] + p_l[-3:-2]])
        nodes = torch.stack([y, p_s, p_l, p_sl], dim=2)
        p, dp = self.bicubic(nodes, s.clamp(0.0, 1.0) * G, index_T - lo)
        dp = dp * (G / T)[:, None]
        return p.reshape(*shape, p.shape[-1]), dp.reshape(*shape, p.shape[-1])

    def self_weight(self, like: torch.Tensor) -> torch.Tensor:
        return self.kernel(torch.zeros((), dtype=like.dtype, device=like.device))

    def specific_volume(self, n: int, pairs: Pairs) -> torch.Tensor:
        """V_i = 1 / d_i, d_i = w(0) + sum_j w(r_ij) (N,), as in :meth:`evaluate`."""
        _, s = self.pair_geometry(pairs)
        return 1.0 / bracket.density(self.kernel(s), self.self_weight(pairs.r), pairs.i,
                                     pairs.j, n)

    # -- the pair core prior ---------------------------------------------------------------
    @property
    def has_core(self) -> bool:
        return self.core_repulsion > 0 and self.core_radius > 0

    def set_core_radius(self, r0: float) -> None:
        """r0 of the core prior: the closest approach of any pair in the training data."""
        if not (math.isfinite(r0) and 0 < r0 <= self.cutoff):
            raise ValueError(f"core radius: expected the data's closest approach in (0, "
                             f"{self.cutoff}], got {r0!r}")
        self.core_radius = float(r0)
        self.hparams["core_radius"] = float(r0)

    def core_pair_energy(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """psi(r) = eps m sigma_v^2 (1 - r/r0)^2 for r < r0, else 0, and dpsi/dr (P,).

        eps = core_repulsion, r0 = core_radius. psi and dpsi/dr vanish at r0, so the force
        -dpsi/dr e_ij is continuous; at contact it is 2 eps m sigma_v^2 / r0. A pair term of
        E, independent of S and v: L dS = 0 and M dE = 0 hold as before (M acts on v and S,
        where dE is unchanged).
        """
        x = torch.clamp(1.0 - r / self.core_radius, min=0.0)
        scale = self.core_repulsion * self.energy_scale
        return scale * x * x, -2.0 * scale * x / self.core_radius

    def core_force(self, e: torch.Tensor, r: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                   n: int) -> torch.Tensor:
        """F_i = -sum_j dpsi/dr(r_ij) e_ij (N, D), +/- per pair (momentum exact)."""
        _, slope = self.core_pair_energy(r)
        return bracket.scatter_pairs(-slope[:, None] * e, i, j, n, sign_j=-1.0)

    def core_energy(self, pairs: Pairs) -> torch.Tensor:
        """sum over pairs of psi(r_ij) (0-d; 0 when the prior is off)."""
        if not self.has_core:
            return torch.zeros((), dtype=pairs.r.dtype, device=pairs.r.device)
        r = torch.sqrt((pairs.r * pairs.r).sum(-1))
        return torch.nansum(self.core_pair_energy(r)[0])

    # -- physics at a state ------------------------------------------------------------
    def pair_geometry(self, pairs: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.sqrt((pairs.r * pairs.r).sum(-1))
        return pairs.r / r[:, None], r / self.cutoff

    def entropy(self, v: torch.Tensor, pairs: Pairs, w: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Teacher entropy S (N,) of one configuration (method.md §4).

        ``w``: the kernel of ``pairs`` if already computed (saves its evaluation).
        """
        e, s = self.pair_geometry(pairs)
        if w is None:
            w = self.kernel(s)
        v_ij = v[pairs.i] - v[pairs.j] + pairs.jump
        return teacher_entropy(s, e, v_ij, w, self.self_weight(v), pairs.i, pairs.j,
                               v.shape[0], self.phi, self.g, self.speed_scale)

    def evaluate(self, v: torch.Tensor, S: torch.Tensor, pairs: Pairs,
                 with_divergence: bool = True, reference: bool = False,
                 kernel: tuple[torch.Tensor, torch.Tensor] | None = None,
                 blocks: bool = True) -> Terms:
        """All terms of the dynamics at state (v, S) with neighbour pairs ``pairs``.

        ``reference=True`` takes the blocks and div M by jacfwd + vmap of
        :func:`bracket.pair_block` (slow; the tests' reference); otherwise closed forms.
        ``kernel``: (w, dw/dr) of ``pairs`` if already computed (:meth:`kernel_and_slope`).
        ``blocks=False`` leaves ``Terms.M`` None (the steppers and the likelihood need only
        M dS and the particles' diagonal blocks, both in closed form).
        """
        n = v.shape[0]
        i, j = pairs.i, pairs.j
        e, s = self.pair_geometry(pairs)
        w, dw_dr = self.kernel_and_slope(s) if kernel is None else kernel
        d = bracket.density(w, self.self_weight(v), i, j, n)
        V = 1.0 / d
        U, T, P, dT = self.thermo(S, V)
        F = bracket.conservative_force(P, d, dw_dr, e, i, j)
        if self.has_core:
            F = F + self.core_force(e, s * self.cutoff, i, j, n)
        mass = self.mass
        v_ij = v[i] - v[j] + pairs.jump
        amp, amp_di, amp_dj = bracket.pair_amplitudes_and_slopes(s, T[i], T[j],
                                                                 self.amplitudes_and_slopes)
        A, B, C = amp.unbind(-1)
        if reference:
            M, div = bracket.pair_blocks_and_divergence(
                v[i], v[j], T[i], T[j], dT[i], dT[j], e, s, pairs.jump, mass, self.amplitudes,
                with_divergence=with_divergence,
            )
            drift_M = bracket.entropy_gradient_drift(M)
        else:
            M = bracket.pair_blocks(v_ij, e, amp, T[i], T[j], mass) if blocks else None
            drift_M = bracket.pair_friction_drift(v_ij, e, A, B, C, T[i], T[j], mass)
            div = None
            if with_divergence:
                div = bracket.pair_divergence(v_ij, e, amp, amp_di, amp_dj, T[i], T[j], dT[i],
                                              dT[j], mass)
        drift_div = None if div is None else self.k_B * div
        return Terms(e, s, v_ij, w, d, V, U, T, P, dT, F, A, B, C, M, drift_M, drift_div, v_ij)

    def particle_blocks(self, terms: Terms, pairs: Pairs, n: int) -> torch.Tensor:
        """M_ii (N, D+1, D+1) over (v_i, S_i) at ``terms`` (:func:`bracket.particle_blocks`)."""
        return bracket.particle_blocks(terms.u_M, terms.e, terms.A, terms.B, terms.C,
                                       terms.T[pairs.i], terms.T[pairs.j], self.mass, pairs.i,
                                       pairs.j, n)

    def drift(self, v: torch.Tensor, terms: Terms, pairs: Pairs) -> torch.Tensor:
        """Mean rate of change of (v, S): (N, D+1) = F/m (v rows) + M dS + k_B div M."""
        pair_drift = terms.drift_M if terms.drift_div is None else terms.drift_M + terms.drift_div
        out = bracket.scatter_pair_vectors(pair_drift, pairs.i, pairs.j, v.shape[0])
        return out + torch.cat([terms.F / self.mass, torch.zeros_like(out[:, -1:])], dim=1)

    def total_energy(self, v: torch.Tensor, U: torch.Tensor,
                     core: torch.Tensor | float = 0.0) -> torch.Tensor:
        """E = sum_i (m |v_i|^2 / 2 + U_i) over present particles + ``core``, the pair core
        prior's energy (:meth:`core_energy`)."""
        kinetic = 0.5 * self.mass * (v * v).sum(-1)
        return torch.nansum(kinetic + U) + core

    # -- learning ----------------------------------------------------------------------
    def nll(self, snap: Snapshot, dt: float, mean_only: bool = False,
            equipartition: float = 0.0) -> torch.Tensor:
        """Per-particle Gaussian NLL of the (v, S) increment, summed over scored particles.

        Returns the sum (a 0-d tensor); divide by the number of scored particles for a mean.
        ``mean_only``: the warm-up loss of staged training, sum |e_v / sigma_dv|^2 of the
        velocity prediction errors only, e_v = r_v (explicit friction) or G^-1 r_v
        (midpoint friction, G = d r / d v(t+dt)); fits the conservative force and the mean
        friction before the noise amplitudes are trusted to explain what is left.
        Midpoint friction (``friction_scheme``): the friction drift M dS and the entropy
        rows' coupling to the noise are evaluated at (v(t) + v(t+dt))/2
        (:meth:`midpoint_terms`) and the NLL is that of x(t+dt), i.e. it includes
        -2 log det G per particle (the composite likelihood keeps each particle's own block).
        ``equipartition`` > 0 adds, per scored particle, equipartition * log(k_B <T> /
        k_B T_kin)^2, T_kin the kinetic temperature of the snapshot's frames
        (:func:`ddpd.model.equipartition.kinetic_temperature`): a prior for equilibrium
        data that ties the fluctuation-dissipation temperature to the kinetic temperature
        (the NLL alone leaves it poorly determined when the friction signal is weak; see
        bench/model.md).
        """
        kernel0 = self.kernel_and_slope(self.pair_geometry(snap.pairs0)[1])
        S0 = self.entropy(snap.v0, snap.pairs0, kernel0[0])
        S1 = self.entropy(snap.v1, snap.pairs1)
        terms = self.evaluate(snap.v0, S0, snap.pairs0, kernel=kernel0, blocks=False)
        log_jacobian, jacobian = None, None
        if self.friction_scheme == "midpoint":
            # friction at the midpoint velocities; unscored particles keep v(t)
            v1 = snap.v0.index_copy(0, snap.idx0, snap.v1[snap.idx1])
            i, j = snap.pairs0.i, snap.pairs0.j
            u_mid = 0.5 * (terms.v_ij + v1[i] - v1[j] + snap.pairs0.jump)
            terms, W = self.midpoint_terms(terms, snap.pairs0, u_mid)
            jacobian = bracket.friction_jacobian(W, i, j, snap.v0.shape[0], dt)[snap.idx0]
            log_jacobian = 2.0 * torch.log(torch.diagonal(
                torch.linalg.cholesky(jacobian), dim1=-2, dim2=-1)).sum(-1)
        drift = self.drift(snap.v0, terms, snap.pairs0)
        x0 = torch.cat([snap.v0, S0[:, None]], dim=1)[snap.idx0]
        x1 = torch.cat([snap.v1, S1[:, None]], dim=1)[snap.idx1]
        residual = x1 - x0 - drift[snap.idx0] * dt
        if equipartition > 0:
            # prior: k_B <T> = kinetic temperature of the frames (equilibrium data)
            kinetic = kinetic_temperature(snap.v0, self.mass, snap.frame0)
            gap = torch.log(self.k_B * terms.T.mean() / kinetic)
            prior = equipartition * len(snap.idx0) * gap * gap
        else:
            prior = torch.zeros((), dtype=residual.dtype, device=residual.device)
        if mean_only:
            error = residual[:, : self.dim]
            if jacobian is not None:
                # error of the predicted v(t+dt): G^-1 r (the residual r itself shrinks
                # with weaker friction, its minimum is not the regression's)
                error = torch.linalg.solve(jacobian, error[..., None])[..., 0]
            return ((error / self.delta_v_scale) ** 2).sum() + prior
        Mii = self.particle_blocks(terms, snap.pairs0, snap.v0.shape[0])
        cov = 2.0 * self.k_B * dt * Mii[snap.idx0]
        scale = torch.ones(self.dim + 1, dtype=residual.dtype, device=residual.device)
        scale[: self.dim] = self.delta_v_scale
        nll = gaussian_nll(residual, cov, scale, self.jitter).sum() + prior
        if log_jacobian is not None:
            # density of x(t+dt), not of the residual: -2 log |det d r / d v(t+dt)|
            nll = nll - 2.0 * log_jacobian.sum()
        return nll

    def midpoint_terms(self, terms: Terms, pairs: Pairs, u_mid: torch.Tensor
                       ) -> tuple[Terms, torch.Tensor]:
        """``terms`` with the velocity dependence of the step taken at ``u_mid`` (P, D); also W.

        Friction scheme 'midpoint' (u_mid = (u(t) + u(t+dt)) / 2 per pair, Lees-Edwards jump
        included; W = K (1/T_i + 1/T_j) / (2m) of :func:`bracket.friction_weights`):

        * M is the pair blocks at u_mid, so M dS is the friction at u_mid and the entropy
          noise couples to the pair force as -f . u_mid / 2 (covariance 2 k_B dt M_ii of the
          likelihood; :func:`ddpd.model.noise.noise_at_midpoint` in the steppers). The
          velocity rows of M do not depend on u, the amplitudes stay those at t.
        * k_B div M loses the kinetic Ito term -k_B tr K / (m T) of its entropy columns: it is
          the mean of the extra heat -m (du / 2) . dv that the midpoint work supplies.

        Then every pair's heat T_i dS_i + T_j dS_j from friction and noise is exactly minus
        its kinetic-energy change m u_mid . dv_pair (with T_i dS_i the linearised heat), at any
        dt: the Euler step does not drain (or feed) the internal energy through the kinetic
        energy, which with the Ito form at gamma dt ~ 2 lost ~ gamma dt k_B T per step. The
        two forms agree as dt -> 0 (same stochastic differential equation). The other Ito
        terms of div M (the T-dependence of the entropy noise) still move energy in one
        Euler step (bench/model.md); the exact-energy step does not.
        """
        i, j = pairs.i, pairs.j
        T_i, T_j = terms.T[i], terms.T[j]
        M_mid = None
        if terms.M is not None:
            amp = torch.stack([terms.A, terms.B, terms.C], dim=-1)
            M_mid = bracket.pair_blocks(u_mid, terms.e, amp, T_i, T_j, self.mass)
        drift_M = bracket.pair_friction_drift(u_mid, terms.e, terms.A, terms.B, terms.C, T_i,
                                              T_j, self.mass)
        K = bracket.noise_covariance(terms.A, terms.B, terms.e)
        W = bracket.friction_weights(K, T_i, T_j, self.mass)
        drift_div = terms.drift_div
        if drift_div is not None:
            kinetic = self.k_B * bracket.noise_covariance_trace(terms.A, terms.B, self.dim) / (
                self.mass)
            drift_div = torch.cat([drift_div[:, :2 * self.dim],
                                   (drift_div[:, 2 * self.dim] + kinetic / T_i)[:, None],
                                   (drift_div[:, 2 * self.dim + 1] + kinetic / T_j)[:, None]],
                                  dim=1)
        return terms._replace(M=M_mid, drift_M=drift_M, drift_div=drift_div, u_M=u_mid), W

    # -- construction and the model protocol (ddpd.model.api) ---------------------------
    @classmethod
    def build(cls, stats: dict, params: dict) -> MetriplecticModel:
        """A fresh model from dataset statistics and the ``train.model`` section."""
        from ddpd.coarse.dataset import cutoff_for_neighbours

        p = parse_params(cls.params_class, params, "train.model")
        cutoff = p.cutoff or cutoff_for_neighbours(stats["number_density"], stats["dim"],
                                                   p.target_neighbours)
        model = cls(
            dim=stats["dim"], cutoff=float(cutoff), width=p.width, depth=p.depth,
            teacher_features=p.teacher_features, mass=stats["mass"], learn_mass=p.learn_mass,
            speed_scale=stats["speed_scale"], dt=stats["dt"], friction=tuple(stats["friction"]),
            d_ref=stats["d_ref"], delta_v_scale=stats["delta_v_scale"], jitter=p.jitter,
            friction_scheme=p.friction_scheme, learn_k_B=p.learn_k_B, kernel_shape=p.kernel_shape,
            kernel_table=p.kernel_table, core_repulsion=p.core_repulsion,
            friction_table=p.friction_table, energy=p.energy,
        )
        model.hparams["dtype"] = p.dtype
        # Equipartition at the start: k_B T(S=0, V=1/d_ref) = m sigma_v^2.
        with torch.no_grad():
            _, T0, _, _ = model.thermo(torch.zeros(1), torch.full((1,), 1.0 / model.d_ref),
                                       second=False)
            model.log_k_B.fill_(math.log(model.energy_scale / float(T0[0])))
        return model.to(torch.float64 if p.dtype == "float64" else torch.float32)

    @torch.no_grad()
    def calibrate(self, snaps: list[Snapshot], dt: float) -> dict[str, float]:
        """Physically informed start from the data (before training; shared/method.md §4).

        Two scalars are set so that the fresh model's linear friction reproduces the data's
        one-step velocity memory and equipartition:

        * k_B so that k_B <T> = k_B T_kin, the kinetic temperature of ``snaps``
          (:func:`ddpd.model.equipartition.kinetic_temperature`, each frame's present
          particles);
        * the friction scale (log_amp0 of A and B) so that the mean per-particle rate
          gamma = tr(sum_pairs W) / D, W = K (1/T_i + 1/T_j) / (2m), gives the measured
          lag-dt velocity autocorrelation a = <v(t) . v(t+dt)> / <v . v> (peculiar
          velocities): gamma dt = 2 (1 - a) / (1 + a) for midpoint friction (the Cayley
          map (1 - gamma dt/2) / (1 + gamma dt/2) = a), 1 - a for explicit friction.

        The noise then follows by fluctuation-dissipation (2 k_B M dt). Returns the measured
        and set values (JSON-able).
        """
        num, den = 0.0, 0.0
        T_sum, T_n, rate_sum, rate_n = 0.0, 0, 0.0, 0
        for snap in snaps:
            # peculiar velocities relative to every present particle of the frame
            v0 = (snap.v0 - snap.v0.mean(0))[snap.idx0]
            v1 = (snap.v1 - snap.v1.mean(0))[snap.idx1]
            num += float((v0 * v1).sum())
            den += float((v0 * v0).sum())
            S0 = self.entropy(snap.v0, snap.pairs0)
            terms = self.evaluate(snap.v0, S0, snap.pairs0, with_divergence=False)
            i, j = snap.pairs0.i, snap.pairs0.j
            K = bracket.noise_covariance(terms.A, terms.B, terms.e)
            W = bracket.friction_weights(K, terms.T[i], terms.T[j], self.mass)
            rate = torch.diagonal(bracket.scatter_pairs(W, i, j, len(snap.v0)), dim1=-2,
                                  dim2=-1).sum(-1) / self.dim
            T_sum += float(terms.T[snap.idx0].sum())
            T_n += len(snap.idx0)
            rate_sum += float(rate[snap.idx0].sum())
            rate_n += len(snap.idx0)
        if den <= 0 or rate_sum <= 0 or T_n == 0:
            raise ValueError("calibrate: the snapshots have no scored particle with neighbours")
        a = min(max(num / den, -0.9), 0.99)
        target = 2 * (1 - a) / (1 + a) if self.friction_scheme == "midpoint" else 1 - a
        kinetic_T = frames_kinetic_temperature(((s.v0, s.frame0) for s in snaps), self.mass)
        mean_T = T_sum / T_n
        rate_now = rate_sum / rate_n * dt
        # W scales with the squared A, B amplitudes (each the product a_i a_j of two factors)
        shift = 0.25 * math.log(target / rate_now)
        self.log_amp0[:2] += shift
        self.log_k_B.fill_(math.log(kinetic_T / mean_T))
        return dict(velocity_memory=a, gamma_dt=target, gamma_dt_before=rate_now,
                    kinetic_temperature=kinetic_T, k_B=kinetic_T / mean_T)

    @torch.no_grad()
    def mean_temperature(self, snaps: list[Snapshot]) -> float:
        """k_B <T> [energy] over the scored particles of ``snaps``, each at its teacher's S."""
        T_sum, T_n = 0.0, 0
        for snap in snaps:
            S0 = self.entropy(snap.v0, snap.pairs0)
            terms = self.evaluate(snap.v0, S0, snap.pairs0, with_divergence=False)
            T_sum += float(terms.T[snap.idx0].sum())
            T_n += len(snap.idx0)
        if T_n == 0:
            raise ValueError("mean_temperature: the snapshots have no scored particle")
        return float(self.k_B) * T_sum / T_n

    @torch.no_grad()
    def match_equipartition(self, snaps: list[Snapshot],
                            kinetic: float | None = None) -> dict[str, float]:
        """Set k_B <T> over ``snaps`` to the data's kinetic temperature ``kinetic`` exactly
        (None: that of ``snaps``), keeping the noise (equilibrium).

        k_B -> f k_B and every pair amplitude squared (A^2, B^2, C^2) -> A^2 / f, with
        f = kinetic temperature / (k_B <T>): the noise covariance 2 k_B M dt and k_B div M are
        unchanged, the friction M dS scales by 1/f. This moves the model only along the
        direction the one-step likelihood determines worst (the fluctuation-dissipation
        temperature), so that the model's own stationary state, whose kinetic temperature
        is k_B T, has the data's temperature; T_kin over each frame's present particles
        (:func:`ddpd.model.equipartition.kinetic_temperature`). One frame's T_kin scatters
        by sqrt(2 / (D (N - 1))) (8.9% for 128 particles in 2D), the model's k_B <T> far
        less: training passes the kinetic temperature of all its frames. For data at rest
        only (the peculiar velocity of sheared data contains the flow). Returns f and the
        two temperatures.
        """
        model_T = self.mean_temperature(snaps)
        kinetic_T = (frames_kinetic_temperature(((s.v0, s.frame0) for s in snaps), self.mass)
                     if kinetic is None else float(kinetic))
        if not kinetic_T > 0:
            raise ValueError(f"match_equipartition: expected a positive kinetic temperature, "
                             f"got {kinetic_T}")
        f = kinetic_T / model_T
        self.log_k_B += math.log(f)
        self.log_amp0 -= 0.25 * math.log(f)  # A = a_i a_j: A^2 ~ exp(4 log_amp0)
        return dict(factor=f, kinetic_temperature=kinetic_T, model_temperature_before=model_T)

    @classmethod
    def from_hparams(cls, hparams: dict) -> MetriplecticModel:
        """Rebuild (untrained) from :attr:`hparams`; then load_state_dict."""
        h = dict(hparams)
        dtype = h.pop("dtype", "float32")
        h["friction"] = tuple(h["friction"])
        h.setdefault("friction_scheme", "explicit")  # models saved before the option
        h.setdefault("kernel_shape", "free")  # models saved before the option
        h.setdefault("kernel_table", 0)  # models saved before the option
        h.setdefault("core_repulsion", 0.0)  # models saved before the option
        h.setdefault("core_radius", 0.0)
        h.setdefault("friction_table", 0)  # models saved before the option
        h.setdefault("energy", "coupled")  # models saved before the option
        model = cls(**h)
        model.hparams["dtype"] = dtype
        return model.to(torch.float64 if dtype == "float64" else torch.float32)

    def init_state(self, q: torch.Tensor, v: torch.Tensor, box, t: float = 0.0,
                   offset: float | None = None):
        """Initial :class:`ddpd.model.integrate.State` (S from the teacher)."""
        from ddpd.model.integrate import init_state

        return init_state(self, q, v, box, t, offset)

    def step(self, state, box, dt: float, generator: torch.Generator | None,
             integrator: str = "exact_energy"):
        """Advance ``state`` by dt with ``integrator`` 'euler' or 'exact_energy'."""
        from ddpd.model.integrate import euler_step, exact_energy_step

        if integrator == "euler":
            return euler_step(self, state, box, dt, generator)
        if integrator == "exact_energy":
            return exact_energy_step(self, state, box, dt, generator)
        raise ValueError(f"rollout.integrator: expected 'euler' or 'exact_energy', got "
                         f"{integrator!r}")

    @torch.no_grad()
    def observables(self, state, box) -> dict[str, torch.Tensor]:
        """entropy (N,), total_energy, total_entropy () and total_momentum (D,)."""
        from ddpd.model.integrate import internal_energy_at

        U = internal_energy_at(self, state, box)
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        return dict(
            entropy=state.S,
            total_energy=self.total_energy(state.v, U, self.core_energy(pairs)),
            total_entropy=torch.nansum(state.S),
            total_momentum=self.mass * torch.nansum(state.v, dim=0),
        )
