"""ddpd.model."""
