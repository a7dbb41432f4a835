"""The deploy runtimes' compiled recurrences (``hadamrnn.native``) against their NumPy step loops: the
integer model bit for bit, the float model to float64 rounding, forward only (inference)."""

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

SHAPES = [
    dict(input_size=9, hidden_size=64, output_size=6),
    dict(input_size=3, hidden_size=32, output_size=4, block_size=8, readout="all"),  # odd log2 m, every step
    dict(input_size=2, hidden_size=16, output_size=1, block_size=2),  # one binary logit
    dict(input_size=4, hidden_size=16, output_size=3, vocab_size=30),  # tokens
    dict(input_size=4, hidden_size=32, output_size=5, vocab_size=20, block_size=4, readout="all"),
]


def _inputs(config, rng, rows, steps, scale=1.0):
    if config.get("vocab_size"):
        return rng.integers(0, config["vocab_size"], (rows, steps))
    return rng.normal(size=(rows, steps, config["input_size"])) * scale


@pytest.mark.parametrize("index", range(len(SHAPES)))
def test_compiled_runtimes_equal_their_step_loops(tmp_path, index):
    config = SHAPES[index]
    torch.manual_seed(index)
    export_model(HadamRNN(HadamRNNConfig(**config)), tmp_path / "m.hrnn")
    model = runtime.load(tmp_path / "m.hrnn")
    rng = np.random.default_rng(index)
    x = _inputs(config, rng, 7, 60)
    native, loop = model.states(x), model.states(x, engine="numpy")
    assert native.shape == loop.shape and np.allclose(native, loop, rtol=1e-10, atol=1e-10)
    for bits in (6, 12, 24):
        integer = quantize_model(model, x[:, :20], bits=bits)
        for scale in (1.0, 1e3):  # 1e3: inputs and states saturate
            x_int = integer.quantize_inputs(_inputs(config, rng, 5, 50, scale))
            assert np.array_equal(integer.logits_int(x_int), integer.logits_int(x_int, engine="numpy")), (bits, scale)


def test_empty_and_single_step_sequences(tmp_path):
    torch.manual_seed(0)
    export_model(HadamRNN(HadamRNNConfig(input_size=2, hidden_size=8, output_size=3)), tmp_path / "m.hrnn")
    model = runtime.load(tmp_path / "m.hrnn")
    integer = quantize_model(model, np.ones((1, 3, 2)), bits=12)
    for steps in (0, 1):
        x = np.ones((2, steps, 2))
        assert np.allclose(model.states(x), model.states(x, engine="numpy") if steps else 0.0)
        x_int = integer.quantize_inputs(x)
        expected = integer.logits_int(x_int, engine="numpy") if steps else np.tile(integer.c, (2, 1))
        assert np.array_equal(integer.logits_int(x_int), expected)
    with pytest.raises(ValueError, match="engine must be"):
        integer.logits_int(x_int, engine="fast")
