"""ddpd.baselines."""
