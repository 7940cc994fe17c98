"""Tables of the learned functions, the numpy drift, and the LAMMPS rollout entry point."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from coarse.synthetic import soft_sphere_dataset
from conftest import random_model, random_state

from ddpd.io import read_trajectory, write_trajectory
from ddpd.lammps.export import Tables, export_tables, table_rates
from ddpd.lammps.external import TableBackend, lammps_rollout
from ddpd.model.api import load_model
from ddpd.space import neighbour_pairs
from ddpd.train import train

TRAIN = {"epochs": 1, "batch_frames": 4, "model": {"width": 8, "depth": 1,
                                                   "teacher_features": 4, "dtype": "float64"}}
SMALL = {"n_kernel": 401, "n_entropy": 61, "n_volume": 61, "n_distance": 41,
         "n_temperature": 61, "n_check": 2000}


class _Exact:
    """Tables-like object that evaluates the network: isolates table_rates' formulas."""

    def __init__(self, model):
        self.model = model
        self.cutoff, self.mass = model.cutoff, float(model.mass)
        self.k_B = float(model.k_B.detach())
        self.w_self = float(model.self_weight(torch.zeros((), dtype=torch.float64)).detach())

    def core(self, dist):
        if not self.model.has_core:
            return np.zeros_like(dist), np.zeros_like(dist)
        psi, slope = self.model.core_pair_energy(torch.from_numpy(dist))
        return psi.numpy(), slope.numpy()

    def kernel(self, s):
        w, dw = self.model.kernel_and_slope(torch.from_numpy(s))
        return w.detach().numpy(), dw.detach().numpy()

    def thermo(self, S, V):
        out = self.model.thermo(torch.from_numpy(S), torch.from_numpy(V))
        return np.stack([x.detach().numpy() for x in out], axis=1)

    def amplitudes(self, s, T):
        s_t, T_t = torch.from_numpy(s), torch.from_numpy(T)
        f, df = torch.func.jvp(lambda t: self.model.amplitudes(s_t, t), (T_t,),
                               (torch.ones_like(T_t),))
        return torch.cat([f, df], 1).detach().numpy()


def _reference(model, box, q, v, S):
    pairs = neighbour_pairs(torch.from_numpy(q), box, model.cutoff)
    v_t = torch.from_numpy(v)
    terms = model.evaluate(v_t, torch.from_numpy(S), pairs)
    return pairs, terms, model.drift(v_t, terms, pairs).detach().numpy()


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("core", [False, True], ids=["plain", "core"])
def test_numpy_drift_equals_the_torch_model(dim, core):
    model = random_model(dim, seed=2)
    if core:  # the pair core prior (train.model.core_repulsion)
        model.core_repulsion, model.core_radius = 5.0, 1.0
    box, q, v, S = random_state(dim, n=40, seed=5)
    pairs, terms, drift = _reference(model, box, q, v, S)
    rate, U, pt, F, V, core_energy = table_rates(_Exact(model), v, S, pairs.i.numpy(),
                                                 pairs.j.numpy(), pairs.r.numpy())
    assert core_energy.sum() == pytest.approx(float(model.core_energy(pairs)), rel=1e-12,
                                              abs=1e-300)
    assert (core_energy.sum() > 0.1) == core
    scale = np.abs(drift).max()
    assert np.abs(rate - drift).max() < 1e-12 * scale
    np.testing.assert_allclose(U, terms.U.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(pt.A, terms.A.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(pt.C, terms.C.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(F, terms.F.detach().numpy(), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(V, terms.V.detach().numpy(), rtol=1e-13)
    # the pair rates add up to the particle rates
    pair_drift = (terms.drift_M + terms.drift_div).detach().numpy()
    np.testing.assert_allclose(pt.rate_v, pair_drift[:, :dim], rtol=1e-11, atol=1e-12 * scale)
    np.testing.assert_allclose(pt.rate_Si, pair_drift[:, 2 * dim], rtol=1e-11,
                               atol=1e-12 * scale)
    np.testing.assert_allclose(pt.rate_Sj, pair_drift[:, 2 * dim + 1], rtol=1e-11,
                               atol=1e-12 * scale)    # momentum: the pair drift sums to zero
    assert np.abs(rate[:, :dim].sum(0)).max() < 1e-12 * scale * len(q)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("lammps_model")
    ds = soft_sphere_dataset(d / "dataset.h5", n=30, frames=12, every=5, thermostat="dpd")
    train(ds, TRAIN, d / "model", device="cpu")
    torch.set_num_threads(1)
    return ds, d / "model"


def test_tables_interpolate_the_network(trained, tmp_path):
    ds, model_dir = trained
    out = tmp_path / "tables.npz"
    errors = export_tables(model_dir, out, SMALL, dataset=ds)
    tables = Tables(out)
    assert tables.errors == json.loads(json.dumps(errors))
    for table in errors.values():
        for column, err in table.items():
            assert err["max_rel"] < 1e-2, (column, err)
    # the finer grid halves the grid spacing: linear interpolation error drops ~4x
    fine = export_tables(model_dir, tmp_path / "fine.npz",
                         {**SMALL, "n_kernel": 801, "n_entropy": 121, "n_volume": 121,
                          "entropy_range": list(tables.entropy_range),
                          "volume_range": list(tables.volume_range)})
    assert fine["thermo"]["U"]["max_abs"] < 0.5 * errors["thermo"]["U"]["max_abs"]
    assert fine["kernel"]["w"]["max_abs"] < 0.5 * errors["kernel"]["w"]["max_abs"]

    # the table drift is close to the network's on a data frame
    model = load_model(model_dir).double()
    traj = read_trajectory(ds.parent / "dataset_run2.h5")
    q, v = traj.position[0], traj.velocity[0]
    with torch.no_grad():
        pairs = neighbour_pairs(torch.from_numpy(q), traj.box, model.cutoff)
        S = model.entropy(torch.from_numpy(v), pairs).numpy()
    _, _, drift = _reference(model, traj.box, q, v, S)
    rate, *_ = table_rates(tables, v, S, pairs.i.numpy(), pairs.j.numpy(), pairs.r.numpy())
    assert tables.out_of_range == 0
    assert np.abs(rate - drift).max() < 1e-2 * np.abs(drift).max()


def test_entropy_at_inverts_the_internal_energy_table(trained, tmp_path):
    _, model_dir = trained
    out = tmp_path / "tables.npz"
    export_tables(model_dir, out, {**SMALL, "entropy_range": [-3.0, 3.0],
                                   "volume_range": [0.1, 2.0]})
    tables = Tables(out)
    rng = np.random.default_rng(0)
    S = rng.uniform(-2.9, 2.9, 500)
    V = rng.uniform(0.15, 1.9, 500)
    U = tables.thermo(S, V)[:, 0]
    np.testing.assert_allclose(tables.entropy_at(U, V), S, rtol=0, atol=1e-10)
    assert tables.out_of_range == 0
    # beyond the S range the edge cell's line extrapolates (and the look-up is counted)
    far = np.array([-3.5, 3.5])
    U_edge = tables.thermo(np.array([-3.0, 3.0 - 6.0 / 60]), np.full(2, 1.0))[:, 0]
    U_in = tables.thermo(np.array([-3.0 + 6.0 / 60, 3.0]), np.full(2, 1.0))[:, 0]
    slope = (U_in - U_edge) / (6.0 / 60)
    U_far = np.where(far < 0, U_edge[0] + slope[0] * (far + 3.0), U_in[1] + slope[1] * (far - 3.0))
    np.testing.assert_allclose(tables.entropy_at(U_far, np.full(2, 1.0)), far, atol=1e-10)
    assert tables.out_of_range == 2
    # a table with U decreasing in S somewhere (T < 0) is refused, naming the file
    with np.load(out) as f:
        arrays = dict(f)
    arrays["thermo"][5, 3, 0] = arrays["thermo"][7, 3, 0]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=rf"{bad}: the tabulated U\(S, V\) is not strictly"):
        Tables(bad)


def test_table_internal_energy_is_the_step_s_and_not_counted_twice(trained, tmp_path):
    ds, model_dir = trained
    export_tables(model_dir, tmp_path / "t.npz", {**SMALL, "entropy_range": [-0.5, 0.5],
                                                  "volume_range": [0.1, 2.0]})
    backend = TableBackend(Tables(tmp_path / "t.npz"))
    traj = read_trajectory(ds.parent / "dataset_run2.h5")
    q, v = traj.position[0], traj.velocity[0]
    S = np.linspace(-1.0, 1.0, len(q))  # partly outside the tabulated S range
    ids = np.arange(1, len(q) + 1)
    U = backend.potential_energy(q, S, ids, traj.box)
    assert backend.tables.out_of_range == 0
    rates = backend.rates(q, v, S, ids, traj.box)
    assert backend.tables.out_of_range > 0
    np.testing.assert_allclose(U, rates.U + rates.core, rtol=1e-13)


def test_export_ranges_cover_a_rollout_of_the_model(trained, tmp_path):
    ds, model_dir = trained
    export_tables(model_dir, tmp_path / "plain.npz", {**SMALL, "margin": 0.0}, dataset=ds)
    plain = Tables(tmp_path / "plain.npz")
    run = read_trajectory(ds.parent / "dataset_run2.h5")
    # a rollout whose entropies spread far beyond the teacher's labels of the data
    entropy = np.linspace(-50.0, 30.0, run.position.shape[1])[None].repeat(len(run.time), 0)
    rollout = tmp_path / "rollout.h5"
    write_trajectory(rollout, replace(run, observables={"entropy": entropy}))
    export_tables(model_dir, tmp_path / "wide.npz", {**SMALL, "margin": 0.0}, dataset=ds,
                  rollout=rollout)
    wide = Tables(tmp_path / "wide.npz")
    assert wide.entropy_range == pytest.approx((-50.0, 30.0))
    assert plain.entropy_range[0] > -50.0 and plain.entropy_range[1] < 30.0
    assert wide.volume_range[0] <= plain.volume_range[0]
    # a trajectory without entropies is refused, naming it
    write_trajectory(tmp_path / "no_entropy.h5", replace(run, observables={}))
    with pytest.raises(ValueError, match=r"no_entropy.h5: not a rollout of a metriplectic"):
        export_tables(model_dir, tmp_path / "t.npz", SMALL, dataset=ds,
                      rollout=tmp_path / "no_entropy.h5")
    assert not (tmp_path / "t.npz").exists()


def test_export_needs_ranges_or_a_dataset(trained, tmp_path):
    _, model_dir = trained
    with pytest.raises(ValueError, match="dataset"):
        export_tables(model_dir, tmp_path / "t.npz", {})
    with pytest.raises(ValueError, match="n_grid"):
        export_tables(model_dir, tmp_path / "t.npz", {"n_grid": 3})
    with pytest.raises(ValueError, match="volume_range"):
        export_tables(model_dir, tmp_path / "t.npz", {"volume_range": [2.0, 1.0]})
    with pytest.raises(FileNotFoundError):
        Tables(tmp_path / "missing.npz")
    assert not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("backend", ["tables", "torch"])
def test_lammps_rollout_of_a_replicated_box(trained, tmp_path, backend):
    ds, model_dir = trained
    tables = tmp_path / "tables.npz"
    export_tables(model_dir, tables, SMALL, dataset=ds)
    out = tmp_path / "rollout.h5"
    info = lammps_rollout(model_dir, ds, {"backend": backend, "replicate": [2, 2],
                                          "n_steps": 20, "save_every": 5}, out, tables=tables)
    traj = read_trajectory(out)
    assert info["n_particles"] == 120 and traj.position.shape == (5, 120, 2)
    np.testing.assert_array_equal(traj.step, [0, 5, 10, 15, 20])
    edge = read_trajectory(ds.parent / "dataset_run2.h5").box.edges[0]
    assert traj.box.edges[0] == pytest.approx(2 * edge)
    p = traj.observables["total_momentum"]
    assert np.abs(p - p[0]).max() < 1e-10
    assert np.isfinite(traj.observables["total_energy"]).all()
    # positions stay wrapped and unwrapped motion is continuous
    assert (traj.position >= 0).all() and (traj.position < traj.box.edges[0]).all()
    assert np.abs(np.diff(traj.unwrapped_position(), axis=0)).max() < 0.25 * traj.box.edges[0]
    with pytest.raises(ValueError, match="lammps_rollout.replicate"):
        lammps_rollout(model_dir, ds, {"replicate": [0, 1]}, out, tables=tables)


def test_tables_backend_follows_the_network_backend(trained, tmp_path):
    ds, model_dir = trained
    tables = tmp_path / "tables.npz"
    # this one-epoch model's S spreads far beyond its teacher's range: a wide S table
    export_tables(model_dir, tables, {**SMALL, "n_entropy": 401, "n_volume": 201,
                                      "entropy_range": [-4.0, 4.0]}, dataset=ds)
    frames = {}
    for backend in ("tables", "torch"):
        info = lammps_rollout(model_dir, ds, {"backend": backend, "n_steps": 4,
                                              "save_every": 4, "seed": 3},
                              tmp_path / f"{backend}.h5", tables=tables)
        assert info["out_of_range"] == 0
        frames[backend] = read_trajectory(tmp_path / f"{backend}.h5")
    v_tab, v_net = frames["tables"].velocity[-1], frames["torch"].velocity[-1]
    assert np.abs(v_tab - v_net).max() < 1e-3 * np.abs(v_net).max()
    assert np.abs(v_net - frames["torch"].velocity[0]).max() > 1e-2  # it moved
    np.testing.assert_allclose(frames["tables"].observables["entropy"][-1],
                               frames["torch"].observables["entropy"][-1], rtol=1e-3, atol=1e-3)
