"""Ablation: the metriplectic model without the entropy variable (isothermal).

What is removed, relative to :class:`ddpd.model.metriplectic.MetriplecticModel`
(shared/method.md §1-4), and nothing else:

* the entropy S_i and its equation: S is held at 0, the entropy teacher (phi, g) is gone and
  the likelihood scores the velocity increments only;
* the temperature T_i = dU/dS: replaced by ONE learned constant T (a heat bath), so
  U(V) = U(S=0, V) is a learned equation of state of the specific volume alone and the
  friction amplitudes a, b depend on s only (through a(s, T) at the constant T);
* energy conservation: kinetic energy dissipated by friction goes to the bath, not to U.

What is kept: the learned kernel w(r), density d_i, the pressure P_i = -dU/dV and the
conservative force of §2; the pair noise f_ij = A xi_bar e + B tr(xi)/D e with
m dv_i = +/- sqrt(2 k_B dt) f_ij (momentum exact); and the friction from the same bracket
M: the velocity rows of M dS at constant T,

    m dv_i/dt |_friction = -sum_j K_ij v_ij / T,     K_ij = <f f^T> (method.md §2),

so the fluctuation-dissipation relation holds at the bath temperature k_B T (the velocity
rows of k_B div M vanish because K does not depend on v and T is constant). This is a DPD
with learned weights, a learned equation of state and tensorial (A, B) friction: the
difference to the full model measures what the entropy variable buys.

Steps: Euler-Maruyama / symplectic Euler for (q, v) (``integrator`` is ignored: the
exact-energy stepper does not apply to a model coupled to a bath). The friction scheme is the
full model's (``train.model.friction_scheme``): 'midpoint' (default) takes the friction at
(v(t) + v(t+dt))/2 in the likelihood (with the Jacobian term) and in the step (one
conjugate-gradient solve, :func:`ddpd.model.bracket.midpoint_velocity_change`); 'explicit'
at v(t).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ddpd.model import bracket
from ddpd.model.equipartition import kinetic_temperature
from ddpd.model.integrate import State, _advance_positions, init_state
from ddpd.model.likelihood import gaussian_nll
from ddpd.model.metriplectic import MetriplecticModel, Snapshot
from ddpd.model.noise import pair_noise
from ddpd.space.neighbours import Pairs, neighbour_pairs


class IsothermalModel(MetriplecticModel):
    """MetriplecticModel with S frozen at 0 and a learned constant temperature.

    Same constructor and ``train.model`` keys as the metriplectic model
    (:class:`ddpd.model.params.ModelParams`; ``teacher_features`` is unused).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.phi, self.g  # no entropy teacher
        # T = e0 exp(log_T): starts at the data's m sigma_v^2
        self.log_T = nn.Parameter(torch.tensor(0.0))

    @property
    def temperature(self) -> torch.Tensor:
        """The bath temperature T (energy units of U, i.e. m sigma_v^2 scale)."""
        return self.energy_scale * torch.exp(self.log_T)

    def entropy(self, v: torch.Tensor, pairs: Pairs, w: torch.Tensor | None = None
                ) -> torch.Tensor:
        """S is not a variable here: zeros (N,)."""
        return torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)

    def thermo(self, S: torch.Tensor, V: torch.Tensor, second: bool = True):
        """U(0, V), T = the constant bath temperature, P = -dU/dV, dT/dS = 0."""
        U, _, P, _ = super().thermo(torch.zeros_like(S), V, second=False)
        T = self.temperature.to(V.dtype).expand_as(V)
        return U, T, P, torch.zeros_like(V)

    def energy_and_temperature(self, S: torch.Tensor, V: torch.Tensor):
        """U(0, V) and the bath temperature (as :meth:`thermo`)."""
        return self.thermo(S, V, second=False)[:2]

    def velocity_drift(self, v: torch.Tensor, pairs: Pairs):
        """Deterministic acceleration (N, D) = F/m - sum_j K_ij v_ij / (m T), and the terms."""
        terms = self.evaluate(v, torch.zeros(v.shape[0], dtype=v.dtype, device=v.device), pairs,
                              with_divergence=False, blocks=False)
        rate = bracket.scatter_pair_vectors(terms.drift_M, pairs.i, pairs.j, v.shape[0])
        return terms.F / self.mass + rate[:, : self.dim], terms

    def nll(self, snap: Snapshot, dt: float, mean_only: bool = False,
            equipartition: float = 0.0) -> torch.Tensor:
        """Gaussian NLL of the velocity increments (covariance 2 k_B dt M_ii, velocity block),
        summed over scored particles. ``equipartition`` > 0 adds the prior of the full model
        (train.equipartition) with the bath's k_B T: equipartition * log(k_B T /
        k_B T_kin)^2 per scored particle (:func:`ddpd.model.equipartition.kinetic_temperature`)."""
        accel, terms = self.velocity_drift(snap.v0, snap.pairs0)
        jacobian = None
        if self.friction_scheme == "midpoint":
            # friction at the midpoint velocities; unscored particles keep v(t)
            i, j = snap.pairs0.i, snap.pairs0.j
            v1 = snap.v0.index_copy(0, snap.idx0, snap.v1[snap.idx1])
            u_mid = 0.5 * (terms.v_ij + v1[i] - v1[j] + snap.pairs0.jump)
            mid, W = self.midpoint_terms(terms, snap.pairs0, u_mid)
            rate = bracket.scatter_pair_vectors(mid.drift_M, i, j, snap.v0.shape[0])
            accel = terms.F / self.mass + rate[:, : self.dim]
            jacobian = bracket.friction_jacobian(W, i, j, snap.v0.shape[0], dt)[snap.idx0]
        residual = (snap.v1[snap.idx1] - snap.v0[snap.idx0]) - accel[snap.idx0] * dt
        prior = torch.zeros((), dtype=residual.dtype, device=residual.device)
        if equipartition > 0:
            kinetic = kinetic_temperature(snap.v0, self.mass, snap.frame0)
            gap = torch.log(self.k_B * self.temperature / kinetic)
            prior = equipartition * len(snap.idx0) * gap * gap
        if mean_only:
            error = residual
            if jacobian is not None:  # error of the predicted v(t+dt), as the full model
                error = torch.linalg.solve(jacobian, residual[..., None])[..., 0]
            return ((error / self.delta_v_scale) ** 2).sum() + prior
        Mii = self.particle_blocks(terms, snap.pairs0, snap.v0.shape[0])
        cov = 2.0 * self.k_B * dt * Mii[snap.idx0][:, : self.dim, : self.dim]
        scale = torch.full((self.dim,), self.delta_v_scale, dtype=residual.dtype,
                           device=residual.device)
        nll = gaussian_nll(residual, cov, scale, self.jitter).sum() + prior
        if jacobian is not None:
            # density of v(t+dt), not of the residual: -2 log det G per particle
            log_det = 2.0 * torch.log(torch.diagonal(torch.linalg.cholesky(jacobian),
                                                     dim1=-2, dim2=-1)).sum(-1)
            nll = nll - 2.0 * log_det.sum()
        return nll

    @classmethod
    def build(cls, stats: dict, params: dict) -> IsothermalModel:
        """As MetriplecticModel.build; then k_B T = m sigma_v^2 (equipartition) at the start."""
        model = super().build(stats, params)
        with torch.no_grad():
            model.log_T.fill_(0.0)
            model.log_k_B.fill_(0.0)
        return model

    def init_state(self, q: torch.Tensor, v: torch.Tensor, box, t: float = 0.0,
                   offset: float | None = None) -> State:
        return init_state(self, q, v, box, t, offset)

    @torch.no_grad()
    def step(self, state: State, box, dt: float, generator: torch.Generator | None,
             integrator: str = "euler") -> State:
        """Euler-Maruyama with pair noise (momentum exact), then q' = q + v' dt; midpoint
        friction: (I + dt L/2) y = F dt/m + noise - dt sum_pairs(W u), v' = v + y."""
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        accel, terms = self.velocity_drift(state.v, pairs)
        kick = self.pair_velocity_noise(terms, pairs, dt, generator)
        n = state.v.shape[0]
        if self.friction_scheme == "midpoint":
            T_pair = terms.T[pairs.i]
            W = bracket.friction_weights(bracket.noise_covariance(terms.A, terms.B, terms.e),
                                         T_pair, T_pair, self.mass)
            y = bracket.midpoint_velocity_change(W, terms.v_ij, kick, pairs.i, pairs.j, n, dt,
                                                 extra=terms.F / self.mass * dt)
            v = state.v + y
        else:
            v = state.v + accel * dt + bracket.scatter_pairs(kick, pairs.i, pairs.j, n,
                                                             sign_j=-1.0)
        return _advance_positions(self, state.q, v, box, state, dt)

    def pair_velocity_noise(self, terms, pairs: Pairs, dt: float,
                            generator: torch.Generator | None) -> torch.Tensor:
        """One draw of the pair noise's velocity increment of each pair (P, D), + to i and
        - to j (method.md §2)."""
        T_pair = terms.T[pairs.i]
        kick = pair_noise(terms.A, terms.B, terms.C, terms.e, terms.v_ij, T_pair, T_pair,
                          self.mass, self.k_B, dt, generator)
        return kick.dv

    @torch.no_grad()
    def observables(self, state: State, box) -> dict[str, torch.Tensor]:
        """entropy NaN (N,), total_energy = kinetic + sum U(0, V_i) + core prior (not
        conserved: bath),
        total_entropy NaN, total_momentum (D,)."""
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        _, s = self.pair_geometry(pairs)
        d = bracket.density(self.kernel(s), self.self_weight(state.v), pairs.i, pairs.j,
                            state.v.shape[0])
        U = self.internal_energy(torch.zeros_like(d), 1.0 / d)
        nan = torch.tensor(math.nan, dtype=state.v.dtype, device=state.v.device)
        return dict(entropy=torch.full_like(state.S, torch.nan),
                    total_energy=self.total_energy(state.v, U, self.core_energy(pairs)),
                    total_entropy=nan,
                    total_momentum=self.mass * torch.nansum(state.v, dim=0))
