"""The protocol every learnable dynamics model follows, so train/rollout treat them alike.

A model is a ``torch.nn.Module`` with

* ``hparams: dict`` (JSON-serialisable; everything to rebuild it) and the class methods
  ``build(stats, params) -> model`` (fresh, from dataset statistics and its ``train.model``
  section) and ``from_hparams(hparams) -> model`` (then ``load_state_dict``);
* ``params_class``: the frozen dataclass of its ``train.model`` section (parsed with
  :func:`ddpd.params.parse_params`; ``train.TrainParams`` checks the section with it, so a
  configuration is refused before any job runs);
* ``nll(snapshot: Snapshot, dt: float, mean_only: bool = False) -> Tensor``: the negative
  log-likelihood of the snapshot's increments SUMMED over its scored particles
  (``snapshot.idx0``); train.py divides by the number of scored particles. Exterior/absent
  particles are never scored. ``mean_only=True`` is the warm-up loss of staged training
  (squared error of the mean velocity increment; a model may return its NLL instead);
* ``init_state(q, v, box, t, offset) -> State`` and
  ``step(state, box, dt, generator, integrator) -> State`` with
  :class:`ddpd.model.integrate.State` (q, v, S, t, offset, pairs); a model without an
  internal variable keeps S as zeros; ``integrator`` may be ignored by models with one
  stepper;
* ``observables(state, box) -> dict`` with ``entropy`` (N,), ``total_energy``,
  ``total_entropy`` (scalars) and ``total_momentum`` (D,) (NaN where not defined).

Register the class in :data:`MODEL_KINDS` under the name used in ``train.kind``. Baselines
(black-box GNN, fitted DPD, isothermal ablation, Langevin) implement the same five methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch

from ddpd.model.metriplectic import MetriplecticModel, Snapshot


class DynamicsModel(Protocol):
    hparams: dict
    params_class: type

    @classmethod
    def build(cls, stats: dict, params: dict) -> DynamicsModel: ...

    @classmethod
    def from_hparams(cls, hparams: dict) -> DynamicsModel: ...

    def nll(self, snapshot: Snapshot, dt: float, mean_only: bool = False) -> torch.Tensor: ...

    def init_state(self, q: torch.Tensor, v: torch.Tensor, box: Any, t: float = 0.0,
                   offset: float | None = None) -> Any: ...

    def step(self, state: Any, box: Any, dt: float, generator: torch.Generator | None,
             integrator: str = "exact_energy") -> Any: ...

    def observables(self, state: Any, box: Any) -> dict[str, torch.Tensor]: ...


MODEL_KINDS: dict[str, type] = {"metriplectic": MetriplecticModel}


def register_model(kind: str, cls: type) -> None:
    """Make ``cls`` available as ``train.kind: <kind>``."""
    MODEL_KINDS[kind] = cls


def model_class(kind: str) -> type:
    if kind not in MODEL_KINDS:
        import ddpd.baselines.learnable  # noqa: F401  (registers the baselines on first use)
    if kind not in MODEL_KINDS:
        raise ValueError(f"train.kind: expected one of {sorted(MODEL_KINDS)}, got {kind!r}")
    return MODEL_KINDS[kind]


def load_model(model_dir: Path, device: str | torch.device = "cpu") -> DynamicsModel:
    """Rebuild a trained model from ``model_dir/hparams.json`` and ``model_dir/model.pt``."""
    model_dir = Path(model_dir)
    for name in ("hparams.json", "model.pt"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} not found (is {model_dir} a trained "
                                    "model folder?)")
    info = json.loads((model_dir / "hparams.json").read_text())
    model = model_class(info["kind"]).from_hparams(info["hparams"])
    state = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to(device)
