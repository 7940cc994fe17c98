"""Parameter validation of the simulation stage (see :mod:`ddpd.params`), plus time steps."""

from __future__ import annotations

from ddpd.params import is_int, is_number, parse_params, require

__all__ = ["is_int", "is_number", "parse_params", "require", "steps_of"]


def steps_of(duration: float, dt: float, section: str, key: str) -> int:
    """Number of time steps in ``duration``; it must be a whole multiple of ``dt``."""
    steps = round(duration / dt)
    if abs(steps * dt - duration) > 1e-6 * max(dt, abs(duration)):
        raise ValueError(
            f"{section}.{key}: expected a whole multiple of dt = {dt}, got {duration!r}"
        )
    return int(steps)
