"""Box geometry and neighbour pairs."""

from ddpd.space.box import Box

__all__ = ["Box"]
