"""Config validation: defaults filled, every error names its key."""

from pathlib import Path

import pytest
import yaml

from ddpd.config import ConfigError, step_params, step_section, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("name", ["config.yaml", "tests/configs/smoke.yaml", "configs/paper.yaml"])
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((ROOT / name).read_text())
    validate_config(config, SCHEMA)
    assert config["learn"]["threads"] >= 1  # default filled in
    parsed = step_params(config)  # every step's own section, with the step's dataclass
    assert "learn.train" in parsed and any(k.startswith("stars.systems.") for k in parsed)


def test_errors_name_keys_and_expectations():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["seed"] = "one"
    config["stars"]["conditions"]["shear"] = -0.1
    config["colloid"]["typo"] = True
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA, source="my.yaml")
    text = str(err.value)
    assert "my.yaml: key 'seed': 'one' is not of type 'integer'" in text
    assert "'stars.conditions.shear'" in text and "minimum" in text
    assert "unknown key 'colloid.typo'" in text


def test_missing_section_is_named():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    del config["rollout"]
    with pytest.raises(ConfigError, match="'rollout' is a required property"):
        validate_config(config, SCHEMA)


def test_step_section_errors_name_the_config_path():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["stars"]["systems"]["melt"]["arms"] = -1
    config["colloid"]["track"]["invert"] = "yes"
    config["learn"]["train"]["epocs"] = 3
    validate_config(config, SCHEMA)
    with pytest.raises(ConfigError) as err:
        step_params(config)
    text = str(err.value)
    assert "'stars.systems.melt'" in text and "arms" in text
    assert "'colloid.track'" in text and "invert" in text
    assert "'learn.train'" in text and "epocs" in text


def test_step_section_parses_one_section_like_step_params():
    config = yaml.safe_load((ROOT / "tests/configs/smoke.yaml").read_text())
    validate_config(config, SCHEMA)
    every = step_params(config)
    for path in ("rollout", "dataset", "known_truth.simulation", "stars.systems.melt"):
        assert step_section(config, path) == every[path]
    with pytest.raises(KeyError, match="'rollout.n_steps' is not a step section"):
        step_section(config, "rollout.n_steps")
    config["rollout"]["n_stepz"] = 10
    with pytest.raises(ConfigError, match="'rollout'.*n_stepz"):
        step_section(config, "rollout")


def test_a_model_section_is_checked_by_each_learned_kind_before_any_job():
    """learn.train.model is each learned model's own section: a key only the metriplectic
    model has (kernel_table) is refused for gnn at configuration time, naming the section,
    and accepted once gnn's override gives it a model section of its own."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["learn"]["train"]["model"]["kernel_table"] = 256
    validate_config(config, SCHEMA)
    with pytest.raises(ConfigError) as err:
        step_params(config)
    text = str(err.value)
    assert "'learn.overrides.gnn'" in text and "unknown key 'kernel_table'" in text
    assert "'learn.overrides.metriplectic'" not in text
    assert "'learn.overrides.isothermal'" not in text
    config["learn"]["overrides"]["gnn"]["model"] = {"width": 32, "depth": 2}
    parsed = step_params(config)
    assert parsed["learn.overrides.metriplectic"].model["kernel_table"] == 256


def test_rollout_seeds_own_the_rollout_seed_and_may_not_share_noise_streams():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_config(config, SCHEMA)
    assert len(config["rollout_seeds"]) > 1  # the default study reports a seed range
    config["rollout"]["seed"] = 7
    with pytest.raises(ConfigError, match="key 'rollout.seed': the study sets the rollouts' "
                                          "noise seeds from 'rollout_seeds'"):
        step_params(config)
    del config["rollout"]["seed"]
    config["rollout"]["n_rollouts"] = 2
    config["rollout_seeds"] = [0, 5, 6]
    with pytest.raises(ConfigError, match="'rollout_seeds': seeds 5 and 6 are closer than "
                                          "rollout.n_rollouts = 2"):
        step_params(config)
    config["rollout_seeds"] = [0, 2, 4]
    step_params(config)
    config["rollout_seeds"] = [1, 1]
    with pytest.raises(ConfigError, match="rollout_seeds"):
        validate_config(config, SCHEMA)
