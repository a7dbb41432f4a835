import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig, model_size_bits
from hadamrnn.deploy import runtime
from hadamrnn.deploy.export import export_model, load_as_torch
from hadamrnn.deploy.fileformat import ModelFileError, pack_bits, unpack_bits

CONFIGS = [
    dict(input_size=3, hidden_size=64, output_size=5, readout="all"),
    dict(input_size=3, hidden_size=64, output_size=5, block_size=8, input_bits=3, output_bits=6),
    dict(input_size=6, hidden_size=32, output_size=1, vocab_size=50, block_size=4),
    dict(input_size=2, hidden_size=16, output_size=3, input_bits=None, output_bits=None),
]


def _model(kwargs):
    torch.manual_seed(3)
    model = HadamRNN(HadamRNNConfig(**kwargs))
    with torch.no_grad():
        model.input.bias.normal_()
    return model


def _inputs(kwargs, rng):
    if kwargs.get("vocab_size"):
        return rng.integers(0, kwargs["vocab_size"], (4, 30))
    return rng.random((4, 30, kwargs["input_size"]))


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_round_trip_same_outputs_and_file_size(tmp_path, kwargs):
    model = _model(kwargs)
    path = tmp_path / "m.hrnn"
    size = export_model(model, path)
    data = path.read_bytes()
    header_bytes = 4 + 2 + 4 + int.from_bytes(data[6:10], "little") + 4
    assert size == len(data) == header_bytes + -(-model_size_bits(model)["total"] // 8)
    exported = runtime.load(path)
    x = _inputs(kwargs, np.random.default_rng(0))
    expected = model.double()(torch.from_numpy(x)).detach().numpy()
    assert np.abs(exported.logits(x) - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    weights = model.effective_weights()
    assert np.allclose(exported.U, weights["U"].numpy(), atol=1e-7) and np.allclose(exported.V, weights["V"].numpy(), atol=1e-7)
    rebuilt = load_as_torch(path).double()
    assert np.abs(rebuilt(torch.from_numpy(x)).detach().numpy() - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_sign_bits_reproduce_w(tmp_path):
    model = _model(CONFIGS[1])
    export_model(model, tmp_path / "m.hrnn")
    exported = runtime.load(tmp_path / "m.hrnn")
    W = model.effective_weights()["W"].double().numpy()
    dense = exported.signs[:, None] * runtime.fwht(np.eye(64), 8) / np.sqrt(8)
    assert np.allclose(dense, W, atol=1e-7)


def test_bit_packing_round_trips_every_level():
    for bits in (1, 2, 4, 7):
        low = 0 if bits == 1 else -(1 << (bits - 1))
        values = np.arange(low, 1 << (bits - 1) if bits > 1 else 2)
        assert np.array_equal(unpack_bits(pack_bits(values, bits), len(values), bits, signed=bits > 1), values)


def test_fuzzed_files_give_clear_errors_never_a_wrong_model(tmp_path):
    path = tmp_path / "m.hrnn"
    export_model(_model(CONFIGS[2]), path)
    original = path.read_bytes()
    rng = np.random.default_rng(1)
    for trial in range(300):
        data = bytearray(original)
        if trial % 2:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                position = int(rng.integers(0, len(data)))
                data[position] ^= 1 << int(rng.integers(0, 8))
        if bytes(data) == original:
            continue
        path.write_bytes(bytes(data))
        with pytest.raises(ModelFileError):
            runtime.load(path)


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "m.hrnn"
    export_model(_model(CONFIGS[0]), path)
    data = bytearray(path.read_bytes())
    data[4:6] = (99).to_bytes(2, "little")
    body = bytes(data[:-4])
    path.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    with pytest.raises(ModelFileError, match="newer"):
        runtime.load(path)


def test_runtime_imports_without_torch():
    code = "import sys, hadamrnn.deploy.runtime; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_export_and_predict_agree_across_runtimes(tmp_path, capsys):
    from hadamrnn.cli import main
    from hadamrnn.train import fit, load_config

    config = load_config(None, ["data.name=copy", "data.length=24", "data.train_samples=32", "data.val_samples=16",
                                "data.test_samples=16", "data.batch_size=16", "model.hidden_size=16", "optim.epochs=1"])
    fit(config, tmp_path / "run", progress=False)
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "m.hrnn")]) == 0
    rng = np.random.default_rng(0)
    lines = [" ".join(str(v) for v in np.eye(10)[rng.integers(0, 10, 24)].reshape(-1)) for _ in range(3)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    outputs = {}
    for name in ("numpy", "torch"):
        assert main(["predict", str(tmp_path / "m.hrnn"), str(tmp_path / "in.txt"), "--runtime", name]) == 0
        outputs[name] = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert len(outputs["numpy"]) == 3
    for a, b in zip(outputs["numpy"], outputs["torch"]):
        assert a[0] == b[0]
        assert np.allclose(np.array(a[1:], float), np.array(b[1:], float), rtol=1e-4, atol=1e-5)
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    assert main(["predict", str(tmp_path / "m.hrnn"), str(tmp_path / "bad.txt")]) == 2
    assert "not a multiple of 10" in capsys.readouterr().err
