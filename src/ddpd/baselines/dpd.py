"""Baseline: dissipative particle dynamics (DPD) with fitted parameters.

Groot & Warren, J. Chem. Phys. 107, 4423 (1997), Eqs. (2)-(6) and Español & Warren,
Europhys. Lett. 30, 191 (1995). Per unordered pair (i, j), r = |r_ij| < h, s = r / h,
e = r_ij / r, v_ij = v_i - v_j:

    F^C_ij = a (1 - s) e                         (conservative, soft repulsion)
    F^D_ij = -gamma w_D(s) (e . v_ij) e          (dissipative)
    F^R_ij = sigma w_R(s) theta_ij / sqrt(dt) e  (random, theta_ij = theta_ji ~ N(0, 1))
    w_R(s) = (1 - s)^k,  w_D = w_R^2,  sigma^2 = 2 gamma k_B T   (fluctuation-dissipation)

Every pair force is added to i and subtracted from j: momentum is conserved exactly.

Fit: a, gamma and k_B T (log-parametrised for gamma, k_B T) maximise the per-particle
Gaussian likelihood of the velocity increment over one data interval dt (Euler-Maruyama):

    mean_i = sum_j (F^C_ij + F^D_ij) dt / m,
    cov_i  = sum_j sigma^2 w_R^2 e e^T dt / m^2     (the diagonal block of the pair noise),

the same composite likelihood as the metriplectic model (shared/method.md §4), trained by
ddpd.train. The cutoff h and the weight exponent k are hyperparameters (not fitted).

Friction scheme (``friction_scheme``, as the metriplectic model's, ddpd.model.bracket):

* ``explicit``: F^D at v(t), as above (Euler-Maruyama). Its stationary kinetic temperature
  is 2 / (2 - gamma_eff dt) k_B T and it diverges for gamma_eff dt > 2, where gamma_eff is a
  particle's total friction rate sum_j gamma w_D / m; coarse data with a frame interval
  longer than the velocity memory (star centres every tau) fit gamma_eff dt ~ 1-2.
* ``midpoint`` (default): F^D at the midpoint pair velocity u_mid = (v_ij(t) + v_ij(t+dt))/2,
  i.e. per pair dv_i = -dv_j = -dt W u_mid with W = gamma w_D e e^T / m (1/time), the
  implicit-midpoint (Cayley) friction step. With the pair noise above its noise covariance
  is 2 (k_B T / m) dt L (L the graph Laplacian of the W's), so the linear friction + noise
  map has the stationary velocity covariance k_B T / m at any dt. The likelihood is that of
  v(t+dt): mean at u_mid, the same covariance, and the Jacobian term -2 log det G_i per
  particle, G_i = I + (dt/2) sum_j W_ij = d r_i / d v_i(t+dt). The step solves
  (I + dt L / 2) y = kicks - dt L v(t) for the midpoint velocities by conjugate gradients
  (ddpd.model.bracket.midpoint_velocity_change) and then applies the pair increments
  (F^C dt + noise) / m - dt W u_mid, +/- to i and j, so momentum stays exact.
The model has no internal variable: ``S`` stays zero and ``entropy`` is NaN.

Units: the data's (length, time, mass); a is a force, gamma a mass / time, k_B T an energy.
Total energy = kinetic + sum over pairs a h (1 - s)^2 / 2 (the potential of F^C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ddpd.baselines.base import BaselineModel, torch_dtype
from ddpd.model import bracket
from ddpd.model.bracket import scatter_pairs
from ddpd.model.equipartition import kinetic_temperature
from ddpd.model.integrate import State, _advance_positions
from ddpd.model.likelihood import gaussian_nll
from ddpd.model.metriplectic import Snapshot
from ddpd.params import is_number, parse_params, require
from ddpd.space.neighbours import Pairs, neighbour_pairs

FRICTION_SCHEMES = ("midpoint", "explicit")


@dataclass(frozen=True)
class DPDParams:
    """Section ``train.model`` for ``train.kind: dpd``.

    Attributes:
        cutoff: interaction range h (data length units); null -> the dataset's cutoff (null).
        exponent: k of the weight w_R = (1 - r/h)^k; w_D = w_R^2 (1.0, Groot & Warren).
        dtype: "float32" or "float64" ("float64": three parameters, cheap).
        jitter: dimensionless variance added to each covariance in the likelihood (1e-4).
        friction_scheme: "midpoint" (default: F^D at the midpoint velocities in the
            likelihood and the step, stable at any gamma dt) or "explicit" (at v(t)).
    """

    cutoff: float | None = None
    exponent: float = 1.0
    dtype: str = "float64"
    jitter: float = 1e-4
    friction_scheme: str = "midpoint"

    def __post_init__(self) -> None:
        s = "train.model"
        if self.cutoff is not None:
            require(is_number(self.cutoff) and self.cutoff > 0, s, "cutoff",
                    "a positive length or null", self.cutoff)
        require(is_number(self.exponent) and self.exponent > 0, s, "exponent",
                "a positive number", self.exponent)
        require(self.dtype in ("float32", "float64"), s, "dtype", "'float32' or 'float64'",
                self.dtype)
        require(is_number(self.jitter) and self.jitter >= 0, s, "jitter", "a number >= 0",
                self.jitter)
        require(self.friction_scheme in FRICTION_SCHEMES, s, "friction_scheme",
                "'midpoint' or 'explicit'", self.friction_scheme)


class DPDModel(BaselineModel):
    """DPD with learned a, gamma, k_B T (module docstring).

    Args (saved in :attr:`hparams`): dim, cutoff h, exponent k, mass m, dt, delta_v_scale
    (residual scale of dv), force0 / gamma0 / kT0 (initial values), jitter, friction_scheme.
    """

    params_class = DPDParams
    default_dtype = "float64"

    def __init__(self, dim: int, cutoff: float, exponent: float, mass: float, dt: float,
                 delta_v_scale: float, force0: float, gamma0: float, kT0: float,
                 jitter: float = 1e-4, friction_scheme: str = "midpoint"):
        super().__init__()
        if friction_scheme not in FRICTION_SCHEMES:
            raise ValueError(f"train.model.friction_scheme: expected 'midpoint' or 'explicit', "
                             f"got {friction_scheme!r}")
        self.hparams = dict(dim=dim, cutoff=cutoff, exponent=exponent, mass=mass, dt=dt,
                            delta_v_scale=delta_v_scale, force0=force0, gamma0=gamma0, kT0=kT0,
                            jitter=jitter, friction_scheme=friction_scheme)
        self.friction_scheme = friction_scheme
        self.dim = dim
        self.cutoff = cutoff
        self.exponent = exponent
        self.delta_v_scale = delta_v_scale
        self.force0 = force0
        self.jitter = jitter
        self.register_buffer("log_mass", torch.tensor(math.log(mass)))
        self.register_buffer("log_gamma0", torch.tensor(math.log(gamma0)))
        self.register_buffer("log_kT0", torch.tensor(math.log(kT0)))
        self.a_raw = nn.Parameter(torch.tensor(0.0))
        self.log_gamma_rel = nn.Parameter(torch.tensor(0.0))
        self.log_kT_rel = nn.Parameter(torch.tensor(0.0))

    # -- parameters ----------------------------------------------------------------------
    @property
    def mass(self) -> torch.Tensor:
        return torch.exp(self.log_mass)

    @property
    def a(self) -> torch.Tensor:
        """Conservative amplitude a (force units)."""
        return self.force0 * self.a_raw

    @property
    def gamma(self) -> torch.Tensor:
        """Dissipative coefficient gamma (mass / time)."""
        return torch.exp(self.log_gamma0 + self.log_gamma_rel)

    @property
    def kT(self) -> torch.Tensor:
        """k_B T (energy units)."""
        return torch.exp(self.log_kT0 + self.log_kT_rel)

    @property
    def sigma(self) -> torch.Tensor:
        """Random-force amplitude sigma = sqrt(2 gamma k_B T)."""
        return torch.sqrt(2.0 * self.gamma * self.kT)

    def weight(self, s: torch.Tensor) -> torch.Tensor:
        """w_R(s) = (1 - s)^k for s < 1 (dimensionless)."""
        return torch.clamp(1.0 - s, min=0.0) ** self.exponent

    # -- dynamics ------------------------------------------------------------------------
    def _geometry(self, v: torch.Tensor, pairs: Pairs):
        r = torch.sqrt((pairs.r * pairs.r).sum(-1))
        e = pairs.r / r[:, None]
        s = r / self.cutoff
        v_ij = v[pairs.i] - v[pairs.j] + pairs.jump
        return e, s, v_ij

    def pair_force(self, v: torch.Tensor, pairs: Pairs, u: torch.Tensor | None = None
                   ) -> torch.Tensor:
        """Deterministic pair force F^C + F^D on i (P, D); j receives minus it.

        ``u`` (P, D): the pair velocity of F^D (e.g. the midpoint one); None = v_ij(t).
        """
        e, s, v_ij = self._geometry(v, pairs)
        u = v_ij if u is None else u
        w_r = self.weight(s)
        magnitude = self.a * (1.0 - s) - self.gamma * w_r * w_r * (e * u).sum(-1)
        return magnitude[:, None] * e

    def friction_weights(self, e: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """W = gamma w_D(s) e e^T / m per pair (P, D, D) (1/time): F^D dt / m = -dt W v_ij."""
        w_d = self.weight(s) ** 2
        return (self.gamma * w_d / self.mass)[:, None, None] * e[:, :, None] * e[:, None, :]

    def increment_mean_and_covariance(self, v: torch.Tensor, pairs: Pairs, dt: float,
                                      u: torch.Tensor | None = None
                                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (N, D) and covariance (N, D, D) of each particle's velocity increment.

        ``u`` (P, D): the pair velocity of the friction (midpoint scheme); None = v_ij(t).
        """
        n = v.shape[0]
        e, s, _ = self._geometry(v, pairs)
        force = scatter_pairs(self.pair_force(v, pairs, u), pairs.i, pairs.j, n, sign_j=-1.0)
        w_r = self.weight(s)
        outer = e[:, :, None] * e[:, None, :] * (w_r * w_r)[:, None, None]
        cov = scatter_pairs(outer, pairs.i, pairs.j, n) * (self.sigma**2 * dt / self.mass**2)
        return force * dt / self.mass, cov

    def nll(self, snap: Snapshot, dt: float, mean_only: bool = False,
            equipartition: float = 0.0) -> torch.Tensor:
        """Gaussian NLL of the velocity increments, summed over scored particles.

        ``equipartition`` > 0 adds, per scored particle, equipartition * log(k_B T /
        k_B T_kin)^2, T_kin the kinetic temperature of the snapshot's frame(s)
        (:func:`ddpd.model.equipartition.kinetic_temperature`): the prior of
        train.equipartition.
        Midpoint friction: F^D at u_mid = (v_ij(t) + v_ij(t+dt)) / 2 (unscored particles keep
        v(t)), and the NLL of v(t+dt) includes -2 log det G_i per scored particle,
        G_i = I + (dt/2) sum_j W_ij; ``mean_only`` then scores G^-1 r, the error of the
        predicted v(t+dt).
        """
        jacobian = None
        u_mid = None
        if self.friction_scheme == "midpoint":
            pairs, n = snap.pairs0, snap.v0.shape[0]
            v1 = snap.v0.index_copy(0, snap.idx0, snap.v1[snap.idx1])
            e, s, u0 = self._geometry(snap.v0, pairs)
            u_mid = 0.5 * (u0 + v1[pairs.i] - v1[pairs.j] + pairs.jump)
            W = self.friction_weights(e, s)
            jacobian = bracket.friction_jacobian(W, pairs.i, pairs.j, n, dt)[snap.idx0]
        mean, cov = self.increment_mean_and_covariance(snap.v0, snap.pairs0, dt, u_mid)
        residual = (snap.v1[snap.idx1] - snap.v0[snap.idx0]) - mean[snap.idx0]
        prior = torch.zeros((), dtype=residual.dtype, device=residual.device)
        if equipartition > 0:
            kinetic = kinetic_temperature(snap.v0, self.mass, snap.frame0)
            gap = torch.log(self.kT / kinetic)
            prior = equipartition * len(snap.idx0) * gap * gap
        if mean_only:
            error = residual
            if jacobian is not None:
                error = torch.linalg.solve(jacobian, residual[..., None])[..., 0]
            return ((error / self.delta_v_scale) ** 2).sum() + prior
        scale = torch.full((self.dim,), self.delta_v_scale, dtype=residual.dtype,
                           device=residual.device)
        nll = gaussian_nll(residual, cov[snap.idx0], scale, self.jitter).sum() + prior
        if jacobian is not None:
            # density of v(t+dt), not of the residual: -2 log |det d r / d v(t+dt)|
            chol = torch.linalg.cholesky(jacobian)
            nll = nll - 4.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum()
        return nll

    def entropy(self, v: torch.Tensor, pairs: Pairs) -> torch.Tensor:
        """No internal variable: zeros (N,) (the state's S is carried unchanged)."""
        return torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)

    # -- model protocol (ddpd.model.api) -------------------------------------------------
    @classmethod
    def build(cls, stats: dict, params: dict) -> DPDModel:
        """Fresh model: k_B T from equipartition, gamma from the increment variance."""
        p = parse_params(cls.params_class, params, "train.model")
        dim = int(stats["dim"])
        cutoff = float(p.cutoff or stats["cutoff"])
        mass, dt, dv = float(stats["mass"]), float(stats["dt"]), float(stats["delta_v_scale"])
        kT0 = mass * float(stats["speed_scale"]) ** 2
        neighbours = max(float(stats["number_density"]) * (math.pi if dim == 2 else
                         4.0 * math.pi / 3.0) * cutoff**dim, 1.0)
        # <w_R^2> over a uniform ball: D * Beta(D, 2k + 1)
        mean_w2 = dim * math.gamma(dim) * math.gamma(2 * p.exponent + 1) / math.gamma(
            dim + 2 * p.exponent + 1)
        sigma2 = dim * mass**2 * dv**2 / (dt * neighbours * mean_w2)
        model = cls(dim=dim, cutoff=cutoff, exponent=p.exponent, mass=mass, dt=dt,
                    delta_v_scale=dv, force0=mass * dv / dt, gamma0=sigma2 / (2 * kT0),
                    kT0=kT0, jitter=p.jitter, friction_scheme=p.friction_scheme)
        model.hparams["dtype"] = p.dtype
        return model.to(torch_dtype(p.dtype))

    @torch.no_grad()
    def step(self, state: State, box, dt: float, generator: torch.Generator | None,
             integrator: str = "euler") -> State:
        """One step with pairwise noise (``integrator`` is ignored): one draw theta per pair
        applied +/- to i and j, so momentum is conserved exactly; then q' = q + v' dt
        (symplectic Euler). Friction F^D at v(t) (Euler-Maruyama, ``explicit``) or at the
        midpoint pair velocities (``midpoint``, module docstring)."""
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        e, s, u = self._geometry(state.v, pairs)
        theta = torch.randn(len(s), dtype=e.dtype, device=e.device, generator=generator)
        noise = (self.sigma * self.weight(s) * theta * math.sqrt(dt))[:, None] * e
        n = state.v.shape[0]
        if self.friction_scheme == "midpoint":
            conservative = (self.a * (1.0 - s))[:, None] * e
            kick = (conservative * dt + noise) / self.mass
            W = self.friction_weights(e, s)
            y = bracket.midpoint_velocity_change(W, u, kick, pairs.i, pairs.j, n, dt)
            u_mid = u + 0.5 * (y[pairs.i] - y[pairs.j])
            dv_pair = kick - dt * (W @ u_mid[..., None])[..., 0]
        else:
            dv_pair = (self.pair_force(state.v, pairs) * dt + noise) / self.mass
        dv = scatter_pairs(dv_pair, pairs.i, pairs.j, n, sign_j=-1.0)
        return _advance_positions(self, state.q, state.v + dv, box, state, dt)

    @torch.no_grad()
    def observables(self, state: State, box) -> dict[str, torch.Tensor]:
        """entropy NaN (N,), total_energy (kinetic + DPD potential), total_entropy NaN,
        total_momentum (D,)."""
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        _, s, _ = self._geometry(state.v, pairs)
        potential = (0.5 * self.a * self.cutoff * (1.0 - s) ** 2).sum()
        kinetic = 0.5 * self.mass * torch.nansum(state.v * state.v)
        nan = torch.tensor(torch.nan, dtype=state.v.dtype, device=state.v.device)
        return dict(entropy=torch.full_like(state.S, torch.nan), total_energy=kinetic + potential,
                    total_entropy=nan, total_momentum=self.mass * torch.nansum(state.v, dim=0))
