"""Every fast engine against the step-by-step oracle, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.engine import choose_engine, recur, signed_hadamard_recurrence
from hadamrnn.recurrent import SignedHadamard


def _model(engine, **kwargs):
    config = HadamRNNConfig(**{"input_size": 3, "hidden_size": 32, "output_size": 4, "engine": engine, **kwargs})
    torch.manual_seed(7)
    model = HadamRNN(config).double()
    with torch.no_grad():  # non-zero biases and a latent with exact zeros exercise every term
        model.input.bias.normal_()
        model.latent[::5] = 0.0
    return model


def _inputs(config, batch, steps, generator):
    if config.vocab_size is not None:
        tokens = torch.randint(0, config.vocab_size, (batch, steps), generator=generator)
        tokens[:, : steps // 4] = 0  # pre-padding
        return tokens
    return torch.randn(batch, steps, config.input_size, generator=generator, dtype=torch.float64)


def _outputs_and_grads(model, inputs, forward=None, target_seed=3):
    output = (forward or model)(inputs)
    target = torch.randn(output.shape, generator=torch.Generator().manual_seed(target_seed), dtype=output.dtype)
    loss = ((output - target) ** 2).mean() + output.abs().mean()
    grads = torch.autograd.grad(loss, [p for _, p in model.named_parameters()])
    return output.detach(), dict(zip([name for name, _ in model.named_parameters()], grads))


def _assert_close(got, expected, rtol=1e-9):
    scale = expected.abs().max().clamp_min(1e-300)
    assert (got - expected).abs().max() / scale <= rtol, float((got - expected).abs().max() / scale)


def _fast_and_loop(engine, **kwargs):
    """Two models with the same weights: one on ``engine``, one on the loop."""
    fast, oracle = _model(engine, **kwargs), _model("loop", **kwargs)
    oracle.load_state_dict(fast.state_dict())
    return fast, oracle


def _relu_gate_shared_at_ties(fast, oracle, inputs):
    """The oracle's relu' (0/1, shaped like the states), taken from the fast engine where a state is a tie.

    A state whose exact value is 0 (see ``test_states_at_the_kink_are_exact_zeros_rounded_either_way``)
    comes out of either path as a rounding residue of either sign: the dense product's rounding
    depends on the BLAS kernel the CPU selects (MKL on Intel vs AMD), the transform's does not. At
    such a tie relu' is 0 or 1 by the sign of that residue; both are subgradients of relu at 0. A tie
    is a state within 1e-12 of the largest state in both paths; everywhere else the patterns must agree.
    """
    with torch.no_grad():
        h_fast, h_loop = fast.states(inputs), oracle.states(inputs)
    tie = 1e-12 * h_loop.abs().max()
    at_kink = (h_loop.abs() <= tie) & (h_fast.abs() <= tie)
    disagree = (h_fast > 0) != (h_loop > 0)
    assert not (disagree & ~at_kink).any(), "relu patterns differ away from the kink"
    return torch.where(at_kink, h_fast > 0, h_loop > 0).to(h_loop.dtype)


def _assert_matches_loop(fast, oracle, inputs):
    """Outputs and the gradient of every parameter agree to 1e-9 relative (relu' shared at ties)."""
    gate = _relu_gate_shared_at_ties(fast, oracle, inputs)

    def oracle_forward(x):
        return F.linear(oracle.states(x) * gate, oracle.output.quantized_weight(), oracle.output.bias)

    out_fast, grads_fast = _outputs_and_grads(fast, inputs)
    out_loop, grads_loop = _outputs_and_grads(oracle, inputs, oracle_forward)
    _assert_close(out_fast, out_loop)
    assert set(grads_fast) == set(grads_loop)
    for name in grads_loop:
        _assert_close(grads_fast[name], grads_loop[name])


CASES = [
    # engine, readout, block, vocab, batch, steps, hidden
    ("fused", "last", None, None, 5, 1, 32),
    ("fused", "last", None, None, 5, 200, 32),
    ("fused", "all", 8, None, 4, 100, 32),
    ("fused", "last", 4, 50, 6, 120, 16),
    ("fused", "all", None, 50, 3, 60, 64),
    ("kernel", "last", None, None, 7, 300, 32),
    ("kernel", "last", 2, None, 9, 50, 64),
    ("kernel", "last", None, None, 4, 1, 16),
    ("fused", "all", None, None, 40, 30, 32),
    ("fused", "last", 8, 20, 37, 25, 16),  # tokens, one partial gradient table per thread
    ("fused", "all", 4, None, 5, 40, 16),  # block 4: an even number of transform rounds
    ("fused", "all", 1, None, 3, 20, 8),  # block 1: W = diag(s), no transform at all
    ("auto", "last", None, None, 6, 1000, 64),
    ("auto", "all", 16, None, 2, 1000, 64),
]


@pytest.mark.parametrize("engine, readout, block, vocab, batch, steps, hidden", CASES)
def test_engine_matches_loop_forward_and_every_gradient_float64(engine, readout, block, vocab, batch, steps, hidden):
    kwargs = dict(readout=readout, block_size=block, vocab_size=vocab, hidden_size=hidden)
    fast, oracle = _fast_and_loop(engine, **kwargs)
    inputs = _inputs(fast.config, batch, steps, torch.Generator().manual_seed(11))
    _assert_matches_loop(fast, oracle, inputs)


@pytest.mark.parametrize("readout", ["last", "all"])
def test_projected_outside_the_kernel_matches_the_loop(readout):
    """Many input features (and inputs that need a gradient) take the precomputed-table path."""
    from hadamrnn.engine import PROJECT_IN_KERNEL_MAX_FEATURES

    kwargs = dict(readout=readout, input_size=PROJECT_IN_KERNEL_MAX_FEATURES + 1, block_size=8)
    fast, oracle = _fast_and_loop("fused", **kwargs)
    inputs = _inputs(fast.config, 4, 30, torch.Generator().manual_seed(4))
    _assert_matches_loop(fast, oracle, inputs)
    small = dict(readout=readout, input_size=3)
    fast, oracle = _fast_and_loop("fused", **small)
    x = _inputs(fast.config, 3, 25, torch.Generator().manual_seed(6)).requires_grad_()
    (grad_fast,) = torch.autograd.grad(fast(x).square().sum(), x)
    (grad_loop,) = torch.autograd.grad(oracle(x).square().sum(), x)
    _assert_close(grad_fast, grad_loop)


def test_relu_pattern_of_the_forward_pass_at_exact_zeros(monkeypatch):
    """One-hot inputs, zero bias and quantized U with zeros make states exactly 0 at the first
    step; walked back in the backward pass they come out as ±1e-17, and relu' there must still be
    the forward's (0). Compared with the torch path, which keeps the forward states."""
    import hadamrnn.engine as engine

    model = _model("fused", readout="all", input_size=10, hidden_size=32, input_bits=2)
    with torch.no_grad():
        model.input.bias.zero_()
    x = F.one_hot(torch.randint(0, 10, (6, 30), generator=torch.Generator().manual_seed(3)), 10).double()
    assert (model.states(x)[:, 0] == 0).any()
    out_native, grads_native = _outputs_and_grads(model, x)
    monkeypatch.setattr(engine, "_native", lambda tensor: False)
    out_torch, grads_torch = _outputs_and_grads(model, x)
    _assert_close(out_native, out_torch)
    for name in grads_torch:
        _assert_close(grads_native[name], grads_torch[name])


@pytest.mark.parametrize("block, steps", [(None, 40), (4, 40), (8, 1)])
def test_shared_padding_prefix_matches_the_loop(block, steps):
    """Pre-padded rows share the states of their padding; every pad length, including whole rows of
    padding, none at all, and padding ids inside a sequence (which are not part of any prefix)."""
    kwargs = dict(readout="last", vocab_size=30, block_size=block, hidden_size=16)
    fast, oracle = _fast_and_loop("fused", **kwargs)
    with torch.no_grad():  # a padding embedding that is not zero: the prefix must use the real pad row
        fast.embedding.weight[0] = oracle.embedding.weight[0] = 0.5
    tokens = torch.randint(1, 30, (7, steps), generator=torch.Generator().manual_seed(1))
    for row, pad in enumerate([0, 3, steps, steps - 1, 7, 1, 0]):
        tokens[row, :min(pad, steps)] = 0
    tokens[0, steps // 2] = 0
    for inputs in (tokens, tokens[1:2], tokens[[2, 2]]):
        _assert_matches_loop(fast, oracle, inputs)


def test_states_at_the_kink_are_exact_zeros_rounded_either_way():
    """Why relu' may differ between the engine and the loop, and only there: a row of padding feeds
    a constant input, and a 4×4 block of ``W`` (entries ±1/2) has finite order, so ``Σ_k W^k z``
    over a multiple of that order is exactly 0 for the block. In exact rational arithmetic the
    state is 0; in float64 both paths leave a residue of order 1e-15 whose sign is rounding's."""
    from fractions import Fraction

    fast, oracle = _fast_and_loop("fused", readout="last", vocab_size=30, block_size=4, hidden_size=16)
    with torch.no_grad():
        fast.embedding.weight[0] = oracle.embedding.weight[0] = 0.5
    padding = torch.zeros(1, 40, dtype=torch.int64)
    weights = fast.effective_weights()
    exact = lambda tensor: [[Fraction(v) for v in row] for row in tensor.tolist()]  # floats are dyadic: exact
    W, U = exact(weights["W"]), exact(weights["U"])
    z = [sum(U[i][j] * Fraction(weights["embedding"][0, j].item()) for j in range(len(U[i]))) + Fraction(b)
         for i, b in enumerate(weights["b"].tolist())]
    h = [Fraction(0)] * 16
    for _ in range(40):
        h = [sum(W[i][j] * h[j] for j in range(16)) + z[i] for i in range(16)]
    zeros = [i for i in range(16) if h[i] == 0]
    assert zeros == [12, 13, 14, 15]  # the last block; the other blocks' states are far from 0
    for model in (fast, oracle):
        states = model.states(padding)[0]
        assert states[zeros].abs().max() < 1e-12 < states[:12].abs().min()
    _assert_matches_loop(fast, oracle, padding)


def test_states_of_every_step_match_the_loop():
    for engine_kwargs in (dict(input_size=3), dict(vocab_size=40)):
        fast, oracle = _fast_and_loop("fused", readout="all", **engine_kwargs)
        inputs = _inputs(fast.config, 3, 50, torch.Generator().manual_seed(8))
        _assert_close(fast.states(inputs), oracle.states(inputs))
        (grad_fast,) = torch.autograd.grad(fast.states(inputs).sin().sum(), fast.latent)
        (grad_loop,) = torch.autograd.grad(oracle.states(inputs).sin().sum(), oracle.latent)
        _assert_close(grad_fast, grad_loop)


def test_every_parameter_is_compared():
    model = _model("fused", vocab_size=10)
    names = {name for name, _ in model.named_parameters()}
    assert names == {"embedding.weight", "input.weight", "input.bias", "recurrent.parametrizations.weight.original",
                     "output.weight", "output.bias"}


def test_float32_drift_at_t1000_is_bounded():
    """fwht steps and dense steps round differently; W is orthogonal, so the gap grows slowly.

    Measured: relative max gap of h_T ≈ 1e-6 to 1e-5 at T = 1000, n = 128.
    """
    kwargs = dict(readout="last", hidden_size=128, input_size=2)
    torch.manual_seed(0)
    fast = HadamRNN(HadamRNNConfig(engine="fused", output_size=4, **kwargs))
    oracle = HadamRNN(HadamRNNConfig(engine="loop", output_size=4, **kwargs))
    oracle.load_state_dict(fast.state_dict())
    x = torch.randn(8, 1000, 2)
    reference = HadamRNN(HadamRNNConfig(engine="loop", output_size=4, **kwargs)).double()
    reference.load_state_dict(fast.state_dict())
    exact = reference.states(x.double())
    for model in (fast, oracle):
        drift = (model.states(x).double() - exact).abs().max() / exact.abs().max()
        assert drift < 5e-5, float(drift)
    kernel_model = HadamRNN(HadamRNNConfig(engine="kernel", output_size=4, **kwargs))
    kernel_model.load_state_dict(fast.state_dict())
    assert (kernel_model.states(x).double() - exact).abs().max() / exact.abs().max() < 5e-5


@pytest.mark.parametrize("readout, vocab, features", [("last", None, 2), ("all", None, 10), ("last", 200, 16)])
def test_float32_gradients_at_t1000_drift_no_more_than_the_loops(readout, vocab, features):
    """The backward pass walks the states back from h_T instead of storing them; in float32 that
    adds a rounding gap. Measured (n = 128, T = 1000): every gradient within 1e-4 to 4e-4 of float64,
    as close as the loop's own gradients."""
    kwargs = dict(readout=readout, hidden_size=128, input_size=features, vocab_size=vocab, output_size=4)
    torch.manual_seed(0)
    models = {engine: HadamRNN(HadamRNNConfig(engine=engine, **kwargs)) for engine in ("fused", "loop")}
    models["loop"].load_state_dict(models["fused"].state_dict())
    reference = HadamRNN(HadamRNNConfig(engine="loop", **kwargs)).double()
    reference.load_state_dict(models["fused"].state_dict())
    x = torch.randint(0, vocab, (8, 1000)) if vocab else torch.randn(8, 1000, features)

    def gradients(model, inputs):
        return torch.autograd.grad(model(inputs).square().mean(), list(model.parameters()))

    exact = gradients(reference, x if vocab else x.double())
    drift = {engine: [float((g.double() - e).abs().max() / e.abs().max()) for g, e in zip(gradients(model, x), exact)]
             for engine, model in models.items()}
    for fused_drift, loop_drift in zip(drift["fused"], drift["loop"]):
        assert fused_drift <= max(3 * loop_drift, 1e-4), drift


@pytest.mark.parametrize("block", [None, 4])
def test_recurrence_primitive_against_dense_powers(block):
    n, steps = 16, 12
    p = SignedHadamard(n, block).double()
    u = torch.randn(n, dtype=torch.float64, requires_grad=True)
    z = torch.randn(steps, 3, n, dtype=torch.float64, requires_grad=True)
    states = signed_hadamard_recurrence(p, u, z.transpose(0, 1)).transpose(0, 1)
    W = p(u.detach())
    expected = torch.stack([sum(z[j] @ torch.linalg.matrix_power(W, t - j).T for j in range(t + 1))
                            for t in range(steps)])
    assert torch.allclose(states, expected, atol=1e-12)
    assert torch.autograd.gradcheck(lambda zz: signed_hadamard_recurrence(p, u.detach(), zz), (z,))
    assert torch.autograd.gradcheck(lambda zz: signed_hadamard_recurrence(p, u.detach(), zz, last_only=True), (z,))


def test_auto_rule():
    floats = torch.zeros(100, 784, 1)
    assert choose_engine("last", floats, None) == "kernel"
    assert choose_engine("all", floats, None) == "fused"
    assert choose_engine("last", torch.zeros(2, 10, 8), None) == "fused"  # d + 1 >= B
    assert choose_engine("last", torch.zeros(100, 500, dtype=torch.long), torch.zeros(10, 4)) == "fused"


def test_kernel_refuses_what_it_cannot_compute_and_unknown_engines():
    p = SignedHadamard(8)
    u = torch.randn(8)
    with pytest.raises(ValueError, match="readout='last'"):
        recur("kernel", p, u, torch.randn(2, 3, 1), torch.randn(8, 1), torch.zeros(8), "all")
    with pytest.raises(ValueError, match="choose one of"):
        recur("warp", p, u, torch.randn(2, 3, 1), torch.randn(8, 1), torch.zeros(8), "last")


def test_engines_train_identically_for_a_few_adam_steps():
    """Same data, same init: the fused engine's training trajectory follows the loop's (float64)."""
    models = {engine: _model(engine, readout="all", hidden_size=16) for engine in ("loop", "fused")}
    models["fused"].load_state_dict(models["loop"].state_dict())
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(4, 20, 3, generator=g, dtype=torch.float64), torch.randint(0, 4, (4, 20), generator=g)
    for model in models.values():
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), (_, b) in zip(models["loop"].named_parameters(), models["fused"].named_parameters()):
        assert torch.allclose(a, b, atol=1e-9), name


@pytest.mark.parametrize("readout, vocab", [("last", None), ("all", None), ("last", 30)])
def test_torch_fallback_path_matches_the_loop(monkeypatch, readout, vocab):
    """The non-CPU path (plain torch steps, for GPUs) is exercised here on the CPU."""
    import hadamrnn.engine as engine

    monkeypatch.setattr(engine, "_native", lambda tensor: False)
    kwargs = dict(readout=readout, block_size=8, vocab_size=vocab, hidden_size=32)
    fast, oracle = _fast_and_loop("fused", **kwargs)
    inputs = _inputs(fast.config, 4, 50, torch.Generator().manual_seed(2))
    _assert_matches_loop(fast, oracle, inputs)
