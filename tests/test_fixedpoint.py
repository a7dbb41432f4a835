"""Training with fixed-point states (model.state_bits): the forward pass is the deployed integer model."""

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

CASES = [
    (dict(input_size=3, hidden_size=32, output_size=4), 8),
    (dict(input_size=2, hidden_size=64, output_size=3, block_size=8, readout="all"), 10),  # log2 m odd
    (dict(input_size=6, hidden_size=16, output_size=1, vocab_size=30, block_size=4), 12),
]


def _inputs(kwargs, generator, count=12, steps=20):
    if kwargs.get("vocab_size"):
        return torch.randint(0, kwargs["vocab_size"], (count, steps), generator=generator)
    return torch.randn(count, steps, kwargs["input_size"], generator=generator) * 1.5


@pytest.mark.parametrize("kwargs, bits", CASES)
def test_exported_integer_logits_equal_the_trained_fixed_point_logits(tmp_path, kwargs, bits):
    generator = torch.Generator().manual_seed(bits)
    torch.manual_seed(bits)
    model = HadamRNN(HadamRNNConfig(**kwargs, state_bits=bits))
    with torch.no_grad():
        model.input.bias.normal_(0, 0.3)
        model.output.bias.normal_(0, 0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # a few steps, so that scales and weights are those of a trained model
        logits = model(_inputs(kwargs, generator))
        optimizer.zero_grad()
        logits.square().mean().backward()
        optimizer.step()
    model.calibrate(_inputs(kwargs, generator))
    model.eval()
    x = _inputs(kwargs, generator)
    x[0] *= 100 if x.dtype.is_floating_point else 1  # saturating inputs
    with torch.no_grad():
        expected = model(x).numpy()
    export_model(model, tmp_path / "m.hrnn")
    states = model.fixed_point
    integer = quantize_model(runtime.load(tmp_path / "m.hrnn"), None, bits, scales=(int(states.fx), int(states.fh)))
    logits = integer.logits_int(integer.quantize_inputs(x.numpy())) * integer.logit_scale
    np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12)


def test_gradients_reach_every_parameter_and_saturated_units_pass_none():
    torch.manual_seed(0)
    model = HadamRNN(HadamRNNConfig(input_size=2, hidden_size=16, output_size=3, state_bits=6))
    x = torch.randn(4, 10, 2)
    model(x).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # one step, huge input: every unit saturates, so nothing reaches U, b or the latent
    model.zero_grad()
    with torch.no_grad():
        model.input.bias.fill_(1e6)
    model(torch.zeros(4, 1, 2)).sum().backward()
    assert model.input.bias.grad.abs().sum() == 0 and model.input.weight.grad.abs().sum() == 0


def test_state_bits_needs_quantized_u_and_v():
    with pytest.raises(ValueError, match="needs quantized U and V"):
        HadamRNNConfig(input_bits=None, state_bits=8)


@pytest.mark.parametrize("kwargs, bits", CASES)
def test_the_compiled_fixed_point_node_equals_the_step_loop_forward_and_backward(kwargs, bits):
    torch.manual_seed(1)
    x = _inputs(kwargs, torch.Generator().manual_seed(2))
    results = {}
    for engine in ("loop", "fused"):
        torch.manual_seed(3)
        model = HadamRNN(HadamRNNConfig(**kwargs, state_bits=bits, engine=engine))
        model.calibrate(x)
        limit = 2 ** (bits - 1) * 2.0 ** -int(model.fixed_point.fh)
        with torch.no_grad():
            model.input.bias.normal_(0, limit)
        assert float(model.input.bias.detach().abs().max()) > 1.5 * limit  # some units saturate
        logits = model(x)
        weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(4), dtype=logits.dtype)
        (logits * weights).sum().backward()
        results[engine] = (logits.detach(), {k: p.grad.clone() for k, p in model.named_parameters()})
    (loop_logits, loop_grads), (fused_logits, fused_grads) = results["loop"], results["fused"]
    assert torch.equal(loop_logits, fused_logits)
    for name, grad in loop_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-9, atol=1e-9, msg=name)


def test_a_float_run_starts_a_fixed_point_run_through_init_from(tmp_path):
    from hadamrnn.train import fit, load_config, load_trained

    small = ["data.name=copy", "data.length=24", "data.train_samples=64", "data.val_samples=16", "data.test_samples=16",
             "data.batch_size=16", "model.hidden_size=16", "optim.epochs=1"]
    fit(load_config(None, small), tmp_path / "float", progress=False)
    source = load_trained(tmp_path / "float")[0]
    fit(load_config(None, small + ["model.state_bits=8", "optim.lr=1e-12", f"optim.init_from={tmp_path / 'float'}"]),
        tmp_path / "q8", progress=False)
    tuned = load_trained(tmp_path / "q8")[0]
    assert tuned.fixed_point is not None and bool(tuned.fixed_point.calibrated)
    torch.testing.assert_close(tuned.input.weight, source.input.weight, rtol=0, atol=1e-6)  # lr ~ 0: the copied weights
    with pytest.raises(ValueError, match="another architecture"):
        fit(load_config(None, small + ["model.hidden_size=32", f"optim.init_from={tmp_path / 'float'}"]),
            tmp_path / "wrong", progress=False)


def test_calibration_with_a_score_keeps_the_best_scoring_state_scale():
    from hadamrnn.models.hadamrnn import STATE_HEADROOM

    torch.manual_seed(5)
    model = HadamRNN(HadamRNNConfig(input_size=3, hidden_size=32, output_size=4, state_bits=8))
    generator = torch.Generator().manual_seed(6)
    batches = [torch.randn(8, 30, 3, generator=generator) for _ in range(3)]
    targets = [torch.randint(0, 4, (8,), generator=generator) for _ in batches]

    def score(logits):
        return float(sum(torch.nn.functional.cross_entropy(out, y, reduction="sum") for out, y in zip(logits, targets)))

    model.calibrate(batches)  # no score: the largest state fits, as post-training quantization chooses
    coarsest = int(model.fixed_point.fh)
    model.calibrate(torch.cat(batches))  # one batch or several: the same peaks
    assert int(model.fixed_point.fh) == coarsest
    losses = {}
    with torch.no_grad():
        for fh in range(coarsest, coarsest + STATE_HEADROOM + 1):
            model.fixed_point.fh.fill_(fh)
            losses[fh] = score([model(x) for x in batches])
    assert min(losses, key=losses.get) != coarsest, losses  # the score, not the peak, decides
    model.calibrate(batches, score)
    assert int(model.fixed_point.fh) == min(losses, key=losses.get), losses
