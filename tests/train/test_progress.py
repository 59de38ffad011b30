"""Mini-batches and the smoothed loss."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.train import SmoothedLoss, epoch_batches


def test_smoothed_loss_formula():
    smoother = SmoothedLoss(0.5)
    # Q starts at the first loss, then Q ← (1 − λ)Q + λL
    assert [smoother.update(v) for v in [1.0, 2.0, 3.0, 0.0]] == [1.0, 1.5, 2.25, 1.125]
    raw = SmoothedLoss(1.0)
    assert [raw.update(v) for v in [4.0, 2.0]] == [4.0, 2.0]


@pytest.mark.parametrize("smoothing", [0.0, -0.1, 1.01])
def test_smoothing_range(smoothing):
    with pytest.raises(ValueError, match=r"smoothing must be in \(0, 1\]"):
        SmoothedLoss(smoothing)


def test_batches_cover_every_example_once_with_a_last_partial_batch():
    batches = epoch_batches(10, 4, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    ordered = epoch_batches(10, 4, None)
    assert [b.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_fresh_shuffle_each_epoch_reproducible_by_seed():
    def orders(seed):
        rng = np.random.default_rng(seed)
        return [np.concatenate(epoch_batches(20, 8, rng)) for _ in range(3)]

    first, again, other = orders(0), orders(0), orders(1)
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
