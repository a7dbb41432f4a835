from hadamrnn import HadamRNN, HadamRNNConfig, model_size_bits, size_summary


def test_small_model_bit_arithmetic():
    # n=8, d=3, C=2, 4-bit U, 3-bit V, embedding 10×3.
    model = HadamRNN(HadamRNNConfig(input_size=3, hidden_size=8, output_size=2, block_size=4,
                                    input_bits=4, output_bits=3, vocab_size=10))
    bits = model_size_bits(model)
    assert bits == {
        "W": 8,
        "U": 8 * 3 * 4 + 32,
        "b": 8 * 32,
        "V": 2 * 8 * 3 + 32,
        "c": 2 * 32,
        "embedding": 10 * 3 * 32,
        "total": 8 + 128 + 256 + 80 + 64 + 960,
    }


def test_full_precision_tensors_cost_32_bits_and_no_scale():
    model = HadamRNN(HadamRNNConfig(input_size=2, hidden_size=4, output_size=3, input_bits=None, output_bits=None))
    bits = model_size_bits(model)
    assert bits["U"] == 4 * 2 * 32 and bits["V"] == 3 * 4 * 32


def test_pmnist_model_size_and_summary():
    model = HadamRNN(HadamRNNConfig(input_size=1, hidden_size=512, output_size=10, input_bits=4, output_bits=4))
    bits = model_size_bits(model)
    assert bits["W"] == 512
    assert bits["U"] == 512 * 4 + 32
    assert bits["V"] == 10 * 512 * 4 + 32
    assert bits["total"] == 512 + 2080 + 512 * 32 + 20512 + 320
    table = size_summary(model)
    assert "W" in table and str(bits["total"]) in table
    assert f"would take {512 * 512} bits" in table  # the dense binary W it stands for


def test_block_summary_compares_with_dense_ternary():
    model = HadamRNN(HadamRNNConfig(input_size=1, hidden_size=64, output_size=2, block_size=8))
    assert "ternary" in size_summary(model)
    assert f"would take {2 * 64 * 64} bits" in size_summary(model)
