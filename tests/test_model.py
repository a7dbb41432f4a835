import math

import pytest
import torch
import torch.nn.functional as F

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.data import CopyTask, copy_baseline
from hadamrnn.recurrent import distinct_eigenvalues


@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("block", [None, 4])
def test_output_shapes(readout, tokens, block):
    config = HadamRNNConfig(input_size=6, hidden_size=16, output_size=3, block_size=block,
                            vocab_size=50 if tokens else None, readout=readout)
    model = HadamRNN(config)
    inputs = torch.randint(0, 50, (4, 7)) if tokens else torch.randn(4, 7, 6)
    expected = (4, 3) if readout == "last" else (4, 7, 3)
    assert model(inputs).shape == expected
    assert model.states(inputs).shape == expected[:-1] + (16,)


def test_recurrence_equals_hand_unrolled_three_steps_and_carries_pre_activations():
    model = HadamRNN(HadamRNNConfig(input_size=3, hidden_size=8, output_size=2, readout="all")).double()
    with torch.no_grad():
        model.input.bias.normal_()  # b is zero at init; make it matter
    w = model.effective_weights()
    W, U, b, V, c = w["W"], w["U"], w["b"], w["V"], w["c"]
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    h1 = x[:, 0] @ U.T + b
    h2 = h1 @ W.T + x[:, 1] @ U.T + b  # the carried state is h1 itself, not relu(h1)
    h3 = h2 @ W.T + x[:, 2] @ U.T + b
    expected_states = torch.stack([h1, h2, h3], dim=1)
    assert (expected_states < 0).any()  # relu would have changed something
    assert torch.allclose(model.states(x), expected_states, atol=1e-12)
    assert torch.allclose(model(x), F.relu(expected_states) @ V.T + c, atol=1e-12)


def test_effective_weights_rebuild_the_forward_pass_with_embedding():
    model = HadamRNN(HadamRNNConfig(input_size=5, hidden_size=16, output_size=4, block_size=8,
                                    vocab_size=20)).double()
    w = model.effective_weights()
    assert set(w) == {"W", "U", "b", "V", "c", "embedding"}
    assert w["W"].shape == (16, 16) and w["U"].shape == (16, 5) and w["V"].shape == (4, 16)
    assert w["U"].unique().numel() <= 16 and w["V"].unique().numel() <= 16
    tokens = torch.randint(0, 20, (3, 6))
    tokens[:, :2] = 0  # pre-padding
    h = torch.zeros(3, 16, dtype=torch.float64)
    for t in range(6):
        h = h @ w["W"].T + w["embedding"][tokens[:, t]] @ w["U"].T + w["b"]
    assert torch.allclose(model(tokens), F.relu(h) @ w["V"].T + w["c"], atol=1e-12)


def test_padding_embedding_row_is_zero_and_gets_no_gradient():
    model = HadamRNN(HadamRNNConfig(input_size=4, hidden_size=8, output_size=2, vocab_size=10))
    assert torch.equal(model.embedding.weight[0], torch.zeros(4))
    tokens = torch.tensor([[0, 0, 3, 4]])
    model(tokens).sum().backward()
    assert torch.equal(model.embedding.weight.grad[0], torch.zeros(4))


def test_every_parameter_receives_a_gradient():
    model = HadamRNN(HadamRNNConfig(input_size=3, hidden_size=16, output_size=2, vocab_size=12))
    model(torch.randint(1, 12, (2, 5))).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs_get_clear_errors():
    model = HadamRNN(HadamRNNConfig(input_size=1, hidden_size=8, output_size=2))
    with pytest.raises(ValueError, match=r"x.unsqueeze\(-1\)"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"\(B, T, 1\)"):
        model(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.randn(2, 0, 1))
    tok = HadamRNN(HadamRNNConfig(input_size=4, hidden_size=8, output_size=2, vocab_size=10))
    with pytest.raises(ValueError, match="token ids"):
        tok(torch.randn(2, 5, 4))


@pytest.mark.parametrize("field, value, message", [
    ("hidden_size", 100, "64 and 128"),
    ("block_size", 32, "exceeds"),
    ("input_bits", 1, "input_bits"),
    ("readout", "first", "readout"),
    ("engine", "warp", "engine"),
    ("output_size", 0, "output_size"),
    ("vocab_size", 1, "vocab_size"),
])
def test_config_validation(field, value, message):
    values = dict(input_size=1, hidden_size=16, output_size=2)
    values[field] = value
    with pytest.raises(ValueError, match=message):
        HadamRNNConfig(**values)


def test_config_dict_round_trip_and_unknown_keys():
    config = HadamRNNConfig(input_size=2, hidden_size=32, output_size=5, block_size=8, readout="all")
    assert HadamRNNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="hiden_size.*valid keys"):
        HadamRNNConfig.from_dict({"hiden_size": 32})


def test_full_precision_u_v_when_bits_none():
    model = HadamRNN(HadamRNNConfig(input_size=3, hidden_size=8, output_size=2, input_bits=None, output_bits=None))
    w = model.effective_weights()
    assert torch.equal(w["U"], model.input.weight.detach())
    assert torch.equal(w["V"], model.output.weight.detach())


def test_learns_short_copy_task_below_memoryless_baseline():
    """n=128, 4-bit U/V, T=30: budget 300 Adam steps of batch 64 (lr 1e-3), about 5 s on 2 CPU cores."""
    torch.manual_seed(0)
    length = 30
    model = HadamRNN(HadamRNNConfig(input_size=10, hidden_size=128, output_size=9, readout="all"))
    train = torch.utils.data.DataLoader(CopyTask(300 * 64, length, seed=1), batch_size=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in train:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y = next(iter(torch.utils.data.DataLoader(CopyTask(1024, length, seed=2), batch_size=1024)))
    with torch.no_grad():
        test_loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    baseline = copy_baseline(length)
    assert math.isclose(baseline, 10 * math.log(8) / 30)
    assert test_loss < 0.5 * baseline, (test_loss, baseline)


@pytest.mark.parametrize("block", [None, 4])
def test_state_noise_is_the_per_step_noise_of_the_recurrence_in_closed_form(block):
    """Gaussian noise of std σ added at every step of the step-by-step recurrence reaches the last
    state as N(0, σ² T) per unit (W orthogonal): what training with state_noise adds in one go."""
    sigma, steps, rows = 0.3, 25, 4000
    config = HadamRNNConfig(input_size=2, hidden_size=16, output_size=3, block_size=block)
    model = HadamRNN(config).double()
    W = model.effective_weights()["W"]
    h = torch.zeros(rows, 16, dtype=torch.float64)
    for _ in range(steps):
        h = h @ W.T + sigma * torch.randn(rows, 16, dtype=torch.float64)
    expected = sigma * math.sqrt(steps)
    assert abs(float(h.std()) / expected - 1) < 0.03
    assert float((h.T @ h / rows - expected ** 2 * torch.eye(16)).abs().max()) < 0.15 * expected ** 2  # independent units

    noisy = HadamRNN(HadamRNNConfig(input_size=2, hidden_size=16, output_size=3, block_size=block,
                                    state_noise=sigma)).double()
    noisy.load_state_dict(model.state_dict())
    x = torch.randn(5, steps, 2, dtype=torch.float64)
    torch.manual_seed(3)
    trained = noisy.train()(x)
    torch.manual_seed(3)
    last = model.states(x)
    by_hand = model.output(torch.relu(last + torch.randn_like(last) * expected))
    torch.testing.assert_close(trained, by_hand)
    torch.testing.assert_close(noisy.eval()(x), model(x))  # no noise outside training


@pytest.mark.parametrize("kwargs, message", [
    (dict(state_noise=-0.1), "state_noise must be a finite number >= 0"),
    (dict(state_noise=float("nan")), "state_noise must be a finite number >= 0"),
    (dict(state_noise=0.1, readout="all"), "state_noise needs a many-to-one model"),
    (dict(state_noise=0.1, state_bits=8), "with state_bits the training rounds exactly"),
    (dict(sign_init="orthogonal"), "sign_init must be one of"),
])
def test_state_noise_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HadamRNNConfig(input_size=1, hidden_size=8, output_size=2, **kwargs)


@pytest.mark.parametrize("block", [None, 16])
def test_cyclic_sign_init_changes_only_the_signs_of_w(block):
    """Same seed, same weights everywhere but W's signs, so that random and cyclic runs pair up."""
    config = dict(input_size=1, hidden_size=64, output_size=10, block_size=block)
    torch.manual_seed(5)
    plain = HadamRNN(HadamRNNConfig(**config))
    after_plain = torch.randn(3)
    torch.manual_seed(5)
    cyclic = HadamRNN(HadamRNNConfig(**config, sign_init="cyclic"))
    assert torch.equal(torch.randn(3), after_plain)  # no extra draw from the global RNG
    for (name, a), b in zip(plain.state_dict().items(), cyclic.state_dict().values()):
        if name == "recurrent.parametrizations.weight.original":
            torch.testing.assert_close(a.abs(), b.abs(), rtol=0, atol=1e-30)
        elif not name.endswith("reference"):
            assert torch.equal(a, b), name
    signs = cyclic.recurrence.signs(cyclic.latent).detach()
    assert distinct_eigenvalues(signs, block) > distinct_eigenvalues(plain.recurrence.signs(plain.latent).detach(), block)
