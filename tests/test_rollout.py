"""rollout(): outputs, conservation records, sheared offsets, open boxes, bad params."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from coarse.synthetic import soft_sphere_langevin

from ddpd.coarse.dataset import build_dataset, load_dataset
from ddpd.io import read_trajectory, write_trajectory
from ddpd.rollout import rollout
from ddpd.space import Box
from ddpd.train import train

TRAIN = {"epochs": 1, "batch_frames": 4, "model": {"width": 8, "depth": 1,
                                                   "teacher_features": 4, "dtype": "float64"}}


def _sheared(path, out, rate=0.02):
    traj = read_trajectory(path)
    box = Box(edges=traj.box.edges, boundary="lees-edwards", shear_rate=rate)
    offset = rate * box.edges[1] * traj.time + 1.5
    traj = dataclasses.replace(traj, box=box, observables={"lees_edwards_offset": offset})
    write_trajectory(out, traj)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("rollout")
    out = {}
    for kind in ("periodic", "sheared", "open"):
        runs = [soft_sphere_langevin(d / f"{kind}{k}.h5", n=30, seed=k, frames=15,
                                     every=20 if kind == "open" else 5,
                                     open_box=kind == "open") for k in range(4)]
        if kind == "sheared":
            runs = [_sheared(r, d / f"le{k}.h5") for k, r in enumerate(runs)]
        ds = d / f"{kind}.h5"
        # the synthetic open view wraps in y: keep its recorded (video-like) velocities
        params = {"velocities": "recorded"} if kind == "open" else {}
        build_dataset({"train": runs[:1], "validation": runs[1:2], "test": runs[2:]}, params,
                      ds)
        train(ds, TRAIN, d / f"m_{kind}", device="cpu")
        out[kind] = (ds, d / f"m_{kind}")
    return out


def test_training_records_the_label_check_and_skips_it_without_labels(trained):
    # the open view's validation run has at most 2 interior particles a frame: too few labels
    # for the entropy-label check, which must not fail the training (ddpd.model.entropy_labels)
    info = json.loads((trained["open"][1] / "hparams.json").read_text())
    assert "labelled in 3 frames" in info["entropy_labels"]["skipped"]
    for kind in ("periodic", "sheared"):
        labels = json.loads((trained[kind][1] / "hparams.json").read_text())["entropy_labels"]
        assert labels["frames"] == 14 and labels["fluctuation"] >= 0


def test_periodic_exact_energy_rollout(trained, tmp_path):
    ds, model = trained["periodic"]
    out = tmp_path / "r.h5"
    rollout(model, ds, {"n_steps": 20, "save_every": 5, "device": "cpu"}, out)
    traj = read_trajectory(out)
    assert traj.position.shape == (5, 30, 2)
    # backward-difference velocities: the first test frame has none, the rollout starts at 1
    data = load_dataset(ds)
    start = data.splits["test"][0].time[1]
    assert traj.time[0] == start and np.isclose(traj.time[-1], start + 20 * data.stats["dt"])
    energy = traj.observables["total_energy"]
    assert np.abs(energy - energy[0]).max() <= 1e-9 * abs(energy[0])
    momentum = traj.observables["total_momentum"]
    assert np.abs(momentum - momentum[0]).max() < 1e-10
    assert traj.observables["entropy"].shape == (5, 30)
    np.testing.assert_allclose(traj.observables["total_entropy"],
                               traj.observables["entropy"].sum(1))
    # unwrapped positions are continuous: steps of v dt, never a box length
    jumps = np.abs(np.diff(traj.unwrapped_position(), axis=0)).max()
    assert jumps < 0.5 * traj.box.edges[0]
    # same seed, same rollout; other integrator differs
    rollout(model, ds, {"n_steps": 20, "save_every": 5, "device": "cpu"}, tmp_path / "r2.h5")
    np.testing.assert_array_equal(read_trajectory(tmp_path / "r2.h5").position, traj.position)
    rollout(model, ds, {"n_steps": 20, "save_every": 5, "integrator": "euler", "device": "cpu"},
            tmp_path / "e.h5")
    euler = read_trajectory(tmp_path / "e.h5")
    assert np.abs(euler.observables["total_momentum"] - momentum[0]).max() < 1e-10
    assert not np.array_equal(euler.position, traj.position)


def test_several_rollouts_go_to_a_folder(trained, tmp_path):
    ds, model = trained["periodic"]
    rollout(model, ds, {"n_steps": 4, "save_every": 2, "n_rollouts": 2, "device": "cpu"},
            tmp_path / "many")
    files = sorted((tmp_path / "many").iterdir())
    assert [f.name for f in files] == ["rollout_000.h5", "rollout_001.h5"]
    with pytest.raises(ValueError, match="n_rollouts"):
        rollout(model, ds, {"n_rollouts": 3}, tmp_path / "x")


def test_sheared_offsets_advance(trained, tmp_path):
    ds, model = trained["sheared"]
    rollout(model, ds, {"n_steps": 10, "save_every": 5, "device": "cpu"}, tmp_path / "s.h5")
    traj = read_trajectory(tmp_path / "s.h5")
    data = load_dataset(ds)
    offset = traj.observables["lees_edwards_offset"]
    start = data.splits["test"][0].offset[1]  # first frame with (backward) velocities
    expected = start + 0.02 * traj.box.edges[1] * (traj.time - traj.time[0])
    np.testing.assert_allclose(offset, expected, rtol=1e-12)
    assert traj.box.boundary == "lees-edwards" and traj.box.shear_rate == 0.02


def test_open_box_prescribes_exterior_from_data(trained, tmp_path):
    ds, model = trained["open"]
    rollout(model, ds, {"n_steps": 14, "save_every": 1, "device": "cpu"}, tmp_path / "o.h5")
    traj = read_trajectory(tmp_path / "o.h5")
    test = load_dataset(ds).splits["test"][0]
    fixed = ~(test.present[0] & ~test.exterior[0])
    assert fixed.any() and (~fixed).any()
    # tracks entering the view have a position but no velocity yet: treated as absent
    entering = np.isfinite(test.position).all(-1) & ~test.present
    assert entering[:15].any()
    assert np.isnan(traj.position[entering[:15]]).all()
    data = np.where(test.present[..., None], test.position, np.nan)[:15]
    np.testing.assert_allclose(traj.position[:, fixed], data[:, fixed])
    # evolved particles differ from the data
    assert not np.allclose(traj.position[1:, ~fixed], test.position[1:15][:, ~fixed])
    with pytest.raises(ValueError, match="n_steps"):
        rollout(model, ds, {"n_steps": 100, "device": "cpu"}, tmp_path / "too_long.h5")
    # n_steps null: the test trajectory's own length
    rollout(model, ds, {"save_every": 7, "device": "cpu"}, tmp_path / "whole.h5")
    np.testing.assert_allclose(read_trajectory(tmp_path / "whole.h5").time, test.time[::7])


def test_bad_params(trained, tmp_path):
    ds, model = trained["periodic"]
    with pytest.raises(ValueError, match="rollout.integrator"):
        rollout(model, ds, {"integrator": "rk4"}, tmp_path / "x.h5")
    with pytest.raises(ValueError, match="unknown key"):
        rollout(model, ds, {"steps": 3}, tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError, match="hparams.json"):
        rollout(tmp_path, ds, {}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("kind,integrator", [("periodic", "exact_energy"), ("open", "euler")])
def test_compiled_rollout_is_the_eager_one_to_round_off(trained, tmp_path, monkeypatch, kind,
                                                        integrator):
    """rollout.compile: the model's evaluation through torch.compile (dynamic shapes: the
    open box's evolved and prescribed particles change step to step) gives the eager
    trajectory to round-off in float64 (same noise: same seed)."""
    from ddpd.model.metriplectic import MetriplecticModel

    compiled_models = []
    original = MetriplecticModel.compile_evaluation

    def recorded(self):
        compiled_models.append(self)
        original(self)

    monkeypatch.setattr(MetriplecticModel, "compile_evaluation", recorded)
    ds, model = trained[kind]
    runs = {}
    for compiled in (False, True):
        out = tmp_path / f"compiled{compiled}.h5"
        rollout(model, ds, {"n_steps": 10, "save_every": 1, "device": "cpu",
                            "integrator": integrator, "compile": compiled}, out)
        runs[compiled] = read_trajectory(out)
    assert len(compiled_models) == 1  # only the run with rollout.compile: true
    for name in ("position", "velocity"):
        np.testing.assert_allclose(getattr(runs[True], name), getattr(runs[False], name),
                                   rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(runs[True].observables["entropy"],
                               runs[False].observables["entropy"], rtol=1e-9, atol=1e-11)
    assert np.isfinite(runs[True].observables["total_energy"]).all()


def test_rollout_compile_is_validated_and_needs_a_compiler(trained, tmp_path, monkeypatch):
    ds, model = trained["periodic"]
    with pytest.raises(ValueError, match="rollout.compile"):
        rollout(model, ds, {"compile": "yes"}, tmp_path / "x.h5")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(ValueError, match="rollout.compile: true needs a C\\+\\+ compiler"):
        rollout(model, ds, {"compile": True, "device": "cpu"}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_video_like_data_starts_at_the_first_frame_with_velocities(trained, tmp_path):
    """Tracked video has no velocity in frame 0 (backward differences): the rollout starts
    at frame 1 and evolves the interior particles instead of prescribing all of them."""
    ds, model = trained["open"]
    data = load_dataset(ds)
    sources = {}
    for split in ("train", "validation", "test"):
        sources[split] = []
        for k, t in enumerate(data.splits[split]):
            traj = read_trajectory(t.source)
            traj.velocity[0] = np.nan
            path = tmp_path / f"{split}{k}.h5"
            write_trajectory(path, traj)
            sources[split].append(path)
    video_ds = tmp_path / "video.h5"
    build_dataset(sources, {}, video_ds)
    rollout(model, video_ds, {"save_every": 1, "device": "cpu"}, tmp_path / "v.h5")
    traj = read_trajectory(tmp_path / "v.h5")
    test = load_dataset(video_ds).splits["test"][0]
    assert traj.metadata["start_frame"] == 1
    np.testing.assert_allclose(traj.time, test.time[1:])
    evolved = test.present[1] & ~test.exterior[1]
    assert evolved.any()
    assert not np.allclose(traj.position[1:, evolved], test.position[2:][:, evolved])


@pytest.mark.parametrize("kind", ["periodic", "sheared", "open"])
def test_neighbour_skin_changes_nothing_but_the_builds(trained, tmp_path, monkeypatch, kind):
    """rollout.skin: the Verlet list gives the rollout of a cell list every step, bit for
    bit, with fewer cell-list builds (periodic and sheared: in an open box the prescribed
    tracks come and go, and every change of the present particles rebuilds)."""
    import ddpd.rollout as rollout_module
    from ddpd.space.neighbours import VerletList

    lists = []

    class Recorded(VerletList):
        def __init__(self, *args):
            super().__init__(*args)
            lists.append(self)

    monkeypatch.setattr(rollout_module, "VerletList", Recorded)
    ds, model = trained[kind]
    n_steps = 12 if kind == "open" else 40
    runs = {}
    for skin in (0.0, 0.5):  # 8 / 17 / 14 builds in the three boxes when this was written
        out = tmp_path / f"skin{skin}.h5"
        rollout(model, ds, {"n_steps": n_steps, "save_every": 1, "device": "cpu",
                            "skin": skin}, out)
        runs[skin] = read_trajectory(out)
    assert len(lists) == 1
    assert 1 <= lists[0].builds < (n_steps if kind != "open" else 3 * n_steps)
    if kind != "open":
        assert lists[0].builds < n_steps // 2
    np.testing.assert_array_equal(runs[0.0].position, runs[0.5].position)
    np.testing.assert_array_equal(runs[0.0].velocity, runs[0.5].velocity)
    np.testing.assert_array_equal(runs[0.0].observables["entropy"],
                                  runs[0.5].observables["entropy"])


def test_a_box_too_small_for_the_skin_runs_without_the_list(trained, tmp_path, monkeypatch,
                                                            caplog):
    import ddpd.rollout as rollout_module

    def refuse(*args):
        raise AssertionError("no Verlet list expected")

    monkeypatch.setattr(rollout_module, "VerletList", refuse)
    ds, model = trained["periodic"]
    params = {"n_steps": 5, "save_every": 1, "device": "cpu"}
    with caplog.at_level("INFO", logger="ddpd.rollout"):
        rollout(model, ds, dict(params, skin=10.0), tmp_path / "big.h5")
    assert "a cell list every step" in caplog.text
    rollout(model, ds, dict(params, skin=0.0), tmp_path / "off.h5")
    np.testing.assert_array_equal(read_trajectory(tmp_path / "big.h5").position,
                                  read_trajectory(tmp_path / "off.h5").position)
    with pytest.raises(ValueError, match="rollout.skin"):
        rollout(model, ds, dict(params, skin=-0.1), tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.parametrize("factor", [float("nan"), 2000.0], ids=["nan", "runaway"])
def test_a_diverging_model_is_recorded_not_crashed(trained, tmp_path, monkeypatch, factor):
    """Velocities turn NaN, or finite but 2000x too fast (beyond DIVERGED_SPEED sigma_v),
    at step 3: the rollout records the step and NaN frames from there on."""
    from ddpd.model.metriplectic import MetriplecticModel

    ds, model = trained["periodic"]
    original = MetriplecticModel.step
    calls = {"n": 0}

    def blow_up(self, state, *args, **kwargs):
        calls["n"] += 1
        new = original(self, state, *args, **kwargs)
        return new._replace(v=new.v * factor) if calls["n"] == 3 else new

    monkeypatch.setattr(MetriplecticModel, "step", blow_up)
    rollout(model, ds, {"n_steps": 6, "save_every": 1, "device": "cpu"}, tmp_path / "d.h5")
    traj = read_trajectory(tmp_path / "d.h5")
    assert traj.metadata["diverged_at_step"] == 3
    assert traj.n_frames == 7 and np.isfinite(traj.position[:3]).all()
    assert np.isnan(traj.position[3:]).all()
    np.testing.assert_allclose(np.diff(traj.time), np.diff(traj.time)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_rollouts_on_cuda(trained, tmp_path):
    """device cuda, every box: the files are written, the periodic run keeps energy and
    momentum, the open box keeps its exterior particles on the data."""
    ds, model = trained["periodic"]
    rollout(model, ds, {"n_steps": 20, "save_every": 5, "device": "cuda"}, tmp_path / "p.h5")
    traj = read_trajectory(tmp_path / "p.h5")
    energy = traj.observables["total_energy"]
    assert np.abs(energy - energy[0]).max() <= 1e-9 * abs(energy[0])
    momentum = traj.observables["total_momentum"]
    assert np.abs(momentum - momentum[0]).max() < 1e-10
    ds, model = trained["sheared"]
    rollout(model, ds, {"n_steps": 10, "save_every": 5, "device": "cuda"}, tmp_path / "s.h5")
    assert np.isfinite(read_trajectory(tmp_path / "s.h5").position).all()
    ds, model = trained["open"]
    rollout(model, ds, {"n_steps": 14, "save_every": 1, "device": "cuda"}, tmp_path / "o.h5")
    traj = read_trajectory(tmp_path / "o.h5")
    test = load_dataset(ds).splits["test"][0]
    fixed = ~(test.present[0] & ~test.exterior[0])
    data = np.where(test.present[..., None], test.position, np.nan)[:15]
    np.testing.assert_allclose(traj.position[:, fixed], data[:, fixed])
