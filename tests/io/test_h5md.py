"""H5MD trajectory round trip, Lees-Edwards unwrapping, atomic writes, bad input."""

import h5py
import numpy as np
import pytest

from ddpd.io import Trajectory, TrajectoryFormatError, read_trajectory, write_trajectory
from ddpd.space import Box


def _sheared_trajectory(rng: np.random.Generator) -> Trajectory:
    edges = (5.0, 4.0, 3.0)
    n_frames, n = 6, 7
    unwrapped = rng.uniform(-10, 10, size=(n_frames, n, 3))
    time = np.arange(n_frames) * 0.5
    offset = 0.1 * edges[1] * time  # shear_rate * L_y * t
    image = np.zeros((n_frames, n, 3), dtype=np.int32)
    image[..., 1] = np.floor(unwrapped[..., 1] / edges[1])
    shifted_x = unwrapped[..., 0] - image[..., 1] * offset[:, None]
    image[..., 0] = np.floor(shifted_x / edges[0])
    image[..., 2] = np.floor(unwrapped[..., 2] / edges[2])
    wrapped = unwrapped - image * np.asarray(edges)
    wrapped[..., 0] -= image[..., 1] * offset[:, None]
    traj = Trajectory(
        position=wrapped,
        velocity=rng.normal(size=(n_frames, n, 3)),
        time=time,
        box=Box(edges, "lees-edwards", shear_rate=0.1),
        image=image,
        mass=51.0,
        observables={"lees_edwards_offset": offset, "rg2": rng.uniform(size=(n_frames, n))},
        metadata={"seed": 3, "units": "lj"},
    )
    return traj, unwrapped


def test_round_trip_and_lees_edwards_unwrap(tmp_path):
    traj, unwrapped = _sheared_trajectory(np.random.default_rng(0))
    assert np.all((traj.position >= 0) & (traj.position < np.asarray(traj.box.edges)))
    path = tmp_path / "t.h5"
    write_trajectory(path, traj)
    back = read_trajectory(path)
    np.testing.assert_array_equal(back.position, traj.position)
    np.testing.assert_array_equal(back.velocity, traj.velocity)
    np.testing.assert_array_equal(back.image, traj.image)
    np.testing.assert_array_equal(back.observables["rg2"], traj.observables["rg2"])
    assert back.box == traj.box
    assert back.mass == 51.0
    assert back.metadata == {"seed": 3, "units": "lj"}
    np.testing.assert_allclose(back.unwrapped_position(), unwrapped, atol=1e-12)
    with h5py.File(path) as f:  # H5MD 1.1 layout readable by other tools
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["particles/all/position/value"].shape == (6, 7, 3)


def test_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path):
    traj, _ = _sheared_trajectory(np.random.default_rng(1))
    path = tmp_path / "t.h5"
    write_trajectory(path, traj)
    with pytest.raises(FileExistsError, match="t.h5"):
        write_trajectory(path, traj)
    bad = tmp_path / "bad.h5"
    traj.observables["broken"] = np.array([object()] * traj.n_frames)  # h5py cannot store this
    with pytest.raises(TypeError):
        write_trajectory(bad, traj)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]


def test_bad_input_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_trajectory(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(TrajectoryFormatError, match="junk.h5"):
        read_trajectory(junk)
    with pytest.raises(TrajectoryFormatError, match="velocity shape"):
        Trajectory(np.zeros((2, 3, 2)), np.zeros((2, 3, 3)), np.zeros(2), Box((1.0, 1.0)))
    with pytest.raises(ValueError, match="boundary"):
        Box((1.0, 1.0), "helical")


def test_backward_difference_velocity_across_lees_edwards_boundary():
    """Uniform motion through the sheared y boundary: the displacement velocity is the true
    one, minus the velocity jump shear_rate * L_y per upward y image (method.md §1)."""
    from ddpd.simulate.stars import lees_edwards_wrap

    rate, edges, dt = 0.2, np.array([5.0, 4.0, 6.0]), 0.5
    time = np.arange(12) * dt
    velocity = np.array([[0.3, 0.9, -0.2], [-0.4, -0.7, 0.1]])
    start = np.array([[1.0, 3.0, 2.0], [4.0, 0.5, 5.5]])
    unwrapped = start[None] + time[:, None, None] * velocity[None]
    offset = rate * edges[1] * time
    frames = [lees_edwards_wrap(u, edges, o) for u, o in zip(unwrapped, offset, strict=True)]
    wrapped = np.array([f[0] for f in frames])
    image = np.array([f[1] for f in frames])
    assert np.abs(image[..., 1]).max() >= 1
    frame_v = np.broadcast_to(velocity, wrapped.shape).copy()
    frame_v[..., 0] -= image[..., 1] * rate * edges[1]
    traj = Trajectory(position=wrapped, velocity=frame_v, time=time, image=image,
                      box=Box(edges=tuple(edges), boundary="lees-edwards", shear_rate=rate),
                      observables={"lees_edwards_offset": offset})
    v = traj.backward_difference_velocity()
    assert np.isnan(v[0]).all()
    np.testing.assert_allclose(v[1:], frame_v[1:], atol=1e-12)
    v2 = traj.backward_difference_velocity(stride=2, start=1)
    np.testing.assert_allclose(v2[1:], frame_v[3::2], atol=1e-12)
