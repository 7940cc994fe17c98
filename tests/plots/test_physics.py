"""plot_learned_physics: curves obey the model's structure over the data range; files."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coarse.synthetic import soft_sphere_dataset  # noqa: E402

from ddpd.model.api import load_model  # noqa: E402
from ddpd.plots.physics import (  # noqa: E402
    learned_physics_curves,
    plot_learned_physics,
    sample_state_range,
)
from ddpd.train import train  # noqa: E402

MODEL = {"width": 8, "depth": 1, "teacher_features": 4, "dtype": "float64"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("physics")
    ds = soft_sphere_dataset(d / "ds.h5", n=25, frames=12)
    train(ds, {"epochs": 2, "warmup_epochs": 1, "model": MODEL}, d / "m", device="cpu")
    train(ds, {"kind": "isothermal", "epochs": 1, "model": MODEL}, d / "iso", device="cpu")
    train(ds, {"kind": "gnn", "epochs": 1, "model": {"width": 4, "depth": 1}}, d / "gnn",
          device="cpu")
    return ds, d


def test_curves_follow_the_structure(trained):
    ds, d = trained
    model = load_model(d / "m")
    state = sample_state_range(model, ds, frames_per_split=4)
    assert len(state["S"]) == len(state["V"]) == 3 * 4 * 25
    c = learned_physics_curves(model, state, n_points=50)
    assert c["w"][-1] == pytest.approx(0.0, abs=1e-12) and (c["w"][:-1] > 0).all()
    assert c["S"][0] <= np.percentile(state["S"], 2) and c["S"][-1] >= np.percentile(
        state["S"], 98)
    assert (np.diff(c["U"], axis=1) > 0).all()  # U increasing in S
    assert (c["T"] > 0).all() and (np.diff(c["T"], axis=1) >= -1e-12).all()  # convex in S
    assert (c["P"] >= 0).all()
    for key in ("A", "B", "C"):
        assert c[key].shape == (3, 50)
        assert (c[key][:, :-1] > 0).all() and np.allclose(c[key][:, -1], 0.0)


def test_writes_png_and_pdf(trained, tmp_path):
    ds, d = trained
    for name in ("m", "iso"):
        paths = plot_learned_physics(d / name, ds, tmp_path / f"physics_{name}")
        assert [p.name for p in paths] == [f"physics_{name}.png", f"physics_{name}.pdf"]
        assert all(p.stat().st_size > 1000 for p in paths)


def test_rejects_models_without_thermodynamics(trained, tmp_path):
    ds, d = trained
    with pytest.raises(ValueError, match="GNNModel"):
        plot_learned_physics(d / "gnn", ds, tmp_path / "x")
    assert not (tmp_path / "x.png").exists()
