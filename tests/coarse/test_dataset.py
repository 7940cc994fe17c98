"""build_dataset / load_dataset / snapshots."""

import json

import h5py
import numpy as np
import pytest
import torch

from ddpd.coarse.dataset import build_dataset, collate, load_dataset, snapshots

from .synthetic import soft_sphere_langevin


@pytest.fixture
def runs(tmp_path):
    return [soft_sphere_langevin(tmp_path / f"run{k}.h5", seed=k, frames=12) for k in range(4)]


def test_build_and_load(tmp_path, runs):
    out = tmp_path / "ds.h5"
    build_dataset({"train": runs[:2], "validation": [runs[2]], "test": [runs[3]]},
                  {"stride": 2}, out)
    data = load_dataset(out)
    assert set(data.splits) == {"train", "validation", "test"}
    assert len(data.splits["train"]) == 2
    traj = data.splits["train"][0]
    assert traj.position.shape == (6, 30, 2)
    stats = data.stats
    assert stats["dt"] == pytest.approx(2 * 5 * 0.01)
    assert stats["mass"] == 2.0
    # backward-difference velocities (default): none on the first frame
    assert np.isnan(traj.velocity[0]).all() and not traj.present[0].any()
    assert traj.present[1:].all()
    # thermal speed scale of the train runs only, recomputed here
    v = np.concatenate([t.velocity[1:] for t in data.splits["train"]])
    peculiar = v - v.mean(1, keepdims=True)
    assert stats["speed_scale"] == pytest.approx(np.sqrt((peculiar**2).sum(-1).mean() / 2))
    # cutoff chosen for ~8 neighbours, and the measured mean count is near it
    assert 5 < stats["mean_neighbours"] < 11
    # statistics come from TRAIN only: changing validation leaves them unchanged
    out2 = tmp_path / "ds2.h5"
    build_dataset({"train": runs[:2], "validation": [runs[3]], "test": [runs[2]]},
                  {"stride": 2}, out2)
    assert load_dataset(out2).stats == stats
    snaps = snapshots(data, "train", stats["cutoff"], torch.float64)
    assert len(snaps) == 2 * 4
    batch = collate(snaps[:3])
    assert batch.v0.shape == (90, 2) and len(batch.idx0) == 90
    assert int(batch.pairs0.i.max()) >= 60
    # each row keeps its frame; joining joined snapshots keeps the frames apart
    assert batch.frame0.tolist() == [0] * 30 + [1] * 30 + [2] * 30
    again = collate([collate(snaps[3:5]), batch])
    assert again.frame0.tolist() == sum(([k] * 30 for k in range(5)), [])


def test_open_box_masks(tmp_path):
    runs = [soft_sphere_langevin(tmp_path / f"v{k}.h5", seed=k, frames=10, open_box=True)
            for k in range(2)]
    out = tmp_path / "ds.h5"
    build_dataset({"train": [runs[0]], "validation": [runs[1]]}, {"exterior_margin": 0.5}, out)
    data = load_dataset(out)
    traj = data.splits["train"][0]
    assert (~traj.present).any() and traj.exterior.any()
    assert not (traj.exterior & ~traj.present).any()
    snaps = snapshots(data, "train", data.stats["cutoff"], torch.float64)
    assert not traj.present[0].any()  # backward differences: no velocity on frame 0
    for t, snap in enumerate(snaps, start=1):
        rows0 = np.nonzero(traj.present[t])[0]
        scored = rows0[snap.idx0.numpy()]
        assert traj.present[t + 1, scored].all() and not traj.exterior[t, scored].any()
        expected = traj.present[t] & traj.present[t + 1] & ~traj.exterior[t]
        assert len(scored) == expected.sum()
        torch.testing.assert_close(snap.v1[snap.idx1],
                                   torch.as_tensor(traj.velocity[t + 1, scored]))


def test_bad_input_is_named(tmp_path, runs):
    out = tmp_path / "ds.h5"
    with pytest.raises(ValueError, match="stride"):
        build_dataset({"train": runs[:1], "validation": runs[1:2]}, {"stride": 0}, out)
    with pytest.raises(ValueError, match="unknown key"):
        build_dataset({"train": runs[:1], "validation": runs[1:2]}, {"strid": 2}, out)
    with pytest.raises(ValueError, match="both split"):
        build_dataset({"train": runs[:2], "validation": runs[1:2]}, {}, out)
    with pytest.raises(ValueError, match="validation"):
        build_dataset({"train": runs[:2]}, {}, out)
    with pytest.raises(FileNotFoundError):
        build_dataset({"train": [tmp_path / "nope.h5"], "validation": runs[1:2]}, {}, out)
    assert not out.exists()
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["a"] = json.dumps({})
    with pytest.raises(ValueError, match="not a ddpd dataset"):
        load_dataset(tmp_path / "x.h5")


def test_backward_difference_velocities_follow_the_displacements(tmp_path):
    """v_t = (x_t - x_{t-stride}) / dt from unwrapped positions, through periodic crossings."""
    runs = [soft_sphere_langevin(tmp_path / f"run{k}.h5", seed=k, frames=12) for k in range(2)]
    from ddpd.io import read_trajectory

    raw = read_trajectory(runs[0])
    assert raw.image is not None and np.abs(raw.image).max() > 0  # some particles crossed
    for stride in (1, 3):
        out = tmp_path / f"ds{stride}.h5"
        build_dataset({"train": [runs[0]], "validation": [runs[1]]}, {"stride": stride}, out)
        traj = load_dataset(out).splits["train"][0]
        unwrapped = raw.unwrapped_position()[::stride]
        dt = raw.time[stride] - raw.time[0]
        np.testing.assert_allclose(traj.velocity[1:], np.diff(unwrapped, axis=0) / dt,
                                   rtol=1e-12, atol=1e-12)
        # the model's step q' = q + v' dt reproduces the next wrapped position
        side = raw.box.edges[0]
        step = traj.position[:-1] + traj.velocity[1:] * dt
        gap = step - traj.position[1:]
        np.testing.assert_allclose(gap - side * np.round(gap / side), 0.0, atol=1e-9)
    recorded = tmp_path / "rec.h5"
    build_dataset({"train": [runs[0]], "validation": [runs[1]]},
                  {"velocities": "recorded"}, recorded)
    np.testing.assert_array_equal(load_dataset(recorded).splits["train"][0].velocity,
                                  raw.velocity)
    with pytest.raises(ValueError, match="dataset.*velocities"):
        build_dataset({"train": [runs[0]], "validation": [runs[1]]},
                      {"velocities": "instant"}, tmp_path / "bad.h5")
