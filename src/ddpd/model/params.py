"""Parameter dataclasses of the model, dataset, training and rollout sections.

Each public entry function takes ``params: dict`` (its config section) and validates it with
:func:`parse_params`: unknown keys and bad values raise ValueError naming the key.
"""

from __future__ import annotations

import dataclasses

from ddpd.params import is_int, is_number, parse_params, require

__all__ = ["ModelParams", "is_number", "parse_params", "require"]


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """Hyperparameters of the metriplectic model (section ``train.model``).

    Attributes:
        cutoff: interaction range h (data length units); null -> chosen from the training
            density so that a particle has ``target_neighbours`` neighbours on average.
        target_neighbours: mean neighbour count used when ``cutoff`` is null (default 8).
        width: hidden width of every network (default 32).
        depth: hidden layers of every network (default 2).
        teacher_features: width k of the teacher's pair feature phi (default 8).
        dtype: ``float32`` (default) or ``float64``.
        learn_mass: learn log m instead of taking the trajectory's mass (default false).
        jitter: dimensionless variance added to each covariance in the likelihood (1e-4).
        learn_k_B: learn log k_B (true, default) or keep it at the value set from
            equipartition at the start (false): fixes the entropy gauge S -> l S, T -> T/l,
            k_B -> l k_B, friction amplitudes^2 -> /l, which the likelihood cannot see.
        friction_scheme: ``midpoint`` (default): friction drift at the midpoint velocities
            of a step, in the likelihood, the rollouts (both steppers) and the LAMMPS port
            (stationary temperature exact at any dt for linear friction, see bench/model.md);
            ``explicit``: at the start of the step, as the reference (heats by
            2 / (2 - gamma dt), diverges for gamma dt > 2).
        kernel_shape: ``monotone`` (default): w(r) strictly decreasing on [0, h) with
            w(0) = 1 (a convex increasing network gives -log w), so pair forces are
            repulsive for P >= 0, also at contact; ``free``: the MLP of shared/method.md §1.
        kernel_table: 0 (default): the kernel network is evaluated on every pair; G >= 2:
            on G + 1 nodes of s = r/h in [0, 1] with its slope, interpolated by cubic
            Hermite polynomials (training and rollouts; bench/model.md measures speed and
            the interpolation error).
        friction_table: 0 (default): the friction network is evaluated on both sides of
            every pair; G >= 2: on a lattice of s = k/G by ln(T / m sigma_v^2) = l/G with its
            slopes, interpolated by bicubic Hermite patches (training and rollouts;
            bench/model.md measures speed and the interpolation error).
        core_repulsion: strength eps of the pair core prior, in units of m sigma_v^2
            (0, default: off). psi(r) = eps m sigma_v^2 (1 - r/r0)^2 for r < r0, with r0
            the closest approach of any pair in the training data: no training pair feels
            it, so the fit is unchanged, and rollouts cannot push pairs through each other
            where the data never went (the learned kernel is finite at r = 0). The LAMMPS
            port (tables, fix external, the compiled fix) computes it exactly.
        energy: ``coupled`` (default): U(S, V) is one input-convex network
            (shared/method.md §1); ``separable``: U = U_S(S) + U_V(V), each convex and
            increasing, so T depends on S alone and P on V alone: the entropy variable
            cannot move the pressure (a heat bath such as a colloid's solvent).
    """

    cutoff: float | None = None
    target_neighbours: float = 8.0
    width: int = 32
    depth: int = 2
    teacher_features: int = 8
    dtype: str = "float32"
    learn_mass: bool = False
    jitter: float = 1e-4
    friction_scheme: str = "midpoint"
    learn_k_B: bool = True
    kernel_shape: str = "monotone"
    kernel_table: int = 0
    friction_table: int = 0
    core_repulsion: float = 0.0
    energy: str = "coupled"

    def __post_init__(self) -> None:
        s = "model"
        if self.cutoff is not None:
            require(is_number(self.cutoff) and self.cutoff > 0, s, "cutoff",
                  "a positive length or null", self.cutoff)
        require(is_number(self.target_neighbours) and self.target_neighbours > 0, s,
              "target_neighbours", "a positive number", self.target_neighbours)
        for key in ("width", "depth", "teacher_features"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, s, key,
                  "a positive integer", value)
        require(self.dtype in ("float32", "float64"), s, "dtype", "'float32' or 'float64'",
              self.dtype)
        require(isinstance(self.learn_mass, bool), s, "learn_mass", "true or false",
              self.learn_mass)
        require(is_number(self.jitter) and self.jitter >= 0, s, "jitter", "a number >= 0",
              self.jitter)
        require(isinstance(self.learn_k_B, bool), s, "learn_k_B", "true or false",
                self.learn_k_B)
        require(self.friction_scheme in ("midpoint", "explicit"), s, "friction_scheme",
                "'midpoint' or 'explicit'", self.friction_scheme)
        require(self.kernel_shape in ("monotone", "free"), s, "kernel_shape",
                "'monotone' or 'free'", self.kernel_shape)
        require(is_int(self.kernel_table) and (self.kernel_table == 0 or self.kernel_table >= 2),
                s, "kernel_table", "0 (off) or an integer >= 2 (table intervals)",
                self.kernel_table)
        require(is_int(self.friction_table)
                and (self.friction_table == 0 or self.friction_table >= 2), s, "friction_table",
                "0 (off) or an integer >= 2 (table intervals)", self.friction_table)
        require(self.energy in ("coupled", "separable"), s, "energy",
                "'coupled' or 'separable'", self.energy)
        require(is_number(self.core_repulsion) and self.core_repulsion >= 0, s,
                "core_repulsion", "a number >= 0 (0: off)", self.core_repulsion)
