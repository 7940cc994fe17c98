"""The error floor: an independent replica in the rollouts' window, scored like a model."""

import csv
import math

import numpy as np
import pytest
from synthetic_stats import random_walk
from test_compare import write_stats

from ddpd.cli import main
from ddpd.io.h5md import Trajectory, read_trajectory, write_trajectory
from ddpd.space.box import Box
from ddpd.stats.compare import compare_statistics
from ddpd.stats.compute import compute_statistics
from ddpd.stats.floor import FloorParams, floor_window, replica_window
from ddpd.summary import write_summary


def test_floor_row_and_ratio_in_tables(tmp_path):
    x = np.linspace(0, 1, 11)
    truth = write_stats(tmp_path / "truth.json", {"msd": (x, 1 + x), "rdf": (x, np.ones(11))},
                        {"kinetic_temperature": 1.0})
    floor = write_stats(tmp_path / "floor.json", {"msd": (x, 1.02 * (1 + x)),
                                                  "rdf": (x, np.ones(11))},
                        {"kinetic_temperature": 1.05})
    model = write_stats(tmp_path / "model.json", {"msd": (x, 1.1 * (1 + x)),
                                                  "rdf": (x, 1.5 * np.ones(11))},
                        {"kinetic_temperature": 2.0})
    table = compare_statistics(truth, {"model": model}, tmp_path / "e.csv", tmp_path / "e.md",
                               floor=floor)
    assert table["floor"]["msd"] == pytest.approx(0.02)
    assert table["floor"]["rdf"] == 0.0
    assert table["model"]["kinetic_temperature"] == pytest.approx(1.0)
    rows = {(r["model"], r["statistic"]): r for r in csv.DictReader((tmp_path / "e.csv").open())}
    assert set(rows) == {(m, s) for m in ("model", "floor")
                         for s in ("msd", "rdf", "kinetic_temperature")}
    assert float(rows["model", "msd"]["error_over_floor"]) == pytest.approx(5.0)
    assert float(rows["model", "kinetic_temperature"]["error_over_floor"]) == pytest.approx(20.0)
    assert rows["model", "rdf"]["error_over_floor"] == "nan"  # zero floor: no ratio
    assert float(rows["floor", "msd"]["error_over_floor"]) == pytest.approx(1.0)
    md = (tmp_path / "e.md").read_text()
    assert "| statistic | floor | model |" in md
    assert "| msd | 0.02 | 0.1 |" in md
    assert "| msd | 5 |" in md and "| rdf | n/a |" in md

    write_summary([tmp_path / "e.csv"], [], [], tmp_path / "summary.md")
    summary = (tmp_path / "summary.md").read_text()
    header = [line for line in summary.splitlines() if line.startswith("| statistic")][0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["statistic", "floor", "model"]
    assert "0.1 (5x)" in summary and "1 (20x)" in summary


def test_rollout_seeds_give_the_mean_error_and_its_range(tmp_path):
    """One model rolled out with three noise seeds (``--model`` NAME repeated): the row is
    the seeds' mean error with its range; a statistic NaN for one seed is NaN, not averaged
    away; the floor ratio uses the mean."""
    x = np.linspace(0, 1, 11)
    truth = write_stats(tmp_path / "truth.json", {"msd": (x, 1 + x), "rdf": (x, 1 + x)},
                        {"kinetic_temperature": 1.0})
    floor = write_stats(tmp_path / "floor.json", {"msd": (x, 1.05 * (1 + x)),
                                                  "rdf": (x, 1.05 * (1 + x))},
                        {"kinetic_temperature": 1.01})
    seeds = []
    for k, (factor, rdf) in enumerate([(1.1, 1.0), (1.3, 1.2), (1.6, np.nan)]):
        seeds.append(write_stats(tmp_path / f"seed{k}.json",
                                 {"msd": (x, factor * (1 + x)), "rdf": (x, rdf * (1 + x))},
                                 {"kinetic_temperature": 1.0 + 0.01 * k}))
    single = write_stats(tmp_path / "single.json", {"msd": (x, 2 * (1 + x)),
                                                    "rdf": (x, 1 + x)},
                         {"kinetic_temperature": 1.5})
    code = main(["compare", "--truth", str(truth), "--floor", str(floor), "--model"]
                + [f"ours={path}" for path in seeds] + [f"other={single}",
                "--out-csv", str(tmp_path / "e.csv"), "--out-md", str(tmp_path / "e.md")])
    assert code == 0
    rows = {(r["model"], r["statistic"]): r for r in csv.DictReader((tmp_path / "e.csv").open())}
    ours = rows["ours", "msd"]
    assert float(ours["relative_error"]) == pytest.approx((0.1 + 0.3 + 0.6) / 3)
    assert float(ours["relative_error_min"]) == pytest.approx(0.1)
    assert float(ours["relative_error_max"]) == pytest.approx(0.6)
    assert ours["n_seeds"] == "3"
    assert float(ours["error_over_floor"]) == pytest.approx((1.0 / 3) / 0.05)
    assert rows["ours", "rdf"]["relative_error"] == "nan"  # seed 2 has no finite g(r)
    assert float(rows["ours", "kinetic_temperature"]["relative_error_max"]) == pytest.approx(0.02)
    assert rows["other", "msd"]["n_seeds"] == "1"
    assert rows["floor", "msd"]["relative_error_min"] == rows["floor", "msd"]["relative_error"]
    md = (tmp_path / "e.md").read_text()
    assert "Rollout seeds per model: ours 3, other 1" in md
    assert "| msd | 0.05 | 0.333 (0.1-0.6) | 1 |" in md
    assert "| rdf | 0.05 | n/a | 0 |" in md

    write_summary([tmp_path / "e.csv"], [], [], tmp_path / "summary.md")
    summary = (tmp_path / "summary.md").read_text()
    assert "0.333 [0.1-0.6] (6.67x)" in summary and "| 1 (20x) " in summary
    # a table written before the seeds' columns still reads (one seed per model)
    old = tmp_path / "old.csv"
    old.write_text("model,statistic,relative_error,error_over_floor\nm,msd,0.2,4\n")
    write_summary([old], [], [], tmp_path / "old.md")
    assert "0.2 (4x)" in (tmp_path / "old.md").read_text()


def test_without_floor_no_ratio_and_reserved_name(tmp_path):
    x = np.linspace(0, 1, 5)
    truth = write_stats(tmp_path / "truth.json", {"msd": (x, 1 + x)})
    model = write_stats(tmp_path / "model.json", {"msd": (x, 1.1 * (1 + x))})
    compare_statistics(truth, {"model": model}, tmp_path / "e.csv", tmp_path / "e.md")
    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert [r["model"] for r in rows] == ["model"] and rows[0]["error_over_floor"] == "nan"
    assert "floor" not in (tmp_path / "e.md").read_text()
    with pytest.raises(ValueError, match="reserved"):
        compare_statistics(truth, {"floor": model}, tmp_path / "f.csv", tmp_path / "f.md")
    assert not (tmp_path / "f.csv").exists()


def periodic_walk(seed, n_frames=121, n=64, diffusion=0.05, edge=6.0):
    """Random walkers in a periodic box with image counts; velocities recorded as noise."""
    rng = np.random.default_rng(seed)
    unwrapped = random_walk(rng, n_frames, n, 3, diffusion, 0.5)
    image = np.floor(unwrapped / edge).astype(int)
    velocity = rng.normal(0.0, 1.0, unwrapped.shape)
    return Trajectory(position=unwrapped - image * edge, velocity=velocity,
                      time=0.5 * np.arange(n_frames), box=Box(edges=(edge,) * 3),
                      image=image, observables={"rg2": rng.uniform(1, 2, (n_frames, n)),
                                                "fine_temperature": np.ones(n_frames)},
                      metadata={"units": {"length": "σ", "time": "τ"}})


def test_replica_window_is_the_rollout_window():
    traj = periodic_walk(0)
    # backward differences: the first strided frame has no velocity, the rollout starts at 1
    p = FloorParams(stride=2, save_every=3)
    window = replica_window(traj, p, "replica.h5")
    n_data = len(range(0, traj.n_frames, 2))  # 61 strided frames -> 59 steps from frame 1
    frames = 2 * (1 + 3 * np.arange((n_data - 2) // 3 + 1))
    np.testing.assert_array_equal(window.step, frames)
    np.testing.assert_allclose(window.time, traj.time[frames])
    np.testing.assert_allclose(window.unwrapped_position(), traj.unwrapped_position()[frames])
    expected_v = (traj.unwrapped_position()[frames] - traj.unwrapped_position()[frames - 2]) / 1.0
    np.testing.assert_allclose(window.velocity, expected_v)
    np.testing.assert_allclose(window.observables["rg2"], traj.observables["rg2"][frames])
    # recorded velocities start at frame 0; n_steps and max_frames cut the window
    p = FloorParams(stride=1, velocities="recorded", n_steps=50, save_every=10, max_frames=100)
    window = replica_window(traj, p, "replica.h5")
    np.testing.assert_array_equal(window.step, np.arange(0, 51, 10))
    np.testing.assert_allclose(window.velocity, traj.velocity[::10][:6])
    with pytest.raises(ValueError, match="replica.h5: rollout.n_steps 100 exceeds the 98"):
        replica_window(traj, FloorParams(max_frames=100, n_steps=100, save_every=1),
                       "replica.h5")


def test_floor_window_files_and_bad_params(tmp_path):
    for k in range(2):
        write_trajectory(tmp_path / f"rep{k}.h5", periodic_walk(k))
    floor_window([tmp_path / "rep0.h5"], {"save_every": 2}, tmp_path / "one.h5")
    assert read_trajectory(tmp_path / "one.h5").n_frames == 60  # frames 1, 3, ..., 119
    floor_window([tmp_path / "rep0.h5", tmp_path / "rep1.h5"], {"save_every": 2},
                 tmp_path / "two")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["rollout_000.h5",
                                                                    "rollout_001.h5"]
    with pytest.raises(ValueError, match="floor.save_every"):
        floor_window([tmp_path / "rep0.h5"], {"save_every": 0}, tmp_path / "bad.h5")
    with pytest.raises(ValueError, match="floor: unknown key 'integrator'"):
        floor_window([tmp_path / "rep0.h5"], {"integrator": "euler"}, tmp_path / "bad.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        floor_window([tmp_path / "nope.h5"], {}, tmp_path / "bad.h5")
    assert not list(tmp_path.glob("bad*"))


def test_floor_is_small_and_a_wrong_model_is_far_above_it(tmp_path):
    """Two independent replicas of one system agree to sampling noise; a model with twice the
    diffusion coefficient has an MSD error of ~1, many times the floor."""
    params = {"r_max": 2.5, "n_bins": 20, "max_lag": 20, "n_alpha2_lags": 5,
              "van_hove_lags": [1, 5], "van_hove_bins": 15}
    window = {"stride": 1, "save_every": 2}
    files = {}
    for name, seed, diffusion in [("truth", 1, 0.05), ("floor", 2, 0.05), ("fast", 3, 0.1)]:
        write_trajectory(tmp_path / f"{name}.h5",
                         periodic_walk(seed, n_frames=241, n=200, diffusion=diffusion))
        floor_window([tmp_path / f"{name}.h5"], window, tmp_path / f"{name}_window.h5")
        files[name] = tmp_path / f"{name}.json"
        compute_statistics(tmp_path / f"{name}_window.h5", params, files[name])
    table = compare_statistics(files["truth"], {"fast": files["fast"]}, tmp_path / "e.csv",
                               tmp_path / "e.md", floor=files["floor"])
    assert table["floor"]["msd"] < 0.1
    assert table["fast"]["msd"] == pytest.approx(1.0, abs=0.15)
    assert table["fast"]["msd"] > 8 * table["floor"]["msd"]
    assert table["floor"]["rdf"] < 0.1  # ideal gas: g(r) = 1 up to counting noise
    assert not math.isnan(table["floor"]["vacf"])
