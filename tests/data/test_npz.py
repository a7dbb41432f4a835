import numpy as np
import pytest
import torch

from hadamrnn.data import load_data


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_float_sequences_with_held_out_validation(tmp_path):
    rng = np.random.default_rng(0)
    path = _save(tmp_path / "d.npz", x_train=rng.normal(size=(40, 7, 3)).astype(np.float32), y_train=np.arange(40) % 3,
                 x_test=rng.normal(size=(9, 7, 3)), y_test=np.arange(9) % 3)
    splits = load_data("npz", path=path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 4, 9)
    assert splits.info.input_size == 3 and splits.info.num_classes == 3 and splits.info.loss == "ce"
    assert splits.test.x.dtype == torch.float32


def test_token_sequences_with_per_step_labels(tmp_path):
    path = _save(tmp_path / "t.npz", x_train=np.ones((5, 6), np.int64), y_train=np.zeros((5, 6), np.int64),
                 x_val=np.full((2, 6), 4), y_val=np.ones((2, 6), np.int64), x_test=np.ones((3, 6), np.int32),
                 y_test=np.zeros((3, 6), np.int64))
    splits = load_data("npz", path=path)
    assert splits.info.vocab_size == 5 and splits.info.loss == "ce_all" and splits.info.readout == "all"
    assert len(splits.val) == 2


@pytest.mark.parametrize("arrays, message", [
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.zeros(4, int), x_test=np.zeros((2, 5, 2))), "missing key.*y_test"),
    (dict(x_train=np.zeros((4, 5)), y_train=np.zeros(4, int), x_test=np.zeros((2, 5)), y_test=np.zeros(2, int)),
     r"expected \(N, T\) token ids or \(N, T, d\) floats"),
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.zeros(3, int), x_test=np.zeros((2, 5, 2)), y_test=np.zeros(2, int)),
     "4 samples but y_train has 3"),
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.zeros(4), x_test=np.zeros((2, 5, 2)), y_test=np.zeros(2, int)),
     "labels must be integer"),
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.zeros(4, int), x_test=np.zeros((2, 5, 3)), y_test=np.zeros(2, int)),
     "feature sizes differ"),
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.zeros(4, int), x_test=np.zeros((2, 5, 2)), y_test=np.zeros(2, int),
          x_val=np.zeros((1, 5, 2))), "both x_val and y_val"),
    (dict(x_train=np.zeros((0, 5, 2)), y_train=np.zeros(0, int), x_test=np.zeros((2, 5, 2)), y_test=np.zeros(2, int)),
     r"x_train has shape \(0, 5, 2\): every split needs at least one sample"),  # was an IndexError traceback
    (dict(x_train=np.zeros((4, 5, 2)), y_train=np.array([0, 1, 10**6, 2]), x_test=np.zeros((2, 5, 2)),
          y_test=np.zeros(2, int)), "y_train holds the label 1000000; .* at most 65536 classes"),  # was 8 TB of memory
    (dict(x_train=np.zeros((4, 5), int), y_train=np.zeros(4, int), x_test=np.full((2, 5), 2**40),
          y_test=np.zeros(2, int)), "x_test holds the token id 1099511627776"),
    (dict(x_train=np.zeros((40, 7, 2)), y_train=np.zeros((40, 7), int), x_test=np.zeros((40, 7, 2)),
          y_test=np.zeros((40, 5), int)), r"y_test has shape \(40, 5\), a label per step, but x_test has 7 steps: "
                                          r"expected \(40, 7\)"),
])
def test_invalid_files_get_errors_that_say_what_is_wrong(tmp_path, arrays, message):
    with pytest.raises(ValueError, match=message):
        load_data("npz", path=_save(tmp_path / "bad.npz", **arrays))


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match="needs a file"):
        load_data("npz")
    with pytest.raises(FileNotFoundError, match="x_train"):
        load_data("npz", path=tmp_path / "none.npz")


def test_unknown_dataset_and_option():
    with pytest.raises(ValueError, match=r"data.name: 'cifar' is not a data set; choose one of \['copy'"):
        load_data("cifar")
    with pytest.raises(ValueError, match=r"unknown key data.length.*\(data set 'smnist' takes no other keys\)"):
        load_data("smnist", length=3)


def test_corrupted_archives_and_non_finite_inputs_are_named(tmp_path):
    import random

    path = tmp_path / "d.npz"
    good = dict(x_train=np.zeros((4, 5, 2), np.float32), y_train=np.zeros(4, int), x_test=np.zeros((2, 5, 2), np.float32),
                y_test=np.zeros(2, int))
    np.savez(path, **good)
    original = path.read_bytes()
    rng = random.Random(1)
    for _ in range(100):
        data = bytearray(original)
        data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data[:rng.randrange(len(data))] if rng.random() < 0.3 else data))
        try:
            load_data("npz", path=str(path))
        except ValueError as error:
            assert "d.npz" in str(error)
    good["x_test"][0, 0, 0] = np.nan
    np.savez(path, **good)
    with pytest.raises(ValueError, match="x_test holds NaN or infinite values"):
        load_data("npz", path=str(path))


def test_normalize_standardises_channels_by_the_training_split(tmp_path):
    from hadamrnn.preprocess import InputTransform

    rng = np.random.default_rng(6)
    path = _save(tmp_path / "n.npz", x_train=rng.normal(5, 3, (40, 7, 2)).astype(np.float32),
                 y_train=rng.integers(0, 2, 40), x_test=rng.normal(5, 3, (6, 7, 2)).astype(np.float32),
                 y_test=rng.integers(0, 2, 6))
    plain, scaled = load_data("npz", path=path), load_data("npz", path=path, normalize=True)
    assert plain.info.transform is None
    transform = InputTransform.from_dict(scaled.info.transform)
    np.testing.assert_allclose(transform.offset, scaled.train.x.numpy().mean(axis=(0, 1)), rtol=1e-5)
    x = scaled.train.batch(np.arange(len(scaled.train)))[0].numpy()
    np.testing.assert_allclose(x.std(axis=(0, 1)), 1, atol=1e-4)
    np.testing.assert_array_equal(scaled.test.x.numpy(), plain.test.x.numpy())  # raw values kept, as exported
