"""The compiled LAMMPS fix ddpd/tables: the step of euler_update, MPI ranks, bad input."""

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from coarse.synthetic import soft_sphere_dataset
from conftest import random_model, random_state

from ddpd.io import read_trajectory
from ddpd.lammps import plugin as P
from ddpd.lammps.export import Tables, export_tables
from ddpd.lammps.external import TableBackend, euler_update, lammps_rollout, project_energy
from ddpd.train import train

pytestmark = pytest.mark.skipif(P.compiler() is None,
                                reason="no C++ compiler (g++ or $CXX) to build the plugin")
MPIEXEC = Path(sys.prefix) / "bin" / "mpiexec"
GRIDS = {"n_kernel": 401, "n_entropy": 61, "n_volume": 61, "n_distance": 41,
         "n_temperature": 61, "n_check": 100, "entropy_range": [-4.0, 4.0],
         "volume_range": [0.05, 2.0]}
SEED = 11
DT = 0.01
CORE = {"core_repulsion": 5.0, "core_radius": 1.0}


@pytest.fixture(scope="module")
def plugin_so(tmp_path_factory) -> Path:
    return P.build_plugin(tmp_path_factory.mktemp("plugin_cache"))


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Tables of random models, by (dim, friction scheme): (Tables, binary file)."""
    folder = tmp_path_factory.mktemp("tables")
    out = {}
    for dim in (2, 3):
        # "core": midpoint friction with the pair core prior (train.model.core_repulsion)
        for scheme in ("explicit", "midpoint", "core"):
            model = random_model(dim, seed=2)
            model_dir = folder / f"model{dim}{scheme}"
            model_dir.mkdir()
            torch.save(model.state_dict(), model_dir / "model.pt")
            hparams = dict(model.hparams, friction_scheme=scheme)
            if scheme == "core":
                hparams.update(friction_scheme="midpoint", **CORE)
            (model_dir / "hparams.json").write_text(
                json.dumps({"kind": "metriplectic", "hparams": hparams}))
            npz = folder / f"t{dim}{scheme}.npz"
            export_tables(model_dir, npz, GRIDS)
            table = Tables(npz)
            assert table.friction_scheme == hparams["friction_scheme"]
            assert (table.core_radius > 0) == (scheme == "core")
            out[dim, scheme] = table, P.write_plugin_tables(table, folder / f"t{dim}{scheme}.bin")
    return out


def _run(folder, plugin_so, table_bin, table, state, n_steps, dump_every, ranks=1,
         newton=True, **options):
    box, q, v, S = state
    deck = P.write_plugin_input(folder, plugin_so, table_bin, box, q, v, S, table.mass,
                                table.cutoff, DT, SEED, n_steps, dump_every, newton=newton,
                                **options)
    P.run_plugin(deck, ranks, timeout=300)
    return P.read_plugin_dump(Path(folder) / "dump.txt", q.shape[1])


def test_build_is_cached_and_compiler_errors_are_reported(plugin_so, tmp_path, monkeypatch):
    assert plugin_so.is_file() and plugin_so.stat().st_size > 0
    stamp = plugin_so.stat().st_mtime_ns
    assert P.build_plugin(plugin_so.parents[1]) == plugin_so
    assert plugin_so.stat().st_mtime_ns == stamp  # not rebuilt
    broken = tmp_path / "src"
    shutil.copytree(P.SOURCE_DIR, broken)
    (broken / "ddpdplugin.cpp").write_text("this is not C++;\n")
    monkeypatch.setattr(P, "SOURCE_DIR", broken)
    with pytest.raises(P.PluginBuildError, match=r"(?s)command: .*-shared.*stderr:.*error"):
        P.build_plugin(tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.so"))  # nothing half-written left


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", ["explicit", "midpoint", "core"])
@pytest.mark.parametrize("heat", ["exact", "linear"])
def test_one_step_equals_euler_update(plugin_so, tables, tmp_path, dim, scheme, heat):
    table, table_bin = tables[dim, scheme]
    box, q, v, S = random_state(dim, n=60, side=6.0, seed=1)
    frame = _run(tmp_path, plugin_so, table_bin, table, (box, q, v, S), 0, 1, heat=heat)[0]
    ids = np.arange(1, len(q) + 1)
    v_ref, S_ref, rates = euler_update(TableBackend(table), q, v, S, ids, box, DT, 0, SEED,
                                       heat=heat)
    np.testing.assert_array_equal(frame["id"], ids)
    np.testing.assert_array_equal(frame["v_n"], v)  # the record holds the state of step n
    np.testing.assert_array_equal(frame["S_n"], S)
    # the record's energy per atom: U and half of each of its pairs' core prior
    np.testing.assert_allclose(frame["U_n"], rates.U + rates.core, rtol=1e-12)
    assert (np.abs(rates.core).max() > 0.1) == (scheme == "core")
    dv, dS = np.abs(v_ref - v).max(), np.abs(S_ref - S).max()
    assert dv > 1e-3 and dS > 1e-3  # the step does something
    assert np.abs(frame["v_next"] - v_ref).max() < 1e-10 * dv
    assert np.abs(frame["S_next"] - S_ref).max() < 1e-10 * dS
    # the friction scheme matters at this state, so the match above tests the right one
    other = TableBackend(table)
    other.friction_scheme = "explicit" if table.friction_scheme == "midpoint" else "midpoint"
    v_other, _, _ = euler_update(other, q, v, S, ids, box, DT, 0, SEED, heat=heat)
    assert np.abs(v_other - v_ref).max() > 1e4 * np.abs(frame["v_next"] - v_ref).max()
    # and so does the entropy update
    _, S_other, _ = euler_update(TableBackend(table), q, v, S, ids, box, DT, 0, SEED,
                                 heat="linear" if heat == "exact" else "exact")
    assert np.abs(S_other - S_ref).max() > 1e4 * np.abs(frame["S_next"] - S_ref).max()
    if scheme == "core":  # and so does the core prior's force
        plain = copy.copy(table)
        plain.core_energy_scale = 0.0
        v_plain, _, _ = euler_update(TableBackend(plain), q, v, S, ids, box, DT, 0, SEED,
                                     heat=heat)
        assert np.abs(v_plain - v_ref).max() > 1e4 * np.abs(frame["v_next"] - v_ref).max()


def test_run_follows_the_python_steps(plugin_so, tables, tmp_path):
    table, table_bin = tables[3, "midpoint"]
    box, q, v, S = random_state(3, n=80, side=7.0, seed=3)
    frames = _run(tmp_path, plugin_so, table_bin, table, (box, q, v, S), 6, 1)
    backend = TableBackend(table)
    ids = np.arange(1, len(q) + 1)
    edges = np.asarray(box.edges)
    energy = None
    for step, frame in enumerate(frames):
        assert frame["step"] == step
        U = backend.rates(q, v, S, ids, box).U
        v, energy = project_energy(v, U, table.mass, energy)
        unwrapped = frame["x"] + frame["image"] * edges
        np.testing.assert_allclose(unwrapped, q, rtol=0, atol=1e-10)
        np.testing.assert_allclose(frame["v_n"], v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(frame["S_n"], S, rtol=0, atol=1e-10)
        v, S, _ = euler_update(backend, q, v, S, ids, box, DT, step, SEED)
        q = q + v * DT


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", ["midpoint", "core"])
def test_exact_heat_and_projection_conserve_the_total_energy(plugin_so, tables, tmp_path, dim,
                                                            scheme):
    """100 steps: K + sum U (+ the core prior) constant to round-off with the defaults (heat
    exact, project yes); heat exact alone leaves the conservative part's O(dt) error, linear
    heat adds the Ito terms' (on these random models either can dominate)."""
    table, table_bin = tables[dim, scheme]
    state = random_state(dim, n=200 if dim == 3 else 100, side=10.0, seed=4)
    drift = {}
    for name, options in (("default", {}), ("exact", {"project": False}),
                          ("linear", {"heat": "linear", "project": False})):
        frames = _run(tmp_path / name, plugin_so, table_bin, table, state, 100, 10, **options)
        energy = np.array([0.5 * table.mass * (fr["v_n"] ** 2).sum() + fr["U_n"].sum()
                           for fr in frames])
        momentum = np.array([fr["v_n"].sum(0) for fr in frames])
        assert np.abs(momentum - momentum[0]).max() < 1e-11 * len(state[1])
        drift[name] = np.abs(energy - energy[0]).max() / np.abs(energy[0])
    assert drift["default"] < 1e-12
    assert drift["exact"] > 1e-5 and drift["linear"] > 1e-5


@pytest.mark.skipif(not MPIEXEC.is_file(), reason="MPICH's mpiexec not installed")
@pytest.mark.parametrize(("dim", "scheme"), [(3, "explicit"), (3, "midpoint"), (2, "midpoint"),
                                           (3, "core")])
def test_momentum_and_trajectory_on_one_and_two_ranks(plugin_so, tables, tmp_path, dim,
                                                      scheme):
    table, table_bin = tables[dim, scheme]
    state = random_state(dim, n=200 if dim == 3 else 100, side=10.0, seed=4)
    runs = {}
    for ranks, newton in ((1, True), (2, True), (2, False)):
        runs[ranks, newton] = _run(tmp_path / f"r{ranks}{newton}", plugin_so, table_bin, table,
                                   state, 100, 10, ranks=ranks, newton=newton)
    one = runs[1, True]
    assert [fr["step"] for fr in one] == list(range(0, 101, 10))
    v0 = one[0]["v_n"]
    assert np.abs(one[-1]["v_n"] - v0).max() > 0.1  # it moved
    for frames in runs.values():
        momentum = np.array([table.mass * fr["v_n"].sum(0) for fr in frames])
        assert np.abs(momentum - momentum[0]).max() < 1e-12 * len(v0) * np.abs(v0).max()
    edges = np.asarray(state[0].edges)
    for key in ((2, True), (2, False)):
        for a, b in zip(one, runs[key], strict=True):
            np.testing.assert_allclose(b["x"] + b["image"][:, :dim] * edges,
                                       a["x"] + a["image"][:, :dim] * edges, rtol=0, atol=1e-9)
            np.testing.assert_allclose(b["v_n"], a["v_n"], rtol=0, atol=1e-9)
            np.testing.assert_allclose(b["S_n"], a["S_n"], rtol=0, atol=1e-9)


def test_bad_input_names_the_file(plugin_so, tables, tmp_path):
    table, table_bin = tables[2, "explicit"]
    state3 = random_state(3, n=20, side=6.0, seed=1)
    missing = tmp_path / "no_such_tables.bin"
    with pytest.raises(RuntimeError, match=f"cannot open tables file {missing}"):
        _run(tmp_path / "missing", plugin_so, missing, table, state3, 1, 1)
    with pytest.raises(RuntimeError, match=rf"{table_bin} is for a 2-D model but the "
                                           r"simulation is 3-D"):
        _run(tmp_path / "dim", plugin_so, table_bin, table, state3, 1, 1)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a table file")
    with pytest.raises(RuntimeError, match=f"{garbage} is not a ddpd plugin tables file"):
        _run(tmp_path / "garbage", plugin_so, garbage, table, state3, 1, 1)
    assert not (tmp_path / "missing" / "dump.txt").exists()
    deck = P.write_plugin_input(tmp_path / "keyword", plugin_so, table_bin, *state3,
                                table.mass, table.cutoff, DT, SEED, 1, 1)
    deck.write_text(deck.read_text().replace(" heat exact", " heat hot"))
    with pytest.raises(RuntimeError, match="heat must be exact or linear, got hot"):
        P.run_plugin(deck)
    with pytest.raises(ValueError, match="heat must be 'exact' or 'linear', got 'hot'"):
        P.write_plugin_input(tmp_path / "bad_heat", plugin_so, table_bin, *state3,
                             table.mass, table.cutoff, DT, SEED, 1, 1, heat="hot")
    assert not (tmp_path / "bad_heat").exists()  # nothing written


def _trained_model(folder: Path, frames: int, epochs: int, grids: dict) -> tuple[Path, Path]:
    """A small float64 model trained on DPD soft spheres in ``folder``/model and its tables;
    returns (dataset, tables)."""
    ds = soft_sphere_dataset(folder / "dataset.h5", n=30, frames=frames, every=5,
                             thermostat="dpd")
    train(ds, {"epochs": epochs, "batch_frames": 4, "model": {"width": 8, "depth": 1,
                                                              "teacher_features": 4,
                                                              "dtype": "float64"}},
          folder / "model", device="cpu")
    torch.set_num_threads(1)
    tables = folder / "tables.npz"
    export_tables(folder / "model", tables, grids, dataset=ds)
    return ds, tables


def test_plugin_rollout_writes_what_lammps_rollout_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPD_PLUGIN_CACHE", str(tmp_path / "cache"))
    ds, tables = _trained_model(tmp_path, frames=12, epochs=1,
                                grids={**GRIDS, "entropy_range": [-8.0, 8.0]})
    params = {"replicate": [2, 2], "n_steps": 12, "save_every": 4, "seed": 3}
    ref = lammps_rollout(tmp_path / "model", ds, {**params, "backend": "tables"},
                         tmp_path / "ref.h5", tables=tables)
    # the workflow's entry dispatches backend 'plugin' to plugin_rollout; relative paths
    # (as Snakemake passes them) are relative to the caller's directory, not LAMMPS's
    monkeypatch.chdir(tmp_path)
    info = lammps_rollout(Path("model"), Path("dataset.h5"), {**params, "backend": "plugin"},
                          Path("plugin.h5"), tables=Path("tables.npz"),
                          lammps_log=Path("logs") / "plugin.lammps.log")
    assert (tmp_path / "logs" / "plugin.lammps.log").is_file()
    assert info["n_particles"] == ref["n_particles"] == 120
    assert info["particle_steps_per_s"] > 0
    outputs = [tmp_path / "plugin.h5"]
    if MPIEXEC.is_file():
        P.plugin_rollout(tmp_path / "model", ds, {**params, "backend": "plugin", "ranks": 2},
                         tmp_path / "plugin2.h5", tables=tables)
        outputs.append(tmp_path / "plugin2.h5")
    a = read_trajectory(tmp_path / "ref.h5")
    for path in outputs:
        b = read_trajectory(path)
        np.testing.assert_array_equal(b.step, [0, 4, 8, 12])
        np.testing.assert_array_equal(b.step, a.step)
        np.testing.assert_array_equal(b.image, a.image)
        assert b.box == a.box
        for x, y in ((b.position, a.position), (b.velocity, a.velocity)):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-9 * np.abs(y).max())
        for key in ("entropy", "total_energy", "total_entropy", "total_momentum"):
            y = a.observables[key]
            np.testing.assert_allclose(b.observables[key], y, rtol=0,
                                       atol=1e-9 * np.abs(y).max())
    with pytest.raises(ValueError, match="lammps_rollout.ranks"):
        P.plugin_rollout(tmp_path / "model", ds, {"backend": "plugin", "ranks": 0},
                         tmp_path / "bad.h5", tables=tables)
    with pytest.raises(ValueError, match="lammps_rollout.ranks"):
        lammps_rollout(tmp_path / "model", ds, {"backend": "tables", "ranks": 2},
                       tmp_path / "bad.h5", tables=tables)
    assert not (tmp_path / "bad.h5").exists()


def _kinetic_temperature(v: np.ndarray, mass: float) -> np.ndarray:
    """m <|v - <v>|^2> / D per frame."""
    peculiar = v - v.mean(1, keepdims=True)
    return mass * (peculiar ** 2).sum(-1).mean(1) / v.shape[-1]


def test_plugin_rollout_statistics_match_the_pytorch_rollout(tmp_path, monkeypatch):
    """Same model and start, independent noise (Philox in LAMMPS, torch's generator in
    PyTorch): the same Markov chain, so the same kinetic temperature and g(r) within the
    sampling error (issue 7)."""
    from ddpd.lammps.external import rollout_start
    from ddpd.model import integrate
    from ddpd.stats.rdf import radial_distribution_function

    monkeypatch.setenv("DDPD_PLUGIN_CACHE", str(tmp_path / "cache"))
    ds, tables = _trained_model(tmp_path, frames=20, epochs=3,
                                grids={**GRIDS, "n_entropy": 801, "entropy_range": [-40.0, 40.0]})
    n_steps, every, replicate = 400, 5, (3, 3)
    info = lammps_rollout(tmp_path / "model", ds, {"backend": "plugin", "replicate":
                                                   list(replicate), "n_steps": n_steps,
                                                   "save_every": every, "seed": 5},
                          tmp_path / "lammps.h5", tables=tables)
    assert info["out_of_range"] == 0
    lammps = read_trajectory(tmp_path / "lammps.h5")

    model, _, _, q, v, S, box, dt = rollout_start(tmp_path / "model", ds, replicate)
    q0, v0, _ = integrate.wrap_images(torch.from_numpy(q), torch.from_numpy(v), box)
    state = integrate.State(q0, v0, torch.from_numpy(S), 0.0, 0.0)
    generator = torch.Generator().manual_seed(5)
    positions, velocities = [], []
    for step in range(n_steps + 1):
        if step % every == 0:
            positions.append(state.q.numpy().copy())
            velocities.append(state.v.numpy().copy())
        state = integrate.euler_step(model, state, box, dt, generator)
    positions, velocities = np.array(positions), np.array(velocities)

    burn = 20  # frames (100 steps) to forget the common start
    T_lammps = _kinetic_temperature(lammps.velocity[burn:], lammps.mass)
    T_torch = _kinetic_temperature(velocities[burn:], lammps.mass)
    blocks = 6  # standard errors from block means (correlated frames)
    error = np.hypot(*(x[: len(x) // blocks * blocks].reshape(blocks, -1).mean(1).std(ddof=1)
                       / np.sqrt(blocks) for x in (T_lammps, T_torch)))
    # measured: 2.311 vs 2.377, standard error of the difference 0.047
    assert abs(T_lammps.mean() - T_torch.mean()) < 4 * error
    r_max = 0.3 * min(box.edges)
    _, g_lammps = radial_distribution_function(lammps.position[burn:], box, r_max, 20)
    _, g_torch = radial_distribution_function(positions[burn:], box, r_max, 20)
    assert np.linalg.norm(g_lammps - g_torch) / np.linalg.norm(g_torch) < 0.1  # measured 0.028
