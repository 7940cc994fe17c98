import numpy as np
import pytest

from ddpd.io.h5md import Trajectory, write_trajectory
from ddpd.plots.conservation import plot_conservation
from ddpd.plots.errors import plot_error_table
from ddpd.plots.statistics import plot_statistics_overlay
from ddpd.plots.training import plot_learning_curve
from ddpd.space.box import Box
from ddpd.stats.compare import compare_statistics
from ddpd.stats.compute import compute_statistics

PARAMS = {"r_max": 2.0, "n_bins": 20, "max_lag": 10, "n_alpha2_lags": 4,
          "van_hove_lags": [1, 5], "van_hove_r_max": 2.0, "van_hove_bins": 10,
          "profile_bins": 4}


def sheared_trajectory(seed, n_frames=20, n=40):
    rng = np.random.default_rng(seed)
    box = Box(edges=(6.0, 6.0, 6.0), boundary="lees-edwards", shear_rate=0.1)
    pos = rng.uniform(0, 6, (n_frames, n, 3))
    vel = rng.normal(0, 1, (n_frames, n, 3))
    vel[..., 0] += 0.1 * pos[..., 1]
    return Trajectory(position=pos, velocity=vel, time=0.1 * np.arange(n_frames), box=box,
                      observables={"lees_edwards_offset": 0.06 * np.arange(n_frames),
                                   "total_entropy": np.linspace(0, 1, n_frames)})


def assert_figures(paths, prefix):
    assert [p.name for p in paths] == [prefix.name + ".png", prefix.name + ".pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert all(p.stat().st_size > 1000 for p in paths)
    assert not list(prefix.parent.glob("*.part"))


def test_statistics_overlay_and_error_table(tmp_path):
    files = {}
    for label, seed in [("truth", 0), ("model", 1)]:
        write_trajectory(tmp_path / f"{label}.h5", sheared_trajectory(seed))
        files[label] = tmp_path / f"{label}.json"
        compute_statistics(tmp_path / f"{label}.h5", PARAMS, files[label])
    prefix = tmp_path / "fig" / "overlay"
    assert_figures(plot_statistics_overlay(files, prefix), prefix)
    compare_statistics(files["truth"], {"model": files["model"]}, tmp_path / "err.csv",
                       tmp_path / "err.md")
    prefix = tmp_path / "fig" / "errors"
    assert_figures(plot_error_table(tmp_path / "err.csv", prefix), prefix)


def test_learning_curve_and_conservation(tmp_path):
    epochs = np.arange(1, 21)
    (tmp_path / "curve.csv").write_text(
        "epoch,train_loss,val_loss,lr\n"
        + "".join(f"{e},{-1 + 1 / e},{-0.9 + 1 / e},{1e-3}\n" for e in epochs))
    prefix = tmp_path / "curve"
    assert_figures(plot_learning_curve(tmp_path / "curve.csv", prefix), prefix)
    write_trajectory(tmp_path / "roll.h5", sheared_trajectory(2))
    prefix = tmp_path / "conservation"
    assert_figures(plot_conservation(tmp_path / "roll.h5", prefix), prefix)
    (tmp_path / "runs").mkdir()
    write_trajectory(tmp_path / "runs" / "rollout_000.h5", sheared_trajectory(3))
    prefix = tmp_path / "conservation_runs"
    assert_figures(plot_conservation(tmp_path / "runs", prefix), prefix)


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        plot_learning_curve(tmp_path / "nope.csv", tmp_path / "x")
    (tmp_path / "t.csv").write_text("model,value\na,1\n")
    with pytest.raises(ValueError, match="relative_error"):
        plot_error_table(tmp_path / "t.csv", tmp_path / "x")
    with pytest.raises(ValueError, match="at least one"):
        plot_statistics_overlay({}, tmp_path / "x")
    assert not list(tmp_path.glob("x*"))
