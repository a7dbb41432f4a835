"""Every model family: shapes, sizes by hand, the properties each promises, fast paths against loops."""

import math

import pytest
import torch
import torch.nn.functional as F

from hadamrnn.engine import dense_recurrence
from hadamrnn.models import FAMILIES, Task, build_model, model_options
from hadamrnn.options import OptionError
from hadamrnn.size import model_size_bits

NAMES = list(FAMILIES)


def _model(name, task, **options):
    torch.manual_seed(0)
    return build_model(model_options({"name": name, "hidden_size": 16, **options}), task)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("vocab", [None, 30])
def test_every_family_takes_both_input_kinds_and_read_outs(name, readout, vocab):
    task = Task(input_size=3, output_size=5, vocab_size=vocab, readout=readout)
    model = _model(name, task)
    x = torch.randint(0, 30, (4, 7)) if vocab else torch.randn(4, 7, 3)
    out = model(x)
    assert out.shape == ((4, 5) if readout == "last" else (4, 7, 5))
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p is not getattr(
        model, "embedding", None)), name


def test_a_name_and_a_hidden_size_suffice_and_foreign_keys_are_refused():
    for name in NAMES:
        assert model_options({"name": name, "hidden_size": 64}).name == name
    with pytest.raises(OptionError, match=r"unknown key model.block_size.*model.name 'lstm' takes no other keys"):
        model_options({"name": "lstm", "block_size": 4})
    with pytest.raises(OptionError, match=r"model.name: 'rnn' is not a model family"):
        model_options({"name": "rnn"})
    assert model_options({}).name == "hadamrnn"  # existing configs keep working


def test_cyclic_signs_are_refused_where_their_eigenvalues_would_take_minutes():
    assert model_options({"hidden_size": 4096, "block_size": 64, "sign_init": "cyclic"}).sign_init == "cyclic"
    with pytest.raises(OptionError, match=r"model.sign_init: 'cyclic' .* 4096 x 4096 block .* model.block_size <= 2048"):
        model_options({"hidden_size": 4096, "sign_init": "cyclic"})
    with pytest.raises(OptionError, match=r"model.sign_init: 'orthogonal'"):
        model_options({"sign_init": "orthogonal"})


def test_sizes_in_bits_by_hand():
    task = Task(input_size=3, output_size=5)
    n, d, c = 16, 3, 5
    sizes = {name: model_size_bits(_model(name, task))["total"] for name in NAMES}
    assert sizes["hadamrnn"] == n + (4 * n * d + 32) + 32 * n + (4 * c * n + 32) + 32 * c
    assert sizes["ornn"] == 32 * (n * n + n * d + n + c * n + c)
    assert sizes["ornn-quantized"] == n * n + (4 * n * d + 32) + 32 * n + (4 * c * n + 32) + 32 * c  # q = 1
    assert sizes["lstm"] == 32 * (4 * n * (d + n) + 8 * n + c * n + c)
    assert sizes["gru"] == 32 * (3 * n * (d + n) + 6 * n + c * n + c)
    assert sizes["fastgrnn"] == 32 * (n * d + n * n + 2 * n + 2 + c * n + c)
    low_rank = _model("fastgrnn", task, w_rank=2, u_rank=4, bits=4)
    assert model_size_bits(low_rank)["total"] == ((4 * n * 2 + 32) + (4 * 2 * d + 32) + (4 * n * 4 + 32)
                                                  + (4 * 4 * n + 32) + 32 * (2 * n + 2 + c * n + c))
    eight_bit_readout = _model("fastgrnn", task, u_rank=4, bits=8, output_bits=8)
    assert model_size_bits(eight_bit_readout)["V"] == 8 * c * n + 32
    v = eight_bit_readout.output.quantized_weight()
    levels = v / (v.abs().max() / 127)
    assert torch.allclose(levels, levels.round(), atol=1e-4) and levels.abs().max().round() == 127  # 8-bit levels
    quantized = _model("ornn-quantized", task, recurrent_bits=3)
    assert model_size_bits(quantized)["W"] == 3 * n * n + 32
    for name in NAMES:  # every parameter counted once (quantized tensors at fewer bits)
        model = _model(name, task)
        entries = sum(p.numel() for p in model.parameters())
        assert sum(r.entries for r in model.size_rows()) == entries - (n if name == "hadamrnn" else 0) + (
            n * n if name == "hadamrnn" else 0), name  # HadamRNN's row W stands for n×n entries stored as n bits


def test_ornn_stays_orthogonal_through_50_adam_steps():
    task = Task(input_size=2, output_size=3)
    model = _model("ornn", task, hidden_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(8, 20, 2), torch.randint(0, 3, (8,))
    for _ in range(50):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    W = model.recurrent_weight().detach()
    assert (W.T @ W - torch.eye(32)).abs().max() < 1e-5


@pytest.mark.parametrize("bits, distinct", [(1, 2), (2, 4), (3, 8)])
def test_quantized_ornn_w_has_at_most_2_to_the_q_values(bits, distinct):
    model = _model("ornn-quantized", Task(2, 3), hidden_size=32, recurrent_bits=bits)
    W = model.recurrent_weight().detach()
    assert len(torch.unique(W)) <= distinct
    if bits == 1:
        assert torch.allclose(torch.unique(W), torch.tensor([-1, 1]) / math.sqrt(32))
    model.recurrent_weight().sum().backward()  # the straight-through gradient reaches the orthogonal parameters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.recurrent.parameters())


@pytest.mark.parametrize("activations", ["smooth", "hard"])
def test_fastgrnn_equals_the_equations_step_by_step(activations):
    torch.manual_seed(2)
    model = _model("fastgrnn", Task(3, 4), w_rank=2, bits=None, activations=activations).double()
    with torch.no_grad():
        model.zeta_raw.fill_(0.3)
        model.nu_raw.fill_(-1.0)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    W = model.W.factors[1].weight @ model.W.factors[0].weight  # (n, d) = W_1 W_2
    U = model.U.factors[0].weight
    zeta, nu = 1 / (1 + math.exp(-0.3)), 1 / (1 + math.exp(1.0))
    h = torch.zeros(2, 16, dtype=torch.float64)
    if activations == "hard":  # EdgeML's quantSigm and quantTanh
        sigmoid, tanh = (lambda v: torch.clamp((v + 1) / 2, 0, 1)), (lambda v: torch.clamp(v, -1, 1))
    else:
        sigmoid, tanh = torch.sigmoid, torch.tanh
    x = 3 * x  # reach both ends of the hard forms
    hits = 0
    for t in range(9):
        z = sigmoid(x[:, t] @ W.T + h @ U.T + model.bias_gate)
        candidate = tanh(x[:, t] @ W.T + h @ U.T + model.bias_update)
        hits += int(((z == 0) | (z == 1)).any() and (candidate.abs() == 1).any())
        h = (zeta * (1 - z) + nu) * candidate + z * h
    expected = h @ model.output.weight.T + model.output.bias
    assert torch.allclose(model(x), expected, atol=1e-12)
    assert activations == "smooth" or hits > 0


@pytest.mark.parametrize("steps", [1, 2, 50])
def test_dense_kernel_equals_its_step_loop_forward_and_backward(steps):
    g = torch.Generator().manual_seed(steps)
    W = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))[0].requires_grad_()
    U = torch.randn(12, 2, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, steps, 2, generator=g, dtype=torch.float64, requires_grad=True)
    results = {}
    for engine in ("loop", "kernel", "auto"):
        h = dense_recurrence(W, x, U, b, last_only=True, engine=engine)
        grads = torch.autograd.grad(h.sin().sum(), (W, U, b, x), allow_unused=True)  # T = 1 does not use W
        results[engine] = (h, *(g if g is not None else torch.zeros_like(p) for g, p in zip(grads, (W, U, b, x))))
    for engine in ("kernel", "auto"):
        for got, expected in zip(results[engine], results["loop"]):
            assert torch.allclose(got, expected, atol=1e-10), engine
    with pytest.raises(ValueError, match="only the last state"):
        dense_recurrence(W, x, U, b, last_only=False, engine="kernel")


@pytest.mark.parametrize("orthogonal", [True, False])
@pytest.mark.parametrize("steps", [1, 2, 40])
@pytest.mark.parametrize("last_only", [False, True])
def test_the_fused_dense_recurrence_equals_its_step_loop_forward_and_backward(orthogonal, steps, last_only):
    g = torch.Generator().manual_seed(steps)
    W = torch.randn(12, 12, generator=g, dtype=torch.float64)
    W = (torch.linalg.qr(W)[0] if orthogonal else torch.sign(W) / 12 ** 0.5).requires_grad_()  # binary: not orthogonal
    U = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, steps, 3, generator=g, dtype=torch.float64, requires_grad=True)
    results = {}
    for engine in ("loop", "fused"):
        h = dense_recurrence(W, x, U, b, last_only=last_only, engine=engine)
        weights = torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=h.dtype)
        grads = torch.autograd.grad((h * weights).sum(), (W, U, b, x), allow_unused=True)  # T = 1 does not use W
        results[engine] = (h, *(g if g is not None else torch.zeros_like(p) for g, p in zip(grads, (W, U, b, x))))
    for name, got, expected in zip(("h", "W", "U", "b", "x"), results["fused"], results["loop"]):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10, msg=name)
    assert dense_recurrence(W, x, U, b, last_only=last_only).shape == results["loop"][0].shape  # auto


@pytest.mark.parametrize("name", ["ornn", "ornn-quantized", "lstm", "gru", "fastgrnn"])
def test_every_baseline_trains_checkpoints_and_evaluates_through_the_loop(tmp_path, name):
    from hadamrnn.train import evaluate, fit, load_config, load_trained

    config = load_config(None, [f"model.name={name}", "model.hidden_size=8", "data.length=24",
                                "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
                                "data.batch_size=16"])
    result = fit(config, tmp_path / name, progress=False)
    model, _, info = load_trained(tmp_path / name)
    from hadamrnn.data import load_data

    test = load_data("copy", length=24, train_samples=1, val_samples=1, test_samples=16, seed=0).test
    assert evaluate(model, test, info, 16)["metric"] == pytest.approx(result.results["test_metric"], rel=1e-6)
