"""ddpd.baselines: reference models trained and evaluated like the metriplectic model.

The learnable baselines (``gnn``: black-box graph network, ``dpd``: fitted DPD,
``isothermal``: the metriplectic model without the entropy variable) are registered with
:mod:`ddpd.model.api` by :mod:`ddpd.baselines.learnable`, which ``model_class`` imports on
first use. The Langevin reference (:mod:`ddpd.baselines.langevin`) is fitted in closed
form, needs no torch, and has its own entry points.
"""
