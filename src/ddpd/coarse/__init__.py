"""ddpd.coarse."""
