"""Known-truth benchmark: the analytic truth has the model's structure, its simulation is in
equilibrium at its own temperature, and the comparison is gauge-invariant and sensitive."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from ddpd.io import Trajectory
from ddpd.model import bracket
from ddpd.model.integrate import State, exact_energy_step, internal_energy_at
from ddpd.model.known_truth import (
    KnownTruthParams,
    TruthModel,
    compare_to_truth,
    simulate_known_truth,
    truth_model_of,
)
from ddpd.space import Box

from .conftest import make_state

# box edge (36 / 1)^(1/2) = 6 for 2D, (216 / 1)^(1/3) = 6 for 3D: the states of make_state
PARAMS = {2: KnownTruthParams(dim=2, n_particles=36, cutoff=2.0),
          3: KnownTruthParams(dim=3, n_particles=216, cutoff=2.0)}


def test_truth_is_a_metriplectic_model_with_the_analytic_thermodynamics(dim):
    p = PARAMS[dim]
    model = TruthModel(p)
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=2)
    S = S + 2400.0  # around the equilibrium entropy of the default c_v (T ~ 1)
    terms = model.evaluate(v, S, pairs)
    n = v.shape[0]
    # degeneracy M dE = 0 and dS^T M dS >= 0 (method.md §2)
    M = bracket.assemble_friction_matrix(terms.M.detach(), pairs.i, pairs.j, n)
    dE = torch.cat([(model.mass * v).reshape(-1), terms.T.detach()])
    dS = torch.cat([torch.zeros(n * dim, dtype=v.dtype), torch.ones(n, dtype=v.dtype)])
    assert float((M @ dE).abs().max()) < 1e-12 * float(M.abs().max() * dE.abs().max())
    assert float(dS @ M @ dS) >= 0
    # T = dU/dS = U / c_v > 0, P = -dU/dV = (gamma - 1) U / V > 0
    U = terms.U.detach()
    torch.testing.assert_close(terms.T.detach(), U / p.heat_capacity, rtol=1e-12, atol=0)
    torch.testing.assert_close(terms.P.detach(), (p.gamma - 1) * U / terms.V, rtol=1e-12,
                               atol=0)
    assert bool((terms.T > 0).all()) and bool((terms.P > 0).all())
    # convex in (S, V): the Hessian of U at each state is positive definite
    for k in range(3):
        hess = torch.autograd.functional.hessian(
            lambda x: model.internal_energy(x[0], x[1]), torch.stack([S[k], terms.V[k]]))
        assert float(torch.linalg.eigvalsh(hess).min()) > 0
    # the kernel is w0 (1 - s^2)^2 and the pair amplitudes A0 (1 - s^2), ...
    torch.testing.assert_close(terms.w, p.kernel_weight * torch.exp(-p.kernel_decay * terms.s)
                               * (1 - terms.s**2) ** 2)
    torch.testing.assert_close(terms.A, p.friction[0] * (1 - terms.s**2))
    torch.testing.assert_close(terms.C, p.friction[2] * (1 - terms.s**2))


def test_truth_step_conserves_energy_and_momentum_exactly(dim):
    model = TruthModel(PARAMS[dim])
    box, q, v, S, pairs, _ = make_state(dim, n=30, seed=3)
    state = State(q, v, model.entropy(v, pairs), 0.0, 0.0, pairs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        new = exact_energy_step(model, state, box, 0.05, gen)
        e0 = float(model.total_energy(state.v, internal_energy_at(model, state, box)))
        e1 = float(model.total_energy(new.v, internal_energy_at(model, new, box)))
        assert abs(e1 - e0) <= 1e-11 * abs(e0)
        torch.testing.assert_close(new.v.sum(0), state.v.sum(0), rtol=0, atol=1e-12)
        state = new


def test_truth_simulation_satisfies_equipartition():
    # kinetic temperature m sum |v - <v>|^2 / (D (N - 1)) equals k_B <T> (canonical limit
    # of the stationary measure exp(S / k_B) on the energy shell; the total momentum is
    # conserved, so the peculiar velocities have D (N - 1) degrees of freedom). One run of
    # 600 frames of 64 particles scatters by 2% (0.948-1.012 over seeds 0-5, with two
    # versions of the entropy solve that differ at round-off); tolerance 3% for the mean
    # of 4 seeds. Stronger friction than the default (gamma ~ 1.2 / time) for a short
    # relaxation.
    kinetic, thermal = [], []
    for seed in (0, 1, 2, 3):
        traj = simulate_known_truth({"n_particles": 64, "n_equilibrate": 200,
                                     "n_frames": 600, "friction": [0.6, 1.0, 1.0]},
                                    seed=seed)
        kinetic.append(traj.observables["kinetic_temperature"].mean())
        thermal.append(traj.observables["mean_temperature"].mean())
        energy = traj.observables["total_energy"]
        assert np.abs(energy - energy[0]).max() <= 1e-10 * abs(energy[0])
        assert np.abs(traj.velocity.sum(1)).max() < 1e-10
        assert traj.observables["truth_entropy"].shape == (600, 64)
    ratio = np.mean(kinetic) / np.mean(thermal)
    assert abs(ratio - 1) < 0.03, ratio
    assert abs(np.mean(thermal) - 1.0) < 0.03  # the initial temperature is kept


@pytest.fixture(scope="module")
def truth_run():
    return simulate_known_truth({"n_particles": 64, "n_equilibrate": 20, "n_frames": 30},
                                seed=5)


def test_comparison_of_the_truth_with_itself_in_another_gauge_is_exact(truth_run):
    p = truth_model_of(truth_run).params
    scale, shift = 2.5, -3.0
    gauged = TruthModel(p, entropy_scale=scale, entropy_shift=shift, kernel_scale=1.7)
    summary, samples = compare_to_truth(gauged, [truth_run], {"frames": 4},
                                        gauge=(scale, shift))
    for name, entry in summary["quantities"].items():
        assert entry["function"]["relative_rms"] < 1e-12, name
        assert entry["function"]["within"] == 1.0
    # the truth's stand-in teacher (S at the initial temperature) misses the true S,
    # but the quantities that do not depend on T are still exact
    for name in ("noise_covariance", "kB_A2", "kB_B2", "kB_C2"):
        assert summary["quantities"][name]["teacher"]["relative_rms"] < 1e-12
        # as does the S inferred from the run's history (one block of 29 increments here:
        # its mean over particles), whole or past only (the start before the block ends)
        assert summary["quantities"][name]["history"]["relative_rms"] < 1e-12
        assert summary["quantities"][name]["filter"]["relative_rms"] < 1e-12
    for variant in ("history", "filter"):
        assert len(samples[f"S_{variant}"]) == len(samples["S_true"])
        assert -1 <= summary["gauge"][f"{variant}_truth_correlation"] <= 1
    # the states at frames 0, 10, 19 precede the block's end (frame 29), the last is at it
    last = samples["S_filter"][-64:]
    np.testing.assert_allclose(last, samples["S_history"][-64:], atol=1e-12)
    without, samples = compare_to_truth(gauged, [truth_run], {"frames": 4, "history_block": 0},
                                        gauge=(scale, shift))
    assert "history" not in without["quantities"]["kBT"] and "S_history" not in samples
    assert "filter" not in without["quantities"]["kBT"] and "S_filter" not in samples
    # the estimated gauge has the exact scale l = k_B(learned) / k_B(true)
    estimated, _ = compare_to_truth(gauged, [truth_run], {"frames": 4})
    assert estimated["gauge"]["entropy_scale"] == pytest.approx(scale, rel=1e-12)
    assert len(samples["kBT/truth"]) == summary["n_particle_samples"] == 4 * 64


def test_figure_rows_sit_close_together(truth_run, tmp_path, monkeypatch):
    """The error table runs on into the empty panel below it; laid out with the panels it
    had opened a third of the figure between the first two rows."""
    from ddpd.plots import known_truth as plots

    p = truth_model_of(truth_run).params
    summary, samples = compare_to_truth(TruthModel(p), [truth_run], {"frames": 4},
                                        gauge=(1.0, 0.0))
    figures = []
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure",
                        lambda fig, prefix: figures.append(fig) or save(fig, prefix))
    paths = plots.plot_known_truth(summary, samples, tmp_path / "kt")
    assert [path.suffix for path in paths] == [".png", ".pdf"]
    axes = np.array(figures[0].axes).reshape(3, 4)
    for column in range(3):
        gap = axes[0, column].get_position().y0 - axes[1, column].get_position().y1
        assert 0 < gap < 0.1, (column, gap)


def test_comparison_measures_a_perturbed_model(truth_run):
    p = truth_model_of(truth_run).params
    A0 = p.friction[0]
    stronger = TruthModel(dataclasses.replace(p, friction=(1.1 * A0, *p.friction[1:])))
    summary, _ = compare_to_truth(stronger, [truth_run], {"frames": 4}, gauge=(1.0, 0.0))
    q = summary["quantities"]
    # k_B A^2 is off by 1.1^2 - 1 everywhere; T, P V, the force and k_B B^2 are exact
    assert q["kB_A2"]["function"]["relative_rms"] == pytest.approx(1.1**2 - 1, rel=1e-9)
    assert q["kB_A2"]["function"]["within"] == 0.0
    assert q["friction_rate"]["function"]["relative_rms"] > 0.05
    for name in ("kBT", "PV", "force", "kernel_shape", "kB_B2"):
        assert q[name]["function"]["relative_rms"] < 1e-12
    hotter = TruthModel(dataclasses.replace(p, heat_capacity=0.9 * p.heat_capacity))
    summary, _ = compare_to_truth(hotter, [truth_run], {"frames": 4}, gauge=(1.0, 0.0))
    assert summary["quantities"]["kBT"]["function"]["relative_rms"] > 0.05


def test_bad_input_names_the_key_or_the_file():
    with pytest.raises(ValueError, match=r"known_truth.simulation.cutoff"):
        simulate_known_truth({"cutoff": 10.0}, seed=0)
    with pytest.raises(ValueError, match=r"known_truth.simulation: unknown key 'typo'"):
        simulate_known_truth({"typo": 1}, seed=0)
    plain = Trajectory(position=np.zeros((2, 3, 2)), velocity=np.zeros((2, 3, 2)),
                       time=np.arange(2.0), box=Box(edges=(4.0, 4.0)))
    with pytest.raises(ValueError, match=r"stars.h5: not a known-truth trajectory"):
        truth_model_of(plain, "stars.h5")
    with pytest.raises(ValueError, match=r"known_truth.compare.frames"):
        compare_to_truth(TruthModel(KnownTruthParams()), [plain], {"frames": 0})
    with pytest.raises(ValueError, match=r"known_truth.compare.history_block"):
        compare_to_truth(TruthModel(KnownTruthParams()), [plain], {"history_block": 1})
    assert math.isfinite(KnownTruthParams().box_edge)
