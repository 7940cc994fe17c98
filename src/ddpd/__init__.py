"""ddpd: data-driven particle dynamics.

Learn coarse-grained, thermodynamically consistent, stochastic particle
dynamics (metriplectic, shared/method.md) from trajectories.
"""

__version__ = "0.1.0"
