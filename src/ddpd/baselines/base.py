"""What the learnable baselines share: dtype names, rebuilding from hparams, initial state."""

from __future__ import annotations

import torch
from torch import nn

from ddpd.model.integrate import State, init_state


def torch_dtype(name: str) -> torch.dtype:
    """'float64' -> torch.float64, anything else -> torch.float32."""
    return torch.float64 if name == "float64" else torch.float32


class BaselineModel(nn.Module):
    """Base of a baseline ``DynamicsModel`` (ddpd.model.api) whose constructor takes its
    ``hparams`` (plus ``dtype``, stored alongside); subclasses set ``default_dtype``."""

    default_dtype = "float32"
    hparams: dict

    @classmethod
    def from_hparams(cls, hparams: dict) -> BaselineModel:
        h = dict(hparams)
        dtype = h.pop("dtype", cls.default_dtype)
        model = cls(**h)
        model.hparams["dtype"] = dtype
        return model.to(torch_dtype(dtype))

    def init_state(self, q: torch.Tensor, v: torch.Tensor, box, t: float = 0.0,
                   offset: float | None = None) -> State:
        return init_state(self, q, v, box, t, offset)
