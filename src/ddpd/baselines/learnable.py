"""Registers the learnable baselines as ``train.kind`` values (see ddpd.model.api)."""

from ddpd.baselines.dpd import DPDModel
from ddpd.baselines.gnn import GNNModel
from ddpd.baselines.isothermal import IsothermalModel
from ddpd.model.api import register_model

register_model("dpd", DPDModel)
register_model("gnn", GNNModel)
register_model("isothermal", IsothermalModel)

__all__ = ["DPDModel", "GNNModel", "IsothermalModel"]
