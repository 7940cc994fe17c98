"""Copy a trained metriplectic model with its friction and k_B scaled by hand.

A^2 and B^2 times ``--friction`` (as ``train.match_diffusion``: friction and noise alike) and
k_B times ``--k-B`` (as ``train.match_rollout_temperature``: the noise and k_B div M, not the
friction), relative to the model given. Refuses an existing OUT_DIR. Scores with
``bench/variant_seeds.sh STUDY DATASET OUT model:OUT_DIR`` (bench/model.md, "The trade-off
along f at the matched temperature").

    .venv/bin/python bench/scale_model.py /tmp/v_mdt/model /tmp/f3/model \\
        --friction 0.7723 --k-B 0.9741
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import torch

from ddpd.model.api import load_model
from ddpd.model.diffusion_match import scale_friction


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--friction", type=float, default=1.0, help="factor on A^2 and B^2")
    ap.add_argument("--k-B", type=float, default=1.0, help="factor on k_B")
    a = ap.parse_args()
    out = Path(a.out_dir)
    if out.exists():
        raise SystemExit(f"scale_model.py: {out} exists; choose a new OUT_DIR")
    if a.friction <= 0 or a.k_B <= 0:
        raise SystemExit("scale_model.py: --friction and --k-B must be positive")
    model = load_model(Path(a.model_dir))
    with torch.no_grad():
        scale_friction(model, model.log_amp0.clone(), a.friction)
        model.log_k_B += math.log(a.k_B)
    out.mkdir(parents=True)
    shutil.copy(Path(a.model_dir) / "hparams.json", out / "hparams.json")
    torch.save(model.state_dict(), out / "model.pt")


if __name__ == "__main__":
    main()
