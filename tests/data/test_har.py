import numpy as np
import torch
import pytest

from hadamrnn.data import DataError, load_data


def test_windows_labels_and_subject_split(hapt_dir):
    har6 = load_data("har6", hapt_dir)
    # segment of 320 samples → windows at 0, 64, 128, 192 (4); 256 samples → 3; 192 → 2; 128 → 1
    assert (len(har6.train), len(har6.val), len(har6.test)) == (7, 1, 2)
    assert har6.train.x.shape == (7, 128, 9) and har6.info.input_size == 9
    assert sorted(har6.train.y.tolist()) == [0, 0, 0, 0, 4, 4, 4]
    assert har6.test.y.tolist() == [2, 2] and har6.val.y.tolist() == [5]
    flat = har6.train.batch(torch.arange(7))[0].reshape(-1, 9)  # standardised by the data set's transform
    assert np.allclose(flat.mean(0).numpy(), 0, atol=1e-5) and np.allclose(flat.std(0).numpy(), 1, atol=1e-2)
    har2 = load_data("har2", hapt_dir)
    assert sorted(har2.train.y.tolist()) == [0, 0, 0, 0, 1, 1, 1] and har2.info.num_classes == 2


def test_missing_zip(tmp_path):
    with pytest.raises(DataError, match="HAPT_RawData.zip"):
        load_data("har6", tmp_path)


def test_real_har_counts_are_close_to_uci_har(real_data):
    root = real_data("hapt")
    har = load_data("har6", root)
    train, test = len(har.train) + len(har.val), len(har.test)
    assert abs(train - 7352) / 7352 < 0.03 and abs(test - 2947) / 2947 < 0.03  # measured: 7415 and 2996
