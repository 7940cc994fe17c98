"""How far a trained model's k_B <T> sits from the training data's kinetic temperature
(bench/model.md, "The kinetic temperature with N - 1 degrees of freedom").

The equipartition prior (train.equipartition) pins k_B <T> to the kinetic temperature of
the training frames (ddpd.model.equipartition: each frame's n - 1 free velocities); the
likelihood pulls against it, and `train.match_equipartition` removes what is left. This
prints k_B <T> (the model's at the teacher's S on 64 evenly spaced training frames; the
isothermal ablation's bath temperature) over the kinetic temperature of all training
frames, and that kinetic temperature in the dataset's units:

    PYTHONPATH=src python bench/equipartition_pin.py results/datasets/stars-melt-rest.h5 \
        results/models/stars-melt-rest/metriplectic
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ddpd.coarse.dataset import load_dataset, snapshots
from ddpd.model.api import load_model
from ddpd.model.equipartition import frames_kinetic_temperature


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model_dir).double()
    snaps = snapshots(load_dataset(args.dataset), "train", model.cutoff, torch.float64)
    kinetic = frames_kinetic_temperature(((s.v0, s.frame0) for s in snaps), float(model.mass))
    pick = torch.linspace(0, len(snaps) - 1, min(64, len(snaps))).round().long()
    if hasattr(model, "temperature"):  # the isothermal ablation's bath
        model_T = float((model.k_B * model.temperature).detach())
    else:
        model_T = model.mean_temperature([snaps[int(k)] for k in pick])
    print(f"{args.model_dir}: k_B <T> / kinetic temperature {model_T / kinetic:.4f}, "
          f"kinetic temperature {kinetic:.5g}")


if __name__ == "__main__":
    main()
