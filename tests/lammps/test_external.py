"""fix external driver: one LAMMPS step = one PyTorch Euler step; momentum; pair noise."""

import numpy as np
import pytest
import torch
from conftest import random_model, random_state
from scipy import stats

import ddpd.model.integrate as integrate
from ddpd.lammps.external import (
    ModelFix,
    TorchBackend,
    VerletList,
    euler_update,
    pair_noise_numbers,
    pair_normals,
    philox4x64,
)
from ddpd.model.noise import PairNoise, random_pair_force
from ddpd.space import Box, neighbour_pairs

SEED = 7


def test_philox_matches_numpy_bit_generator():
    key = (0x0123456789ABCDEF, 42)
    counters = np.array([[5, 7, 9, 11], [2**64 - 1, 0, 3, 2**63]], dtype=np.uint64)
    ours = philox4x64(counters, key)
    for row, counter in enumerate(counters):
        # numpy increments the counter before the first block
        start = counter.copy()
        start[0] -= np.uint64(1)
        bg = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=start)
        np.testing.assert_array_equal(bg.random_raw(4), ours[row])


def test_pair_noise_is_symmetric_and_standard_normal():
    rng = np.random.default_rng(0)
    a = rng.integers(1, 10**6, 20000)
    b = a + rng.integers(1, 1000, 20000)
    xi, zeta = pair_noise_numbers(11, a, b, SEED, 3)
    xi_swap, zeta_swap = pair_noise_numbers(11, b, a, SEED, 3)
    np.testing.assert_array_equal(xi, xi_swap)
    np.testing.assert_array_equal(zeta, -zeta_swap)  # lower ID always gets +C zeta
    z = pair_normals(11, a, b, SEED, 10)
    for k in range(10):
        assert stats.kstest(z[:, k], "norm").pvalue > 1e-3
    corr = np.corrcoef(z.T)
    assert np.abs(corr - np.eye(10)).max() < 0.04  # 5 sigma at 20000 samples: 0.035
    other_step = pair_normals(12, a, b, SEED, 10)
    other_seed = pair_normals(11, a, b, SEED + 1, 10)
    for other in (other_step, other_seed):
        assert abs(np.corrcoef(z[:, 0], other[:, 0])[0, 1]) < 0.04


def _patched_noise(monkeypatch, step_ref, pairs_ref):
    """Make euler_step draw its pair noise from the counter-based generator."""

    def noise(A, B, C, e, v_ij, T_i, T_j, mass, k_B, dt, generator):
        pairs = pairs_ref[0]
        ids_i, ids_j = pairs.i.numpy() + 1, pairs.j.numpy() + 1
        xi, zeta = pair_noise_numbers(step_ref[0], ids_i, ids_j, SEED, e.shape[1])
        xi, zeta = torch.from_numpy(xi), torch.from_numpy(zeta)
        scale = torch.sqrt(2.0 * k_B * dt)
        f = random_pair_force(A, B, e, xi)
        work = -(f * v_ij).sum(-1) / 2
        heat_i, heat_j = scale * (work + C * zeta), scale * (work - C * zeta)
        return PairNoise(scale * f / mass, heat_i / T_i, heat_j / T_j, heat_i, heat_j)

    monkeypatch.setattr(integrate, "pair_noise", noise)


def _min_image(a, b, box):
    d = a - b
    edges = np.asarray(box.edges)
    return d - edges * np.round(d / edges)


@pytest.mark.parametrize("scheme", ["explicit", "midpoint"])
@pytest.mark.parametrize("dim", [2, 3])
def test_lammps_steps_equal_pytorch_euler_steps(dim, scheme, tmp_path, monkeypatch):
    model = random_model(dim)
    model.friction_scheme = scheme
    box, q, v, S = random_state(dim, n=40 if dim == 3 else 30)
    dt, n_steps = 0.05, 4
    fix = ModelFix(TorchBackend(model, skin=0.4), box, q, v, S, dt, SEED, tmp_path / "l.log",
                   record_every=1, heat="linear", project=False)
    try:
        fix.run(n_steps)
    finally:
        fix.close()
    assert [f["step"] for f in fix.frames] == list(range(n_steps + 1))

    step_ref, pairs_ref = [0], [None]
    _patched_noise(monkeypatch, step_ref, pairs_ref)
    q0 = integrate.wrap_images(torch.from_numpy(q), torch.from_numpy(v), box)[0]
    state = integrate.State(q0, torch.from_numpy(v), torch.from_numpy(S), 0.0, 0.0)
    for step in range(n_steps + 1):
        frame = fix.frames[step]
        assert np.abs(_min_image(frame["position"], state.q.numpy(), box)).max() < 1e-10
        np.testing.assert_allclose(frame["velocity"], state.v.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(frame["entropy"], state.S.numpy(), rtol=0, atol=1e-10)
        pairs_ref[0] = integrate.neighbour_pairs(state.q, box, model.cutoff)
        state = state._replace(pairs=pairs_ref[0])
        step_ref[0] = step
        state = integrate.euler_step(model, state, box, dt, None)
    # the noise mattered: a deterministic step differs
    det = integrate.euler_step(model, integrate.State(
        torch.from_numpy(q), torch.from_numpy(v), torch.from_numpy(S), 0.0, 0.0), box, dt, None,
        noise=False)
    assert np.abs(det.v.numpy() - fix.frames[1]["velocity"]).max() > 1e-3


@pytest.mark.parametrize("scheme", ["explicit", "midpoint"])
@pytest.mark.parametrize("dim", [2, 3])
def test_exact_heat_returns_the_kinetic_energy_of_friction_and_noise(dim, scheme):
    """heat 'exact': sum_k [U(S'_k, V_k) - U(S_k, V_k)] = -(kinetic energy change by delta)."""
    model = random_model(dim, seed=2)
    model.friction_scheme = scheme
    box, q, v, S = random_state(dim, n=60, side=6.0, seed=1)
    backend = TorchBackend(model)
    ids = np.arange(1, len(q) + 1)
    dt = 0.01
    residual = {}
    for heat in ("exact", "linear"):
        v_new, S_new, r = euler_update(backend, q, v, S, ids, box, dt, 0, SEED, heat=heat)
        delta = v_new - v - r.force / backend.mass * dt
        kinetic = 0.5 * backend.mass * (((v + delta) ** 2).sum() - (v * v).sum())
        with torch.no_grad():
            U_new = model.internal_energy(torch.from_numpy(S_new), torch.from_numpy(r.V))
        internal = float((U_new.numpy() - r.U).sum())
        assert abs(internal) > 1e-2  # the step heats or cools the particles
        residual[heat] = abs(kinetic + internal)
    assert residual["exact"] < 1e-12 * len(q)
    assert residual["linear"] > 1e-4  # the linear update is off by the Ito terms


@pytest.mark.parametrize("core", [False, True], ids=["plain", "core"])
def test_potential_energy_is_the_step_s(tmp_path, core):
    model = random_model(3, seed=3)
    if core:
        model.core_repulsion, model.core_radius = 5.0, 1.0
    box, q, v, S = random_state(3, n=60, seed=4)
    backend = TorchBackend(model)
    ids = np.arange(1, len(q) + 1)
    rates = backend.rates(q, v, S, ids, box)
    np.testing.assert_allclose(backend.potential_energy(q, S, ids, box), rates.U + rates.core,
                               rtol=1e-13)
    assert (rates.core.sum() > 0.1) == core
    from ddpd.space import neighbour_pairs

    pairs = neighbour_pairs(torch.from_numpy(q - np.asarray(box.origin)), box, model.cutoff)
    assert rates.core.sum() == pytest.approx(float(model.core_energy(pairs)), rel=1e-12,
                                             abs=1e-300)


@pytest.mark.parametrize("core", [False, True], ids=["plain", "core"])
def test_projection_conserves_the_total_energy_over_20_steps(tmp_path, core):
    model = random_model(3, seed=3)
    model.friction_scheme = "midpoint"
    if core:  # the pair core prior is part of the energy the projection restores
        model.core_repulsion, model.core_radius = 5.0, 1.0
    box, q, v, S = random_state(3, n=60, seed=4)
    energy = {}
    for heat, project in (("exact", True), ("linear", False)):
        fix = ModelFix(TorchBackend(model), box, q, v, S, 0.01, SEED, tmp_path / f"{heat}.log",
                       record_every=1, heat=heat, project=project)
        try:
            fix.run(20)
        finally:
            fix.close()
        energy[heat] = np.array([f["total_energy"] for f in fix.frames])
        momentum = np.array([f["total_momentum"] for f in fix.frames])
        assert np.abs(momentum - momentum[0]).max() < 1e-11 * q.size
    scale = np.abs(energy["exact"][0])
    assert np.abs(energy["exact"] - energy["exact"][0]).max() < 1e-12 * scale
    assert np.abs(energy["linear"] - energy["linear"][0]).max() > 1e-4 * scale


def test_momentum_is_conserved_over_20_steps(tmp_path):
    model = random_model(3, seed=3)
    box, q, v, S = random_state(3, n=60, seed=4)
    fix = ModelFix(TorchBackend(model), box, q, v, S, 0.01, SEED, tmp_path / "log.lammps",
                   record_every=5)
    try:
        fix.run(20)
    finally:
        fix.close()
    momentum = np.array([f["total_momentum"] for f in fix.frames])
    assert len(momentum) == 5
    assert np.abs(momentum - momentum[0]).max() < 1e-11 * np.abs(q).size
    # it moved: velocities changed by the dynamics
    assert np.abs(fix.frames[-1]["velocity"] - fix.frames[0]["velocity"]).max() > 1e-2


class _Broken:
    dim, cutoff, mass, k_B = 2, 1.0, 1.0, 1.0

    def rates(self, q, v, S, ids, box):
        raise KeyError("broken backend")

    def potential_energy(self, q, S, ids, box):
        raise KeyError("broken backend")


def test_callback_errors_are_raised_after_the_run(tmp_path):
    box, q, v, S = random_state(2, n=10)
    fix = ModelFix(_Broken(), box, q, v, S, 0.01, 0, tmp_path / "log.lammps")
    try:
        with pytest.raises(KeyError, match="broken backend"):
            fix.run(2)
    finally:
        fix.close()


def test_rejects_non_periodic_boxes_and_bad_shapes(tmp_path):
    _, q, v, S = random_state(2, n=10)
    with pytest.raises(ValueError, match="periodic"):
        ModelFix(_Broken(), Box(edges=(6.0, 6.0), boundary="open"), q, v, S, 0.01, 0,
                 tmp_path / "log.lammps")
    with pytest.raises(ValueError, match="shapes"):
        ModelFix(_Broken(), Box(edges=(6.0, 6.0)), q, v, S[:5], 0.01, 0, tmp_path / "l")


def test_verlet_list_finds_exactly_the_cell_list_pairs():
    box, q, v, _ = random_state(3, n=200, side=10.0, seed=9)
    rng = np.random.default_rng(0)
    ids = rng.permutation(200) + 1  # local order differs from ID order
    verlet = VerletList(cutoff=2.0, skin=0.6)
    for step in range(12):
        order = rng.permutation(200) if step % 4 == 3 else np.arange(200)  # re-sorting
        ids, q, v = ids[order], q[order], v[order]
        i, j, r = verlet.pairs(q, ids, box)
        ref = neighbour_pairs(torch.from_numpy(q), box, 2.0)
        ours = {(min(a, b), max(a, b)) for a, b in zip(ids[i], ids[j], strict=True)}
        theirs = {(min(a, b), max(a, b)) for a, b in
                  zip(ids[ref.i.numpy()], ids[ref.j.numpy()], strict=True)}
        assert ours == theirs
        np.testing.assert_allclose(np.sort(np.abs(r).sum(1)),
                                   np.sort(np.abs(ref.r.numpy()).sum(1)), atol=1e-12)
        q = q + 0.05 * v  # wrapped or not: minimum image handles both
    assert 1 < verlet.builds < 12
