"""write_summary's training section: how each model's training ended, from ddpd.train's files."""

import json
import warnings

import pandas as pd
import pytest
from coarse.synthetic import soft_sphere_dataset

from ddpd.summary import training_table, write_summary
from ddpd.train import train

PARAMS = {"epochs": 3, "batch_frames": 3, "model": {"width": 8, "depth": 1,
                                                    "teacher_features": 4}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two trained models: one ends by its epochs, one at the wall-time limit."""
    d = tmp_path_factory.mktemp("summary")
    dataset = soft_sphere_dataset(d / "ds.h5", n=16, frames=12)
    train(dataset, PARAMS, d / "models" / "gas" / "metriplectic", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(dataset, dict(PARAMS, max_wall_minutes=1e-9), d / "models" / "slow" / "metriplectic",
              device="cpu")
    return [d / "models" / name / "metriplectic" / "hparams.json" for name in ("gas", "slow")]


def test_training_rows_say_why_training_ended(models):
    table = training_table(models)
    rows = table.set_index("dataset").to_dict("index")
    assert rows["gas"]["epochs"] == "3 / 3" and rows["gas"]["stopped by"] == "epochs"
    assert rows["slow"]["epochs"] == "1 / 3" and rows["slow"]["stopped by"] == "wall_time"
    for name, path in zip(("gas", "slow"), models, strict=True):
        assert rows[name]["model"] == "metriplectic"
        assert rows[name]["best epoch"] == json.loads(path.read_text())["best_epoch"]
        wall = float(pd.read_csv(path.parent / "learning_curve.csv")["wall_s"].iloc[-1])
        assert rows[name]["wall time [s]"] == round(wall, 1) >= 0
        labels = json.loads(path.read_text())["entropy_labels"]
        assert rows[name]["S relaxation [frames]"] == f"{labels['relaxation_frames']:.2f}"
        assert rows[name]["Einstein / label spread"] == f"{labels['einstein_ratio']:.1f}"
        assert rows[name]["S noise / label step"] == f"{labels['noise_ratio']:.1f}"
        failed = labels["relaxation_frames"] < 1 or labels["einstein_ratio"] > 3
        assert rows[name]["S label check"] == ("failed" if failed else "ok")


def test_summary_flags_a_wall_time_stop(models, tmp_path):
    write_summary([], [], [], tmp_path / "all.md", training=models)
    text = (tmp_path / "all.md").read_text()
    assert "## Training" in text and "| slow " in text and "wall_time" in text
    assert "Stopped by the wall-time limit" in text
    # these tiny models' labels fail the check (their Einstein spread is far beyond them)
    assert "**Entropy labels the model cannot follow:** gas/metriplectic, slow/metriplectic" in text
    write_summary([], [], [], tmp_path / "one.md", training=models[:1])
    text = (tmp_path / "one.md").read_text()
    assert "| gas " in text and "Stopped by the wall-time limit" not in text


def test_models_from_before_stop_reason_and_bad_input(models, tmp_path):
    old = tmp_path / "old" / "metriplectic"
    old.mkdir(parents=True)
    info = json.loads(models[0].read_text())
    del info["stop_reason"]
    (old / "hparams.json").write_text(json.dumps(info))
    (old / "learning_curve.csv").write_text((models[0].parent / "learning_curve.csv").read_text())
    info["entropy_labels"].update(relaxation_frames=5.0, einstein_ratio=1.0)  # slow labels
    del info["entropy_labels"]["noise_ratio"]  # a check from before the noise ratio
    (old / "hparams.json").write_text(json.dumps(info))
    assert training_table([old / "hparams.json"])["S label check"].tolist() == ["ok"]
    assert training_table([old / "hparams.json"])["S noise / label step"].tolist() == ["n/a"]
    write_summary([], [], [], tmp_path / "ok.md", training=[old / "hparams.json"])
    assert "cannot follow" not in (tmp_path / "ok.md").read_text()
    info["entropy_labels"] = {"skipped": "labels: no particle is labelled in 3 frames"}
    (old / "hparams.json").write_text(json.dumps(info))
    assert training_table([old / "hparams.json"])["S label check"].tolist() == ["n/a"]
    del info["entropy_labels"]
    (old / "hparams.json").write_text(json.dumps(info))
    row = training_table([old / "hparams.json"]).iloc[0]
    assert row["stopped by"] == row["S relaxation [frames]"] == "n/a"

    (old / "learning_curve.csv").unlink()
    with pytest.raises(FileNotFoundError, match="learning_curve.csv"):
        write_summary([], [], [], tmp_path / "s.md", training=[old / "hparams.json"])
    assert not (tmp_path / "s.md").exists()
    (old / "hparams.json").write_text(json.dumps({"kind": "metriplectic"}))
    (old / "learning_curve.csv").write_text("epoch,wall_s\n0,0.0\n")
    with pytest.raises(ValueError, match=r"hparams.json: missing key\(s\)"):
        training_table([old / "hparams.json"])
