# Shared helpers: config validation, wildcard lists, paths, params as JSON.
import json
import re
from pathlib import Path

from ddpd.config import ConfigError, step_params, step_section, validate_config
from ddpd.config import train_params as ddpd_train_params

STEP_SECTIONS = {}


def parsed_section(path):
    """One step's section (`rollout`, `dataset`...) parsed by its command's dataclass.

    Imports that command's module only (torch: ~3 s); call it from input functions and
    `params: lambda` so that a cluster job, which re-reads this file, pays it only in the
    rules that need it.
    """
    if path not in STEP_SECTIONS:
        STEP_SECTIONS[path] = step_section(config, path)
    return STEP_SECTIONS[path]


try:
    validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
    # Before any job starts (every step's module: ~10 s); cluster jobs re-read this
    # file and skip it (checked already).
    if workflow.is_main_process:
        STEP_SECTIONS.update(step_params(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

SPLITS = ["train", "validation", "test"]
STAR_SYSTEMS = list(config["stars"]["systems"])
STAR_CONDITIONS = list(config["stars"]["conditions"])


wildcard_constraints:
    system="|".join(map(re.escape, STAR_SYSTEMS)) or "NONE",
    condition="|".join(map(re.escape, STAR_CONDITIONS)) or "NONE",
    split="|".join(SPLITS),
    replica=r"\d+",
    seed=r"\d+",
    model="|".join(["langevin", *config["learn"]["models"]]),


def as_json(section):
    """A config section as one JSON argument for `ddpd <command> --params`."""
    return json.dumps(section, sort_keys=True)


def truth_statistics_params():
    """Statistics of the truth on the rollouts' frame interval (dataset stride x save_every)."""
    stride = parsed_section("dataset").stride * parsed_section("rollout").save_every
    params = dict(config["statistics"])
    params["frame_stride"] = params.get("frame_stride", 1) * stride
    return as_json(params)


def replica_seed(group, split, index):
    """Deterministic seed per (group, split, replica): same config -> same results."""
    offset = {"train": 0, "validation": 1000, "test": 2000}[split]
    group_offset = {"stars": 0, "colloid": 100000}[group]
    return config["seed"] + group_offset + offset + int(index)


def replicas(group, split):
    return range(config[group]["replicas"][split])


def real_video_path():
    path = Path(config["real_video"]["path"])
    return path if path.is_absolute() else Path(workflow.basedir) / path


# ---- datasets: "stars-<system>-<condition>" or "colloid"
STAR_DATASETS = [f"stars-{s}-{c}" for s in STAR_SYSTEMS for c in STAR_CONDITIONS]
DATASETS = STAR_DATASETS + (["colloid"] if config["colloid"]["enabled"] else [])
LEARN_DATASETS = [d for d in config["learn"]["datasets"]]
for _d in LEARN_DATASETS:
    if _d not in DATASETS:
        raise WorkflowError(
            f"config: key 'learn.datasets' names {_d!r}, which is not a dataset of this study "
            f"(available: {', '.join(DATASETS)})"
        )


AT_REST = [
    d
    for d in LEARN_DATASETS
    if d.startswith("stars-") and config["stars"]["conditions"][d.split("-", 2)[2]] == 0
]
for _d in config["lammps"]["datasets"]:
    if _d not in AT_REST:
        raise WorkflowError(
            f"config: key 'lammps.datasets' names {_d!r}: expected a learned star dataset at "
            f"rest (periodic box), one of {AT_REST}"
        )


def split_trajectories(dataset, split):
    """Trajectory files of one split of a dataset (split by independent runs)."""
    if dataset == "colloid":
        pattern = "results/colloid/{split}/rep{replica}/tracks.h5"
        return [
            pattern.format(split=split, replica=r) for r in replicas("colloid", split)
        ]
    _, system, condition = dataset.split("-", 2)
    return [
        f"results/stars/{system}/{condition}/{split}/rep{r}.h5"
        for r in replicas("stars", split)
    ]


def dataset_params(dataset):
    params = dict(config["dataset"])
    return as_json(params)


LEARNED_MODELS = config["learn"]["models"]
MODELS = [*LEARNED_MODELS, "langevin"]
# one rollout per noise seed of every model; the first is the one the figures show
ROLLOUT_SEEDS = config["rollout_seeds"]
FIRST_SEED = ROLLOUT_SEEDS[0]


def rollout_params(w):
    """The `rollout` section with the noise seed of the job's `seed` wildcard."""
    return as_json({**config["rollout"], "seed": int(w.seed)})


def seed_statistics(w):
    """Every model's statistics, one file per rollout seed (ddpd compare's NAME=PATH list)."""
    return [
        f"results/stats/{w.dataset}/{m}/seed{s}.json"
        for m in MODELS
        for s in ROLLOUT_SEEDS
    ]


def train_params(model):
    return ddpd_train_params(config, model)


def truth_trajectory(w):
    """The held-out reference: the first test trajectory of the dataset."""
    return split_trajectories(w.dataset, "test")[0]


def floor_replicas(w):
    """The error floor's independent replicas: the first validation runs, one per rollout."""
    n_rollouts = parsed_section("rollout").n_rollouts
    return split_trajectories(w.dataset, "validation")[:n_rollouts]


def floor_window_params():
    """The rollouts' window (ddpd.stats.floor.FloorParams) from the dataset and rollout sections."""
    data, roll = parsed_section("dataset"), parsed_section("rollout")
    window = dict(
        stride=data.stride,
        max_frames=data.max_frames,
        velocities=data.velocities,
        n_steps=roll.n_steps,
        save_every=roll.save_every,
    )
    return as_json(window)


def all_outputs():
    out = []
    for d in LEARN_DATASETS:
        out += [
            f"results/tables/{d}_errors.md",
            f"results/figures/{d}_statistics.png",
            f"results/figures/{d}_learning_curve.png",
            f"results/figures/{d}_conservation.png",
        ]
        out += [
            f"results/figures/{d}_learned_physics_{m}.png"
            for m in LEARNED_MODELS
            if m in ("metriplectic", "isothermal")
        ]
        if d.startswith("stars-"):
            out.append(f"results/tables/{d}_entropy_observables.json")
    if config["colloid"]["enabled"]:
        out += [
            f"results/colloid/test/rep{r}/quality.json"
            for r in replicas("colloid", "test")
        ]
    if config["real_video"]["enabled"]:
        out += ["results/real_video/diffusion.json"]
    for d in config["lammps"]["datasets"]:
        out += [
            f"results/lammps/{d}/timing.json",
            f"results/lammps/{d}/interpolation_errors.json",
        ]
    if config["known_truth"]["enabled"]:
        out += ["results/tables/known_truth.json", "results/figures/known_truth.png"]
    out += ["results/tables/summary.md"]
    return out
