"""Study configuration: validation against the JSON schema, with defaults.

The Snakefile calls :func:`validate_config` before any job starts. Every error
names the offending key as a dotted path (``stars.systems.melt.arms``) and what
was expected, so a wrong type, an unknown key or an impossible value stops the
run with a message a user can act on.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import numpy as np
import yaml


class ConfigError(ValueError):
    """The study configuration does not match the schema."""


def _dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _fill_defaults(validator_class):
    """A validator that inserts schema defaults into the instance while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> dict:
    """Validate ``config`` in place against the YAML JSON-schema, filling defaults.

    Raises:
        ConfigError: listing every violation as ``<source>: key a.b.c: message``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for err in errors:
            if err.validator == "additionalProperties":
                known = sorted(err.schema.get("properties", {}))
                extra = sorted(set(err.instance) - set(known))
                for key in extra:
                    path = _dotted([*err.absolute_path, key])
                    lines.append(
                        f"{source}: unknown key {path!r} (allowed here: {', '.join(known)})"
                    )
                continue
            lines.append(f"{source}: key {_dotted(err.absolute_path)!r}: {err.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return config


# config path -> (module, parameter dataclass) of the `ddpd` command that consumes it
STEP_PARAMS = {
    "stars.systems.*": ("ddpd.simulate.stars", "StarParams"),
    "colloid.simulation": ("ddpd.simulate.colloid", "ColloidParams"),
    "colloid.render": ("ddpd.video.render", "RenderParams"),
    "colloid.track": ("ddpd.video.track", "TrackParams"),
    "colloid.quality": ("ddpd.video.quality", "QualityParams"),
    "real_video.track": ("ddpd.video.track", "TrackParams"),
    "real_video.diffusion": ("ddpd.stats.diffusion", "DiffusionParams"),
    "dataset": ("ddpd.coarse.dataset", "DatasetParams"),
    "learn.train": ("ddpd.train", "TrainParams"),
    "learn.train.model": ("ddpd.model.params", "ModelParams"),
    "learn.langevin": ("ddpd.baselines.langevin", "LangevinFitParams"),
    "rollout": ("ddpd.rollout", "RolloutParams"),
    "statistics": ("ddpd.stats.compute", "StatisticsParams"),
    "lammps.export": ("ddpd.lammps.export", "ExportParams"),
    "lammps.rollout": ("ddpd.lammps.external", "LammpsRolloutParams"),
    "known_truth.simulation": ("ddpd.model.known_truth", "KnownTruthParams"),
    "known_truth.train": ("ddpd.train", "TrainParams"),
    "known_truth.train.model": ("ddpd.model.params", "ModelParams"),
    "known_truth.compare": ("ddpd.model.known_truth", "CompareParams"),
}


def _sections(config: dict, pattern: str) -> list[tuple[str, dict]]:
    """(dotted path, section) pairs matching ``pattern`` (``*`` = every key)."""
    found = [("", config)]
    for part in pattern.split("."):
        nxt = []
        for path, node in found:
            if not isinstance(node, dict):
                continue
            keys = list(node) if part == "*" else [part] if part in node else []
            nxt += [(f"{path}.{k}".lstrip("."), node[k]) for k in keys]
        found = nxt
    return found


def _step_class(module: str, name: str) -> type:
    from importlib import import_module

    return getattr(import_module(module), name)


def step_params(config: dict) -> dict[str, object]:
    """Parse every step's parameter section with the dataclass of the command that uses it.

    Run before any job starts, so that a bad key or value inside a step's section
    (``stars.systems.melt.arms: -1``) stops the workflow at once, not hours later.
    Imports every step's module (torch, trackpy, freud, matplotlib: seconds); a job that
    needs one section uses :func:`step_section`.

    Returns:
        dotted config path -> parsed frozen dataclass.

    Raises:
        ConfigError: naming the config path and the key.
    """
    from ddpd.params import parse_params

    parsed: dict[str, object] = {}
    lines = []
    for pattern, (module, name) in STEP_PARAMS.items():
        cls = _step_class(module, name)
        for path, section in _sections(config, pattern):
            try:
                parsed[path] = parse_params(cls, section, path)
            except (ValueError, TypeError) as exc:
                lines.append(f"config: section {path!r}: {exc}")
    learn = config.get("learn", {})
    train_cls = _step_class("ddpd.train", "TrainParams")
    for model in learn.get("models", []):
        path = f"learn.overrides.{model}"
        try:
            parsed[path] = parse_params(train_cls, train_params(config, model), path)
        except (ValueError, TypeError) as exc:
            lines.append(f"config: section {path!r}: {exc}")
    lines += rollout_seed_problems(config, parsed.get("rollout"))
    if lines:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return parsed


def rollout_seed_problems(config: dict, rollout: object | None) -> list[str]:
    """What is wrong with `rollout_seeds` beside the parsed `rollout` section (messages).

    The study sets each rollout job's ``rollout.seed`` from `rollout_seeds`, so a
    `rollout.seed` of its own would be ignored: refused. Rollout k of seed s draws its noise
    from seed s + k (ddpd.rollout), so two seeds closer than `rollout.n_rollouts` would share
    noise streams between their rollouts: refused.
    """
    seeds = config.get("rollout_seeds")
    if seeds is None:
        return []
    if "seed" in config.get("rollout", {}):
        return ["config: key 'rollout.seed': the study sets the rollouts' noise seeds from "
                f"'rollout_seeds' ({seeds}); remove it"]
    n_rollouts = getattr(rollout, "n_rollouts", 1)
    ordered = sorted(seeds)
    close = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b - a < n_rollouts]
    if close:
        return [f"config: key 'rollout_seeds': seeds {close[0][0]} and {close[0][1]} are "
                f"closer than rollout.n_rollouts = {n_rollouts} (rollout k of seed s uses "
                "noise seed s + k): space them by at least that"]
    return []


def step_section(config: dict, path: str) -> object:
    """One step's section (a dotted path of :data:`STEP_PARAMS`, e.g. ``rollout``) parsed
    by its command's dataclass, importing that command's module only.

    Raises:
        KeyError: ``path`` is not a step section of this configuration.
        ConfigError: naming the config path and the key.
    """
    from ddpd.params import parse_params

    for pattern, (module, name) in STEP_PARAMS.items():
        for found, section in _sections(config, pattern):
            if found != path:
                continue
            try:
                return parse_params(_step_class(module, name), section, path)
            except (ValueError, TypeError) as exc:
                message = f"invalid configuration:\n  config: section {path!r}: {exc}"
                raise ConfigError(message) from None
    raise KeyError(f"{path!r} is not a step section of the configuration")


def train_params(config: dict, model: str) -> dict:
    """`learn.train` with the model's overrides (`learn.overrides.<model>`) and its kind."""
    params = dict(config["learn"].get("train", {}))
    params.update(config["learn"].get("overrides", {}).get(model, {}))
    params["kind"] = model
    return params


def known_truth_train_params(config: dict, cutoff: float) -> dict:
    """Training section of the known-truth benchmark: the metriplectic model's
    (:func:`train_params`), changed by `known_truth.train` (its `model` merged key by key).
    The model's cutoff defaults to ``cutoff``, the truth's, so that the truth lies inside the
    learned model class."""
    params = train_params(config, "metriplectic")
    overrides = dict(config.get("known_truth", {}).get("train", {}))
    model = {**params.get("model", {}), **overrides.pop("model", {})}
    model.setdefault("cutoff", cutoff)
    params.update(overrides)
    params["model"] = model
    return params


SEED_GROUPS = ("stars", "colloid", "known_truth")
SEED_SPLITS = ("train", "validation", "test")


def simulation_seed(config_seed: int, group: str, split: str, replica: int) -> int:
    """Seed of one simulated run: numpy's SeedSequence of (config seed, group, split,
    replica), an integer in [1, 9e8] (the range LAMMPS's random-number fixes accept).

    Unlike ``config_seed + offset + replica``, two config seeds share no run: with 16
    training replicas, config seeds 7 and 11 had shared 12 of them (bench/model.md, "The
    temperature scale of the known truth"). Collisions among distinct tuples have
    probability ~ 1e-9 per pair.
    """
    if group not in SEED_GROUPS:
        raise ValueError(f"simulation_seed: group {group!r} is not one of {SEED_GROUPS}")
    if split not in SEED_SPLITS:
        raise ValueError(f"simulation_seed: split {split!r} is not one of {SEED_SPLITS}")
    if int(config_seed) < 0 or int(replica) < 0:
        raise ValueError(f"simulation_seed: seed {config_seed} and replica {replica} must be "
                         ">= 0")
    words = [int(config_seed), SEED_GROUPS.index(group), SEED_SPLITS.index(split),
             int(replica)]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return 1 + int((int(state[0]) << 32 | int(state[1])) % 900_000_000)
