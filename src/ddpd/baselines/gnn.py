"""Baseline: a black-box, rotation-equivariant graph network for the velocity increment.

No conservation structure: it predicts each particle's mean velocity increment and an
isotropic variance directly, so momentum and energy are NOT conserved by construction (the
point of the comparison with the metriplectic model, shared/method.md §2).

Graph: the neighbour pairs of ddpd.space.neighbour_pairs (r < h), used in both directions.
Invariant edge features per unordered pair (the same seen from i and from j):

    f_ij = (s = r/h, e_ij . v_ij / sigma_v, |v_ij| / sigma_v),

node features h_i (width W) start at zero and are updated by L message-passing layers
(Gilmer et al., ICML 2017, "Neural message passing"):

    h_i <- h_i + phi_u([h_i, sum_j phi_m([h_i, h_j, f_ij]) / n_ref]).

Equivariant read-out (vector messages along the pair's own vectors, as in EGNN, Satorras
et al., ICML 2021):

    <dv_i> / dt = (delta_v / dt) sum_j [c_e(h_i, h_j, f_ij) e_ij + c_v(h_i, h_j, f_ij) v_ij /
                  sigma_v] / n_ref,
    Var(dv_i,a) = exp(rho(h_i)) delta_v^2 dt / dt_data    (isotropic per particle).

The scalars c_e, c_v, rho are invariant, so the mean rotates (and reflects) with the state,
and depends on velocities only through v_ij (Galilean invariant). The message to j uses
(h_j, h_i, f_ij) and the vectors e_ji = -e_ij, v_ji = -v_ij: the pair's two contributions
are not opposite in general, hence no momentum conservation.

Loss: per-particle Gaussian NLL of the velocity increment (shared/method.md §4, velocity
rows only); step(): Euler-Maruyama v' = v + <dv> + sqrt(Var) xi, q' = q + v' dt.
Units: data units; delta_v = the training increments' standard deviation, sigma_v the
speed scale, n_ref the training mean neighbour count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ddpd.baselines.base import BaselineModel, torch_dtype
from ddpd.model.integrate import State, _advance_positions
from ddpd.model.likelihood import gaussian_nll
from ddpd.model.metriplectic import Snapshot
from ddpd.model.nets import MLP
from ddpd.params import is_number, parse_params, require
from ddpd.space.neighbours import Pairs, neighbour_pairs


@dataclass(frozen=True)
class GNNParams:
    """Section ``train.model`` for ``train.kind: gnn``.

    Attributes:
        cutoff: graph range h (data length units); null -> the dataset's cutoff (null).
        width: node/message width W (32).
        depth: hidden layers of each MLP (2).
        layers: message-passing layers L (2).
        dtype: "float32" or "float64" ("float32").
        jitter: dimensionless variance added to each covariance in the likelihood (1e-4).
    """

    cutoff: float | None = None
    width: int = 32
    depth: int = 2
    layers: int = 2
    dtype: str = "float32"
    jitter: float = 1e-4

    def __post_init__(self) -> None:
        s = "train.model"
        if self.cutoff is not None:
            require(is_number(self.cutoff) and self.cutoff > 0, s, "cutoff",
                    "a positive length or null", self.cutoff)
        for key in ("width", "depth", "layers"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, s,
                    key, "a positive integer", value)
        require(self.dtype in ("float32", "float64"), s, "dtype", "'float32' or 'float64'",
                self.dtype)
        require(is_number(self.jitter) and self.jitter >= 0, s, "jitter", "a number >= 0",
                self.jitter)


class GNNModel(BaselineModel):
    """Equivariant message-passing network for <dv> and Var(dv) (module docstring).

    Args (saved in :attr:`hparams`): dim, cutoff, width, depth, layers, mass, speed_scale
    (sigma_v), delta_v_scale (delta_v), dt (data interval), mean_neighbours (n_ref), jitter.
    """

    params_class = GNNParams
    default_dtype = "float32"

    def __init__(self, dim: int, cutoff: float, width: int, depth: int, layers: int,
                 mass: float, speed_scale: float, delta_v_scale: float, dt: float,
                 mean_neighbours: float, jitter: float = 1e-4):
        super().__init__()
        self.hparams = dict(dim=dim, cutoff=cutoff, width=width, depth=depth, layers=layers,
                            mass=mass, speed_scale=speed_scale, delta_v_scale=delta_v_scale,
                            dt=dt, mean_neighbours=mean_neighbours, jitter=jitter)
        self.dim = dim
        self.cutoff = cutoff
        self.width = width
        self.speed_scale = speed_scale
        self.delta_v_scale = delta_v_scale
        self.data_dt = dt
        self.n_ref = max(mean_neighbours, 1.0)
        self.jitter = jitter
        self.register_buffer("log_mass", torch.tensor(math.log(mass)))
        self.message = nn.ModuleList(
            [MLP(2 * width + 3, width, width, depth, zero_last=False) for _ in range(layers)])
        self.update = nn.ModuleList(
            [MLP(2 * width, width, width, depth) for _ in range(layers)])
        self.readout = MLP(2 * width + 3, 2, width, depth)
        self.log_variance = MLP(width, 1, width, depth)

    @property
    def mass(self) -> torch.Tensor:
        return torch.exp(self.log_mass)

    def edge_features(self, v: torch.Tensor, pairs: Pairs
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(f_ij (P, 3), e_ij (P, D), v_ij / sigma_v (P, D))."""
        r = torch.sqrt((pairs.r * pairs.r).sum(-1))
        e = pairs.r / r[:, None]
        u = (v[pairs.i] - v[pairs.j] + pairs.jump) / self.speed_scale
        speed = torch.sqrt((u * u).sum(-1) + 1e-12)
        return torch.stack([r / self.cutoff, (e * u).sum(-1), speed], dim=-1), e, u

    def increment_mean_and_variance(self, v: torch.Tensor, pairs: Pairs, dt: float
                                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean velocity increment (N, D) and isotropic variance per component (N,)."""
        n = v.shape[0]
        i, j = pairs.i, pairs.j
        f, e, u = self.edge_features(v, pairs)
        h = torch.zeros(n, self.width, dtype=v.dtype, device=v.device)
        for message, update in zip(self.message, self.update, strict=True):
            to_i = message(torch.cat([h[i], h[j], f], dim=-1))
            to_j = message(torch.cat([h[j], h[i], f], dim=-1))
            agg = torch.zeros_like(h).index_add(0, i, to_i).index_add(0, j, to_j) / self.n_ref
            h = h + update(torch.cat([h, agg], dim=-1))
        c_i = self.readout(torch.cat([h[i], h[j], f], dim=-1))
        c_j = self.readout(torch.cat([h[j], h[i], f], dim=-1))
        vec_i = c_i[:, :1] * e + c_i[:, 1:] * u
        vec_j = -(c_j[:, :1] * e + c_j[:, 1:] * u)
        rate = torch.zeros_like(v).index_add(0, i, vec_i).index_add(0, j, vec_j) / self.n_ref
        mean = rate * (self.delta_v_scale * dt / self.data_dt)
        variance = torch.exp(self.log_variance(h)[:, 0]) * self.delta_v_scale**2 * (
            dt / self.data_dt)
        return mean, variance

    def nll(self, snap: Snapshot, dt: float, mean_only: bool = False,
            equipartition: float = 0.0) -> torch.Tensor:
        """Gaussian NLL of the velocity increments, summed over scored particles.

        ``equipartition`` (train.equipartition) is accepted and ignored: the network has no
        temperature to tie to the kinetic one.
        """
        mean, variance = self.increment_mean_and_variance(snap.v0, snap.pairs0, dt)
        residual = (snap.v1[snap.idx1] - snap.v0[snap.idx0]) - mean[snap.idx0]
        if mean_only:
            return ((residual / self.delta_v_scale) ** 2).sum()
        eye = torch.eye(self.dim, dtype=residual.dtype, device=residual.device)
        cov = variance[snap.idx0, None, None] * eye
        scale = torch.full((self.dim,), self.delta_v_scale, dtype=residual.dtype,
                           device=residual.device)
        return gaussian_nll(residual, cov, scale, self.jitter).sum()

    def entropy(self, v: torch.Tensor, pairs: Pairs) -> torch.Tensor:
        """No internal variable: zeros (N,)."""
        return torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)

    # -- model protocol (ddpd.model.api) -------------------------------------------------
    @classmethod
    def build(cls, stats: dict, params: dict) -> GNNModel:
        p = parse_params(cls.params_class, params, "train.model")
        cutoff = float(p.cutoff or stats["cutoff"])
        neighbours = float(stats["mean_neighbours"]) * (cutoff / float(stats["cutoff"])) ** int(
            stats["dim"])
        model = cls(dim=int(stats["dim"]), cutoff=cutoff, width=p.width, depth=p.depth,
                    layers=p.layers, mass=float(stats["mass"]),
                    speed_scale=float(stats["speed_scale"]),
                    delta_v_scale=float(stats["delta_v_scale"]), dt=float(stats["dt"]),
                    mean_neighbours=neighbours, jitter=p.jitter)
        model.hparams["dtype"] = p.dtype
        return model.to(torch_dtype(p.dtype))

    @torch.no_grad()
    def step(self, state: State, box, dt: float, generator: torch.Generator | None,
             integrator: str = "euler") -> State:
        """Euler-Maruyama (``integrator`` is ignored)."""
        pairs = state.pairs if state.pairs is not None else neighbour_pairs(
            state.q, box, self.cutoff, state.offset)
        mean, variance = self.increment_mean_and_variance(state.v, pairs, dt)
        xi = torch.randn(state.v.shape, dtype=state.v.dtype, device=state.v.device,
                         generator=generator)
        v = state.v + mean + torch.sqrt(variance)[:, None] * xi
        return _advance_positions(self, state.q, v, box, state, dt)

    @torch.no_grad()
    def observables(self, state: State, box) -> dict[str, torch.Tensor]:
        """No energy or entropy is defined (NaN); total_momentum (D,)."""
        nan = torch.tensor(torch.nan, dtype=state.v.dtype, device=state.v.device)
        return dict(entropy=torch.full_like(state.S, torch.nan), total_energy=nan,
                    total_entropy=nan, total_momentum=self.mass * torch.nansum(state.v, dim=0))
