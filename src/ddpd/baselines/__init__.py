"""ddpd.baselines: reference models trained and evaluated like the metriplectic model.

Importing this package registers the learnable baselines with :mod:`ddpd.model.api`
(``train.kind``): ``gnn`` (black-box graph network), ``dpd`` (fitted DPD) and ``isothermal``
(metriplectic model without the entropy variable). The Langevin baseline
(:mod:`ddpd.baselines.langevin`) is fitted in closed form and has its own entry points.
"""

from ddpd.baselines.dpd import DPDModel
from ddpd.baselines.gnn import GNNModel
from ddpd.baselines.isothermal import IsothermalModel
from ddpd.model.api import register_model

register_model("dpd", DPDModel)
register_model("gnn", GNNModel)
register_model("isothermal", IsothermalModel)

__all__ = ["DPDModel", "GNNModel", "IsothermalModel"]
