"""Train and roll out the metriplectic model with oracle entropy labels from the stars' own
internal energy: what could an entropy variable add if its labels were right?

The teacher (shared/method.md §4) reads one snapshot and cannot follow a star's internal
energy (bench/model.md, "A star's internal energy"). Here its labels are replaced by each
star's recorded internal energy E_i (``internal_energy``: internal kinetic energy plus the
star's share of the potential energy, star runs of 29d57d0 or later), standardised over the
training run, S_i = (E_i - <E>) / sd(E) (the gauge of S makes the scale free). Everything else
is the study's: its dataset, the metriplectic model's training parameters (hparams.json),
rollouts from the test run's first frame with noise seeds 0-3 and the ``rollout`` section of
its config.yaml (S evolved by the model from the oracle's start), then ``ddpd statistics``
with its ``statistics`` section and ``ddpd compare`` against the study's truth and floor.
The labels are looked up by the exact float32 velocities of a dataset frame (a training
batch is split into its frames; ``MetriplecticModel.entropy`` replaced in this process
only); a frame not in the dataset raises.

    cd STUDY_DIR && PYTHONPATH=/path/to/checkout/src OMP_WAIT_POLICY=passive \\
        python /path/to/checkout/bench/oracle_entropy.py stars-melt-rest OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch
import yaml

from ddpd.coarse.dataset import load_dataset
from ddpd.io.h5md import read_trajectory
from ddpd.model.metriplectic import MetriplecticModel
from ddpd.rollout import rollout
from ddpd.train import train


def velocity_key(v: torch.Tensor) -> bytes:
    return v.detach().cpu().to(torch.float32).contiguous().numpy().tobytes()


def lookup_entropy(lookup: dict[bytes, np.ndarray], what: str):
    """A replacement for ``MetriplecticModel.entropy``: the labels of whole frames, looked
    up by their exact float32 velocities (training batches concatenate whole frames,
    ``train.batch_frames``); ``what`` names the labels in errors."""
    frame_size = {len(labels) for labels in lookup.values()}
    if len(frame_size) != 1:
        raise SystemExit(f"{what}: frames of different sizes {sorted(frame_size)}")
    n = frame_size.pop()

    def entropy(self, v, pairs, w=None):
        if len(v) % n:
            raise KeyError(f"{what}: {len(v)} particles, not whole frames of {n}")
        labels = [lookup.get(velocity_key(v[k:k + n])) for k in range(0, len(v), n)]
        if any(x is None for x in labels):
            raise KeyError(f"{what}: a frame that is not in the dataset")
        return torch.as_tensor(np.concatenate(labels), dtype=v.dtype, device=v.device)

    return entropy


def oracle_labels(dataset_path: Path) -> dict[bytes, np.ndarray]:
    """{float32 velocities of a frame: standardised internal energies of its particles}."""
    data = load_dataset(dataset_path)
    runs = [(split, traj) for split, trajs in data.splits.items() for traj in trajs]
    energies = {}
    for split, traj in runs:
        raw = read_trajectory(traj.source)
        if "internal_energy" not in raw.observables:
            raise SystemExit(f"{traj.source}: no internal_energy (a star run of 29d57d0 or later)")
        energy = np.asarray(raw.observables["internal_energy"], dtype=float)
        if energy.shape != traj.position.shape[:2]:
            raise SystemExit(f"{traj.source}: internal_energy {energy.shape} does not match the "
                             f"dataset's frames {traj.position.shape[:2]} (stride 1 expected)")
        energies[(split, traj.source)] = energy
    train_energy = np.concatenate([e for (split, _), e in energies.items() if split == "train"])
    mean, sd = train_energy.mean(), train_energy.std()
    lookup = {}
    for split, traj in runs:
        energy = energies[(split, traj.source)]
        for t in range(len(traj.time)):
            rows = np.nonzero(traj.present[t])[0]
            if len(rows) == 0:
                continue
            v = torch.as_tensor(traj.velocity[t, rows], dtype=torch.float32)
            lookup[velocity_key(v)] = (energy[t, rows] - mean) / sd
    print(f"oracle labels: {len(lookup)} frames, internal energy {mean:.2f} +- {sd:.3g}")
    return lookup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", help="dataset name of the study (results/datasets/NAME.h5)")
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    dataset = Path(f"results/datasets/{a.dataset}.h5")
    hparams = Path(f"results/models/{a.dataset}/metriplectic/hparams.json")
    if a.out.exists():
        raise SystemExit(f"{a.out} exists; choose a new OUT_DIR")
    for path in (dataset, hparams, Path("config.yaml")):
        if not path.is_file():
            raise SystemExit(f"{path} not found: run in the folder of a finished study with "
                             f"dataset {a.dataset}")
    params = json.loads(hparams.read_text())["train_params"]
    config = yaml.safe_load(Path("config.yaml").read_text())  # the study's rollout, statistics
    MetriplecticModel.entropy = lookup_entropy(oracle_labels(dataset), f"{dataset} (oracle)")
    a.out.mkdir(parents=True)
    try:
        run(a, dataset, params, config)
    except BaseException:
        shutil.rmtree(a.out)  # no partial results
        raise


def run(a: argparse.Namespace, dataset: Path, params: dict, config: dict) -> None:
    """Train, roll out, score (the module docstring); writes under ``a.out``."""
    train(dataset, {**params, "threads": 2}, a.out / "model", device="cpu")
    models = []
    for seed in range(4):
        out = a.out / f"seed{seed}.h5"
        rollout(a.out / "model", dataset, {**config["rollout"], "seed": seed, "threads": 2}, out)
        subprocess.run(["ddpd", "statistics", "--params", json.dumps(config["statistics"]),
                        "--trajectory", str(out), "--out", str(a.out / f"seed{seed}.json")],
                       check=True, capture_output=True)
        models.append(f"oracle={a.out / f'seed{seed}.json'}")
    subprocess.run(["ddpd", "compare", "--truth", f"results/stats/{a.dataset}/truth.json",
                    "--model", *models, "--floor", f"results/stats/{a.dataset}/floor.json",
                    "--out-csv", str(a.out / "errors.csv"), "--out-md", str(a.out / "errors.md")],
                   check=True, capture_output=True)
    print((a.out / "errors.md").read_text())
    check = json.loads((a.out / "model" / "hparams.json").read_text()).get("entropy_labels", {})
    print("label check:", {k: check[k] for k in ("lag1", "fluctuation", "einstein_spread",
                                                 "stationary_spread", "noise_ratio") if k in check})


if __name__ == "__main__":
    main()
