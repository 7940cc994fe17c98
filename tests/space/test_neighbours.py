"""Cell-list neighbour pairs against brute force; Lees-Edwards geometry."""

import numpy as np
import pytest
import torch

from ddpd.space import (
    Box,
    VerletList,
    brute_force_pairs,
    neighbour_pairs,
    pair_displacement,
    wrap,
)


def _as_set(pairs):
    return set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))


@pytest.mark.parametrize(
    "box, offset",
    [
        (Box(edges=(10.0, 12.0, 9.0)), 0.0),
        (Box(edges=(10.0, 8.0)), 0.0),
        (Box(edges=(10.0, 12.0, 9.0), boundary="lees-edwards", shear_rate=0.1), 3.7),
        (Box(edges=(10.0, 12.0, 9.0), boundary="lees-edwards", shear_rate=0.1), 123.45),
        (Box(edges=(11.0, 9.0), boundary="lees-edwards", shear_rate=0.1), 5.2),
        (Box(edges=(20.0, 15.0), boundary="open"), 0.0),
        (Box(edges=(4.5, 6.0, 5.0)), 0.0),  # fewer than 3 cells per axis
        (Box(edges=(4.5, 12.0, 9.0), boundary="lees-edwards", shear_rate=0.1), 1.3),
        (Box(edges=(1.5, 15.0), boundary="open"), 0.0),  # one cell across x
    ],
)
def test_cell_list_matches_brute_force(box, offset):
    gen = torch.Generator().manual_seed(1)
    dim = box.dim
    q = torch.rand(300, dim, generator=gen, dtype=torch.float64) * torch.tensor(box.edges)
    q[5] = float("nan")  # an absent particle
    cutoff = 2.1
    fast = neighbour_pairs(q, box, cutoff, offset)
    slow = brute_force_pairs(q, box, cutoff, offset)
    assert len(slow.i) > 100
    assert _as_set(fast) == _as_set(slow)
    assert bool((fast.i < fast.j).all())
    assert 5 not in set(fast.i.tolist()) | set(fast.j.tolist())
    # same displacements pair by pair
    order_f = torch.argsort(fast.i * 1000 + fast.j)
    order_s = torch.argsort(slow.i * 1000 + slow.j)
    torch.testing.assert_close(fast.r[order_f], slow.r[order_s])
    torch.testing.assert_close(fast.jump[order_f], slow.jump[order_s])


@pytest.mark.parametrize("dim", [2, 3])
def test_open_box_far_flung_particles(dim):
    """A diverging rollout in an open box: particles at 1e5 and 1e12 length units. Only
    occupied cells are stored (a grid over the bounding box would need ~1e11 cells per
    axis), beyond 2^(60/D) cells the indices are clamped, and no pair is lost or invented."""
    gen = torch.Generator().manual_seed(2)
    q = torch.rand(200, dim, generator=gen, dtype=torch.float64) * 12.0
    step = torch.zeros(dim, dtype=torch.float64)
    step[0] = 1.0
    for k, far in enumerate((1e5, -1e5, 1e12, -3e12)):
        q[2 * k] = far  # a far pair, 1.0 apart (inside the cutoff)
        q[2 * k + 1] = far + step
    q[9] = 1e12 + 5.0  # near the 1e12 pair, but not within the cutoff
    box = Box(edges=(12.0,) * dim, boundary="open")
    fast = neighbour_pairs(q, box, 2.1)
    slow = brute_force_pairs(q, box, 2.1)
    assert _as_set(fast) == _as_set(slow)
    assert {(0, 1), (2, 3), (4, 5), (6, 7)} <= _as_set(fast)
    assert not any(9 in pair for pair in _as_set(fast))


@pytest.mark.parametrize("boundary", ["periodic", "lees-edwards", "open"])
def test_verlet_list_gives_the_cell_list_pairs(boundary):
    """Along a random walk (and, sheared, an advancing offset; open, particles that vanish
    and come back) the list's pairs equal the cell list's, tensor for tensor, in fewer
    builds than steps."""
    gen = torch.Generator().manual_seed(3)
    box = Box(edges=(14.0, 12.0, 13.0), boundary=boundary,
              shear_rate=0.2 if boundary == "lees-edwards" else 0.0)
    edges = torch.tensor(box.edges, dtype=torch.float64)
    q = torch.rand(250, 3, generator=gen, dtype=torch.float64) * edges
    listed = VerletList(box, 2.1, 0.6)
    offset = 0.0
    for step in range(60):
        q = q + 0.03 * torch.randn(q.shape, generator=gen, dtype=torch.float64)
        if boundary == "lees-edwards":
            offset += 0.2 * 12.0 * 0.01
        if boundary != "open":
            q, _ = wrap(q, torch.zeros_like(q), box, offset)
        shown = q.clone()
        if boundary == "open" and step % 7 == 3:
            shown[step] = float("nan")  # a track lost for one frame
        fast, ref = listed.pairs(shown, offset), neighbour_pairs(shown, box, 2.1, offset)
        for a, b in zip(fast, ref, strict=True):
            assert torch.equal(a, b)
    assert 2 <= listed.builds < 40, listed.builds
    with pytest.raises(ValueError, match="skin"):
        VerletList(box, 2.1, 0.0)
    if boundary != "open":
        with pytest.raises(ValueError, match="twice the cutoff"):
            VerletList(box, 2.1, 4.5)


def test_lees_edwards_image_and_velocity_jump():
    box = Box(edges=(10.0, 10.0), boundary="lees-edwards", shear_rate=0.2)
    offset = 13.0  # accumulated: more than one box length
    q = torch.tensor([[1.0, 9.8], [1.0 - 3.0 + 0.1, 0.1]], dtype=torch.float64)
    r, jump = pair_displacement(q, torch.tensor([0]), torch.tensor([1]), box, offset)
    # image of particle 1 above: x + offset = 1 - 3 + 0.1 + 13 = 11.1 -> 1.1 (mod 10), y 10.1
    torch.testing.assert_close(r, torch.tensor([[-0.1, -0.3]], dtype=torch.float64))
    torch.testing.assert_close(jump, torch.tensor([[-0.2 * 10.0, 0.0]], dtype=torch.float64))


def test_wrap_lees_edwards_shifts_position_and_velocity():
    box = Box(edges=(10.0, 10.0), boundary="lees-edwards", shear_rate=0.2)
    q = torch.tensor([[5.0, 10.5]], dtype=torch.float64)
    v = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    qw, vw = wrap(q, v, box, offset=4.0)
    torch.testing.assert_close(qw, torch.tensor([[1.0, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(vw, torch.tensor([[0.3 - 2.0, 0.0]], dtype=torch.float64))
    # periodic box: positions only
    qp, vp = wrap(torch.tensor([[-0.5, 12.0]]), v.float(), Box(edges=(10.0, 10.0)))
    np.testing.assert_allclose(qp.numpy(), [[9.5, 2.0]], atol=1e-6)


def test_small_periodic_box_rejected():
    with pytest.raises(ValueError, match="twice the cutoff"):
        neighbour_pairs(torch.zeros(3, 3), Box(edges=(3.0, 3.0, 3.0)), 2.0)
