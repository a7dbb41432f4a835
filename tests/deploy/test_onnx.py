"""``export --target onnx``: every family as an ONNX graph whose logits in onnxruntime equal PyTorch's,
with the input transform inside the graph; ``predict --runtime onnx`` gives the other runtimes' verdicts."""

import copy
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hadamrnn.cli import main
from hadamrnn.data import TaskInfo
from hadamrnn.deploy.predict import open_predictor
from hadamrnn.models import FAMILIES
from hadamrnn.preprocess import InputTransform
from hadamrnn.train import build_model, fit, load_config, load_trained
from hadamrnn.train.config import from_dict

pytest.importorskip("onnxruntime", reason="pip install 'hadamrnn[onnx]'")
from hadamrnn.deploy.onnx import export_onnx, onnx_logits  # noqa: E402

EXTRA = {"ornn-quantized": {"recurrent_bits": 1}, "fastgrnn": {"w_rank": 2, "u_rank": 3, "bits": 8, "output_bits": 4},
         "hadamrnn": {"block_size": 4}}
FEATURES = InputTransform("features", offset=(1.5, -2.0, 0.25), divisor=(2.0, 0.5, 3.0))
ORDERED = InputTransform("features", offset=(0.0,), divisor=(255.0,), order=(4, 0, 3, 1, 2, 6, 5))


def _model(family: str, info: TaskInfo, seed: int = 0):
    model_keys = {"name": family, "hidden_size": 16, **EXTRA.get(family, {})}
    if info.vocab_size is not None:
        model_keys["embedding_dim"] = 5
    torch.manual_seed(seed)
    model = build_model(from_dict({"data": {"name": "copy"}, "model": model_keys}), info).eval()
    with torch.no_grad():  # away from the initialisation (zero biases, identity-like starts)
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _torch_logits(model, x, dtype=torch.float64):
    model = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        return model(torch.from_numpy(x) if x.dtype == np.int64 else torch.from_numpy(x).to(dtype)).numpy()


def _check(model, info, raw, model_inputs, tmp_path, float64=True):
    """ONNX logits against the PyTorch model's: to 1e-5 of the largest logit in float32 (the model as
    trained), the same classes, and (short sequences) to 1e-6 of PyTorch in float64, which
    quantizes the weights again in float64, a float32 rounding away from the graph's."""
    logits, _ = onnx_logits(export_onnx(model, info, tmp_path / "model.onnx"))
    ours = logits(raw)
    float32 = _torch_logits(model, model_inputs, torch.float32)
    assert ours.shape == float32.shape
    scale = max(1.0, float(np.abs(float32).max()))
    if float64:
        assert np.abs(ours - float32).max() <= 1e-5 * scale
    else:  # real sequences: where float32's own rounding is larger, the float64 model is the reference
        # (pretrained:har6-mcu-fastgrnn: its hard gates at 1 keep every rounding of the memory term, and
        # its float32 and float64 logits part by 2.2e-5 of the largest on HAR-6; ONNX is 4e-7 from float64)
        assert (np.abs(ours - float32).max() <= 1e-5 * scale
                or np.abs(ours - _torch_logits(model, model_inputs)).max() <= 1e-6 * scale)
    if ours.shape[-1] > 1:
        top = np.sort(float32, axis=-1)
        clear = top[..., -1] - top[..., -2] > 1e-4 * scale  # a near tie may go either way
        assert (ours.argmax(-1) == float32.argmax(-1))[clear].all()
    if float64:
        assert np.abs(ours - _torch_logits(model, model_inputs)).max() <= 1e-6 * scale


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("readout", ["last", "all"])
def test_feature_models_with_their_transform(family, readout, tmp_path):
    info = TaskInfo("t", num_classes=4, loss="ce" if readout == "last" else "ce_all", input_size=3,
                    transform=FEATURES.to_dict())
    model = _model(family, info)
    raw = np.random.default_rng(0).normal(2, 3, (5, 11, 3)).astype(np.float32)
    _check(model, info, raw, FEATURES.features(raw), tmp_path)


def test_fastgrnn_with_hard_activations(tmp_path):
    info = TaskInfo("t", num_classes=4, loss="ce", input_size=3, transform=FEATURES.to_dict())
    model = _model("fastgrnn", info)
    model.activations = "hard"
    raw = np.random.default_rng(1).normal(2, 3, (5, 11, 3)).astype(np.float32)
    _check(model, info, raw, FEATURES.features(raw), tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("steps", [4, 6, 9])
def test_feature_sequences_are_cut_to_their_last_steps_and_pre_padded(family, steps, tmp_path):
    padded = InputTransform("features", offset=(1.5, -2.0, 0.25), divisor=(2.0, 0.5, 3.0), length=6)
    info = TaskInfo("t", num_classes=4, loss="ce", input_size=3, transform=padded.to_dict())
    model = _model(family, info, seed=3)
    raw = np.random.default_rng(3).normal(2, 3, (5, steps, 3)).astype(np.float32)
    _check(model, info, raw, padded.features(raw), tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_fixed_step_order_and_a_binary_read_out(family, tmp_path):
    info = TaskInfo("t", num_classes=2, loss="bce", input_size=1, transform=ORDERED.to_dict())
    model = _model(family, info, seed=1)
    raw = np.random.default_rng(1).integers(0, 256, (4, 7, 1)).astype(np.float32)
    _check(model, info, raw, ORDERED.features(raw), tmp_path)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("keep", ["last", "first"])
def test_token_rows_of_different_lengths_are_cut_and_padded_row_by_row(family, keep, tmp_path):
    transform = InputTransform("tokens", length=6, keep=keep)
    info = TaskInfo("t", num_classes=3, loss="ce", vocab_size=20, transform=transform.to_dict())
    model = _model(family, info, seed=2)
    rng = np.random.default_rng(2)
    rows = [rng.integers(1, 20, size) for size in (0, 1, 5, 6, 7, 9, 12)]  # empty, shorter, equal and longer
    width = 12
    raw = np.array([np.concatenate([np.zeros(width - len(r), np.int64), r]) for r in rows])  # pre-padded batch
    _check(model, info, raw, transform.tokens(rows), tmp_path)
    _check(model, info, raw[:, -5:], transform.tokens([r[-5:] for r in rows]), tmp_path)  # a batch narrower than 6


def test_fixed_point_models_are_refused_with_the_way_out(tmp_path):
    info = TaskInfo("t", num_classes=2, loss="ce", input_size=2)
    model = build_model(from_dict({"data": {"name": "copy"}, "model": {"hidden_size": 8, "state_bits": 8}}), info)
    with pytest.raises(ValueError, match="export it with --target c"):
        export_onnx(model, info, tmp_path / "model.onnx")


def test_predict_onnx_answers_as_the_numpy_runtime_and_refuses_alike(tmp_path, capsys):
    sets = ["data.length=24", "data.train_samples=32", "data.val_samples=16", "data.test_samples=16",
            "data.batch_size=16", "model.hidden_size=8"]
    fit(load_config(None, sets), tmp_path / "run", progress=False)
    assert main(["export", str(tmp_path / "run"), "--target", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "m.hrnn")]) == 0
    lines = [" ".join(str(v) for v in np.eye(10)[np.random.default_rng(k).integers(0, 10, 24)].reshape(-1))
             for k in range(5)]
    data = ("\n".join(lines) + "\n1e39 " + " ".join(["0"] * 239) + "\n").encode()  # the last line saturates
    onnx, numpy_ = open_predictor(tmp_path / "m.onnx", "onnx"), open_predictor(tmp_path / "m.hrnn", "numpy")
    ours, theirs = list(onnx.run(io.BytesIO(data))), list(numpy_.run(io.BytesIO(data)))
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        a, b = np.array(a.split(), float), np.array(b.split(), float)
        scale = max(1.0, float(np.abs(b[1:]).max()))  # printed to 6 significant digits
        assert a[0] == b[0] and np.allclose(a[1:], b[1:], rtol=1e-5, atol=1e-6 * scale) and np.isfinite(a).all()
    bad = io.BytesIO(lines[0].encode() + b"\n1 2 x\n")
    with pytest.raises(Exception, match="line 2: not a decimal number: 'x'"):
        list(onnx.run(bad))
    (tmp_path / "in.txt").write_text(lines[0] + "\n")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "in.txt"), "--runtime", "onnx"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ours[0]  # a run directory, exported on the fly
    with pytest.raises(ValueError, match="--runtime onnx runs .onnx files"):
        open_predictor(tmp_path / "m.hrnn", "onnx")


def test_the_shipped_models_on_their_test_split(real_data):
    """The float pretrained models on 200 sequences of the real test split (pMNIST: 784 steps): ONNX
    logits equal PyTorch's (measured: 3e-7 to 3e-6 of the largest logit; har6-q8 has fixed-point
    states: refused, tested above)."""
    from hadamrnn import pretrained
    from hadamrnn.data import DATASETS
    from hadamrnn.train import load_splits

    for name in pretrained.names():
        model, config, info = load_trained(f"pretrained:{name}")
        if getattr(model, "fixed_point", None) is not None:
            continue
        folders = sorted({f.path.split("/")[0] for f in DATASETS[config.data.name].files})
        test = load_splits(config, real_data(*folders)).test
        raw = test.x[:200].numpy().astype(np.float32)
        inputs = test.batch(torch.arange(200))[0].numpy()
        with tempfile.TemporaryDirectory() as folder:
            _check(model, info, raw, inputs, Path(folder), float64=False)
