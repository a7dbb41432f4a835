"""The knobs a fair comparison needs (docs/baselines.md): a learning rate of its own for every
family's recurrent weight, the ORNN's orthogonal initialisations, gradient-norm clipping."""

import math

import pytest
import torch

from hadamrnn.data import task_info
from hadamrnn.models.ornn import orthogonal_init
from hadamrnn.train import build_model, fit, load_config, load_trained

SMALL = ["data.length=24", "data.train_samples=64", "data.val_samples=16", "data.test_samples=16",
         "data.batch_size=16", "model.hidden_size=16", "optim.epochs=2", "optim.lr=0.01"]
FAMILIES = ["hadamrnn", "ornn", "ornn-quantized", "lstm", "gru", "fastgrnn"]


def _recurrent_weight(model):
    """The recurrent matrix the model uses, as a tensor (W of every family)."""
    if hasattr(model, "recurrent_weight"):
        return model.recurrent_weight().detach().clone()
    return torch.cat([p.detach().reshape(-1) for p in model.recurrent_parameters()]).clone()


@pytest.mark.parametrize("family", FAMILIES)
def test_recurrent_lr_zero_leaves_every_familys_w_bit_identical(tmp_path, family):
    config = load_config(None, SMALL + [f"model.name={family}", "optim.recurrent_lr=0"])
    torch.manual_seed(config.optim.seed)  # as fit does before building the model
    start = build_model(config, task_info("copy"))
    fit(config, tmp_path / "run", progress=False)
    trained = load_trained(tmp_path / "run" / "checkpoints" / "last.safetensors")[0]
    assert torch.equal(_recurrent_weight(trained), _recurrent_weight(start))
    if family == "hadamrnn":
        assert torch.equal(trained.effective_weights()["W"], start.effective_weights()["W"])
    moved = [name for name, p in trained.named_parameters()
             if not torch.equal(p, dict(start.named_parameters())[name])]
    assert moved  # the rest trained


def test_latent_lr_stays_hadamrnns_name_and_names_the_general_key(tmp_path):
    with pytest.raises(ValueError, match="set optim.recurrent_lr"):
        fit(load_config(None, SMALL + ["model.name=gru", "optim.latent_lr=0"]), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="set one"):
        fit(load_config(None, SMALL + ["optim.latent_lr=0", "optim.recurrent_lr=0"]), tmp_path / "b", progress=False)


@pytest.mark.parametrize("kind", ["haar", "henaff"])
def test_orthogonal_initialisations_are_orthogonal_and_spread_their_spectrum(kind):
    torch.manual_seed(0)
    w = orthogonal_init(kind, 512).double()
    assert torch.linalg.norm(w.T @ w - torch.eye(512)) < 1e-5
    angles = torch.angle(torch.linalg.eigvals(w)).sort().values
    assert torch.allclose(torch.abs(torch.linalg.eigvals(w)), torch.ones(512, dtype=torch.float64), atol=1e-6)
    # eigenvalue angles spread evenly over (-π, π]: the largest distance of their empirical CDF from the
    # uniform one (Kolmogorov–Smirnov), below its 1% critical value for 512 draws, 1.63/sqrt(512)
    uniform = (angles + math.pi) / (2 * math.pi)
    empirical = torch.arange(1, 513, dtype=torch.float64) / 512
    assert (empirical - uniform).abs().max() < 1.63 / math.sqrt(512)
    if kind == "henaff":  # 2×2 rotation blocks: W is block diagonal
        assert torch.count_nonzero(w) == 4 * 256


def test_an_ornn_starts_at_the_initialisation_asked_for(tmp_path):
    config = load_config(None, SMALL + ["model.name=ornn", "model.init=henaff"])
    w = build_model(config, task_info("copy")).recurrent.weight.detach()
    assert torch.linalg.norm(w.T @ w - torch.eye(16)) < 1e-5 and torch.count_nonzero(w) == 4 * 8
    with pytest.raises(ValueError, match="model.init"):
        load_config(None, SMALL + ["model.name=ornn", "model.init=identity"])


def test_clipping_bounds_the_gradient_norm_of_every_step(tmp_path, monkeypatch):
    norms = []
    real = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    fit(load_config(None, SMALL), tmp_path / "free", progress=False)
    assert max(norms) > 0.05  # unclipped, the gradient is larger than the bound below
    norms.clear()
    fit(load_config(None, SMALL + ["optim.clip_norm=0.05"]), tmp_path / "clipped", progress=False)
    assert norms and max(norms) <= 0.05 * (1 + 1e-5)


@pytest.mark.parametrize("init", ["torch", "haar", "henaff"])
def test_an_ornn_resumes_bit_for_bit_from_every_initialisation(tmp_path, init):
    """A run stopped mid-epoch and resumed ends as the uninterrupted run. The Haar start used to be
    the QR decomposition's column-major (non-contiguous) matrix; with it, a resumed run parted from
    the uninterrupted one at the first step after the resume (found by the fair study's copy sweep).
    Made contiguous, it resumes exactly, as the torch and Henaff starts always did."""
    sets = ["data.length=30", "data.train_samples=256", "data.val_samples=32", "data.test_samples=32",
            "data.batch_size=32", "model.name=ornn", "model.hidden_size=16", f"model.init={init}",
            "optim.epochs=3", "optim.recurrent_lr=3e-4", "optim.lr=3e-3"]
    straight = fit(load_config(None, sets), tmp_path / "a", progress=False).results
    fit(load_config(None, sets), tmp_path / "b", progress=False, stop_after_steps=12)
    resumed = fit(None, tmp_path / "b", resume=True, progress=False).results
    assert resumed["test_metric"] == straight["test_metric"] and resumed["test_loss"] == straight["test_loss"]
    a, b = load_trained(tmp_path / "a")[0], load_trained(tmp_path / "b")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
