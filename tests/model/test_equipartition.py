"""The kinetic temperature of data: n_f - 1 free velocities per frame and direction."""

import pytest
import torch

from ddpd.coarse.dataset import collate
from ddpd.model.equipartition import (
    frames_kinetic_temperature,
    kinetic_temperature,
    peculiar_sums,
)
from ddpd.model.metriplectic import Snapshot
from ddpd.space import neighbour_pairs

from .conftest import make_model, make_state

MASS, KT = 1.7, 0.8


def _maxwellian(frames: int, n: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (KT / MASS) ** 0.5 * torch.randn(frames, n, dim, generator=gen,
                                             dtype=torch.float64)


def test_unbiased_at_fixed_total_momentum_and_for_independent_velocities():
    # 20000 frames of 4 particles in 2D: one frame's estimate has relative variance
    # 2 / (D (n - 1)) = 1/3, the mean's standard error 0.4%; dividing by n instead of
    # n - 1 would read 3/4 of k_B T
    frames, n, dim = 20000, 4, 2
    labels = torch.arange(frames).repeat_interleave(n)
    v = _maxwellian(frames, n, dim, seed=0)
    drift = torch.randn(frames, 1, dim, dtype=torch.float64)
    # a periodic system at fixed (here arbitrary per frame) total momentum
    fixed = v - v.mean(1, keepdim=True) + drift
    # independent velocities seen in a field of view: the frame mean is not conserved
    for sample in (fixed, v + drift):
        kT = kinetic_temperature(sample.reshape(-1, dim), MASS, labels)
        assert float(kT) == pytest.approx(KT, rel=0.02)


def test_frames_are_told_apart_by_their_labels():
    v = _maxwellian(3, 5, 3, seed=1)
    boosted = v + torch.tensor([[[4.0, -2.0, 1.0]], [[0.0, 0.0, 0.0]], [[-7.0, 3.0, 0.5]]],
                               dtype=torch.float64)
    labels = torch.tensor([9] * 5 + [2] * 5 + [5] * 5)  # any labels, not sorted
    pooled = kinetic_temperature(boosted.reshape(-1, 3), MASS, labels)
    squares = sum(float(((f - f.mean(0)) ** 2).sum()) for f in v)
    assert float(pooled) == pytest.approx(MASS * squares / (3 * 3 * 4), rel=1e-12)
    # one frame: the same as labels all equal
    one = kinetic_temperature(v[0], MASS)
    assert float(one) == pytest.approx(float(kinetic_temperature(
        v[0], MASS, torch.zeros(5, dtype=torch.long))), rel=1e-12)
    # a frame of one particle adds nothing
    total, free = peculiar_sums(torch.cat([v[0], v[1, :1]]), torch.tensor([0] * 5 + [1]))
    assert free == 4 and float(total) == pytest.approx(float(((v[0] - v[0].mean(0)) ** 2
                                                              ).sum()), rel=1e-12)


def test_pooled_frames_equal_one_labelled_array():
    v = _maxwellian(4, 6, 2, seed=2)
    labels = torch.arange(4).repeat_interleave(6)
    pooled = frames_kinetic_temperature(((f, None) for f in v), MASS)
    assert pooled == pytest.approx(float(kinetic_temperature(v.reshape(-1, 2), MASS, labels)),
                                   rel=1e-12)
    with pytest.raises(ValueError, match="no frame has two particles"):
        frames_kinetic_temperature([(v[0, :1], None)], MASS)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"expected \(N, D\) velocities"):
        kinetic_temperature(torch.zeros(5), MASS)
    with pytest.raises(ValueError, match="frame labels of shape"):
        kinetic_temperature(torch.zeros(5, 2), MASS, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="no frame has two particles"):
        kinetic_temperature(torch.zeros(2, 2), MASS, torch.tensor([0, 1]))


def test_the_likelihood_prior_removes_each_frames_own_mean():
    # two frames joined for a batch: boosting one frame (v(t) and v(t + dt)) leaves the
    # Galilean-invariant NLL and its equipartition prior unchanged; a mean over the joined
    # batch would see the boost as heat
    model = make_model(2)
    snaps = []
    for seed, boost in ((3, 0.0), (4, 2.5)):
        box, q, v, S, pairs, _ = make_state(2, n=30, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        v1 = v + 0.05 * torch.randn(v.shape, generator=gen, dtype=torch.float64)
        idx = torch.arange(30)
        pairs1 = neighbour_pairs(q, box, model.cutoff)
        snaps.append((Snapshot(v, pairs, v1, pairs1, idx, idx),
                      Snapshot(v + boost, pairs, v1 + boost, pairs1, idx, idx)))
    with torch.no_grad():
        still = model.nll(collate([snaps[0][0], snaps[1][0]]), 0.01, equipartition=3.0)
        moving = model.nll(collate([snaps[0][0], snaps[1][1]]), 0.01, equipartition=3.0)
        plain = model.nll(collate([snaps[0][0], snaps[1][1]]), 0.01)
    assert float(moving) == pytest.approx(float(still), rel=1e-10)
    assert float(moving - plain) > 1e-6  # the prior is there
