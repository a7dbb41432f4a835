import math

import pytest
import torch

from hadamrnn.data import CopyTask, copy_baseline


def test_layout_of_a_copy_sequence():
    task = CopyTask(5, length=30, seed=3)
    x, y = task[2]
    assert x.shape == (30, 10) and x.dtype == torch.float32
    assert y.shape == (30,) and y.dtype == torch.int64
    tokens = x.argmax(-1)
    symbols = tokens[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (tokens[10:19] == 0).all() and tokens[19] == 9 and (tokens[20:] == 0).all()
    assert (y[:20] == 0).all() and torch.equal(y[20:], symbols)
    assert torch.equal(x.sum(-1), torch.ones(30))


def test_deterministic_per_seed_and_index():
    a, b = CopyTask(10, 40, seed=7), CopyTask(1000, 40, seed=7)
    assert torch.equal(a[3][0], b[3][0])
    assert not torch.equal(a[3][1], a[4][1])
    assert not torch.equal(a[3][1], CopyTask(10, 40, seed=8)[3][1])


def test_baseline_and_errors():
    assert math.isclose(copy_baseline(1000), 10 * math.log(8) / 1000)
    with pytest.raises(ValueError, match=">= 21"):
        CopyTask(1, length=20)
    with pytest.raises(IndexError):
        CopyTask(3, 30)[3]


def test_copy_splits_use_disjoint_seeds_and_batch_matches_items():
    from hadamrnn.data import load_data

    splits = load_data("copy", length=25, train_samples=10, val_samples=4, test_samples=6, seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 4, 6)
    x, y = splits.train.batch(torch.tensor([2, 5]))
    assert torch.equal(x[1], splits.train[5][0]) and torch.equal(y[0], splits.train[2][1])
    assert not torch.equal(splits.train[0][1], splits.val[0][1])
    assert splits.info.readout == "all" and splits.info.metric == "cross_entropy" and not splits.info.higher_is_better
