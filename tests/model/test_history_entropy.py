"""Entropies from a particle's history (ddpd.model.history_entropy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpd.model.history_entropy import (
    BlockEstimates,
    block_estimates,
    filtered_entropies,
    history_entropy,
    smoothed_entropies,
)
from ddpd.model.known_truth import simulate_known_truth, truth_model_of


def centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=1, keepdims=True)


def test_smoothing_shrinks_noisy_block_estimates_towards_the_truth():
    # S constant per particle (spread 1), block estimates S + independent noise of sd 2:
    # var(S) from neighbouring blocks ~ 1, a 3-block mean has noise variance 4/3, so the
    # shrinkage is ~ 1 / (1 + 4/3) and the labels beat the raw estimates
    rng = np.random.default_rng(0)
    S = rng.normal(size=4000)
    estimates = S + 2.0 * rng.normal(size=(6, 4000))
    centres = np.array([50.0, 150, 250, 350, 450, 550])
    labels, var_S = smoothed_entropies(estimates, centres, 600)
    assert labels.shape == (600, 4000)
    assert var_S == pytest.approx(1.0, abs=0.1)
    interior = labels[250]  # block 2: mean of blocks 1-3
    mean3 = estimates[1:4].mean(0)
    factor = np.polyfit(mean3 - mean3.mean(), interior - interior.mean(), 1)[0]
    assert factor == pytest.approx(1 / (1 + 4 / 3), abs=0.05)
    raw_error = np.sqrt(((estimates[2] - S) ** 2).mean())
    label_error = np.sqrt(((interior - S) ** 2).mean())
    assert label_error < 0.5 * raw_error
    # linear between centres, constant beyond the first and the last
    np.testing.assert_allclose(labels[200], 0.5 * (labels[150] + labels[250]), atol=1e-12)
    np.testing.assert_allclose(labels[0], labels[50], atol=0)
    np.testing.assert_allclose(labels[599], labels[550], atol=0)


def test_smoothing_of_one_block_gives_its_mean_and_checks_shapes():
    # one block: no estimate of var(S), so no information about the spread is trusted
    est = np.array([[1.0, 2.0, 3.0]])
    labels, var_S = smoothed_entropies(est, np.array([5.0]), 10)
    np.testing.assert_allclose(labels, np.full((10, 3), 2.0))
    assert np.isnan(var_S)
    with pytest.raises(ValueError, match="do not match 2 block centres"):
        smoothed_entropies(est, np.array([1.0, 2.0]), 10)


def test_filter_reads_only_blocks_that_have_ended():
    # blocks of 100 frames (first 0, 100, ...; last 100, 200, ...), S + noise of sd 2
    rng = np.random.default_rng(1)
    S = rng.normal(size=4000)
    estimates = S + 2.0 * rng.normal(size=(6, 4000))
    first = np.arange(6) * 100
    blocks = BlockEstimates(estimates, first, first + 100, np.full(4000, 7.0))
    labels = filtered_entropies(blocks, 601)
    assert labels.shape == (601, 4000)
    np.testing.assert_array_equal(labels[:100], 7.0)  # no block has ended: the start
    # one block ended: no var(S) yet, its mean field
    np.testing.assert_allclose(labels[100:200], estimates[0].mean(), atol=1e-12)
    # frames 400-499: blocks 0-3 ended; the mean of blocks 1-3 shrunk by var(S) ~ 1
    mean3 = estimates[1:4].mean(0)
    label = labels[450]
    factor = np.polyfit(mean3 - mean3.mean(), label - label.mean(), 1)[0]
    assert factor == pytest.approx(1 / (1 + 4 / 3), abs=0.07)
    np.testing.assert_array_equal(labels[400], labels[499])
    # causal: changing the blocks that end later changes nothing before they end
    later = BlockEstimates(estimates.copy(), first, first + 100, blocks.start)
    later.estimates[4:] += 5.0
    np.testing.assert_array_equal(filtered_entropies(later, 601)[:500], labels[:500])
    assert not np.allclose(filtered_entropies(later, 601)[500], labels[500])


@pytest.fixture(scope="module")
def equilibrated_run():
    # the truth's S spreads slowly (remembered over ~1,700 frames at c_v = 400): 1000 steps
    # of equilibration give it a stationary-like spread (~10 here)
    return simulate_known_truth({"n_particles": 64, "n_equilibrate": 1000, "n_frames": 600},
                                seed=2)


def test_history_finds_the_entropy_a_snapshot_cannot(equilibrated_run):
    # with the truth's own functions, blocks of 150 frames (labels over 450): correlation
    # with the true S 0.64-0.75 and RMS error 0.66-0.78 of its spread over seeds 0-5 (a
    # snapshot: |corr| <= 0.04, bench/model.md "What the data tell about S")
    traj = equilibrated_run
    truth = truth_model_of(traj)
    labels = history_entropy(truth, traj.position, traj.velocity, traj.box,
                             truth.params.dt, block=150)
    assert labels.shape == traj.observables["truth_entropy"].shape
    x, y = centred(labels), centred(traj.observables["truth_entropy"])
    corr = (x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum())
    assert corr > 0.5
    assert np.sqrt(((x - y) ** 2).mean()) < 0.85 * y.std()


def test_filter_finds_the_entropy_from_the_past_alone(equilibrated_run):
    # the last frame's filter label reads blocks 1-3 (frames 150-600), the smoother's the
    # same blocks: both see the true S; the smoother equals history_entropy
    traj = equilibrated_run
    truth = truth_model_of(traj)
    blocks = block_estimates(truth, traj.position, traj.velocity, traj.box, truth.params.dt,
                             block=150)
    np.testing.assert_array_equal(blocks.last, [150, 300, 450, 599])
    filtered = filtered_entropies(blocks, traj.n_frames)
    x = filtered[-1] - filtered[-1].mean()
    y = centred(traj.observables["truth_entropy"])[-1]
    assert (x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()) > 0.5
    np.testing.assert_array_equal(filtered[:150], np.broadcast_to(blocks.start, (150, 64)))
    smoothed, _ = smoothed_entropies(blocks.estimates, blocks.centres, traj.n_frames)
    np.testing.assert_allclose(smoothed, history_entropy(truth, traj.position, traj.velocity,
                                                         traj.box, truth.params.dt,
                                                         block=150), atol=1e-12)


def test_history_entropy_follows_a_relabelling_of_the_particles(equilibrated_run):
    traj = equilibrated_run
    truth = truth_model_of(traj)
    order = np.random.default_rng(1).permutation(traj.position.shape[1])
    frames = slice(0, 41)
    kwargs = dict(box=traj.box, dt=truth.params.dt, block=20,
                  start=torch.linspace(-5.0, 5.0, len(order), dtype=torch.float64))
    labels = history_entropy(truth, traj.position[frames], traj.velocity[frames], **kwargs)
    kwargs["start"] = kwargs["start"][order]
    permuted = history_entropy(truth, traj.position[frames][:, order],
                               traj.velocity[frames][:, order], **kwargs)
    np.testing.assert_allclose(permuted, labels[:, order], rtol=1e-6, atol=1e-6)


def test_bad_input_is_refused(equilibrated_run):
    traj = equilibrated_run
    truth = truth_model_of(traj)
    with pytest.raises(ValueError, match="block of 1 frames"):
        history_entropy(truth, traj.position, traj.velocity, traj.box, 0.05, block=1)
    with pytest.raises(ValueError, match="differ"):
        history_entropy(truth, traj.position, traj.velocity[:, :3], traj.box, 0.05)
