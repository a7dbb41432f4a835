"""Integer FastGRNN: the NumPy integer runtime against the float model (hard σ and tanh), its proven
bounds against the values a step forms, the generated C (gcc, and Cortex-M4/M0 under QEMU) against
the NumPy integer runtime bit for bit, and the command line's export."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from hadamrnn.cli import main
from hadamrnn.deploy.codegen import load_integer_model, weight_bytes, write_c
from hadamrnn.deploy.integer import rshift_round
from hadamrnn.deploy.integer_fastgrnn import IntegerFastGRNN, quantize_fastgrnn
from hadamrnn.models import Task
from hadamrnn.models.fastgrnn import FastGRNN
from hadamrnn.train import load_trained

FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
INSTALL = "apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"

# name -> (Task, hidden size, W rank, U rank, V bits, state bits)
MODELS = {
    "full-16": (Task(3, 5), 16, None, None, 8, 16),
    "low-rank-16": (Task(9, 6), 16, 3, 4, 8, 16),  # sums beyond int32: int64 where the bounds say
    "low-rank-12": (Task(9, 6), 32, 4, 4, 4, 12),
    "full-8": (Task(2, 3), 8, None, None, 8, 8),
    "tokens": (Task(6, 1, vocab_size=40), 16, 2, None, 8, 12),
    "many-to-many": (Task(2, 3, readout="all"), 16, None, 3, 8, 12),
}


def _model(name: str, seed: int = 5) -> FastGRNN:
    task, n, w_rank, u_rank, v_bits, _ = MODELS[name]
    torch.manual_seed(seed)
    model = FastGRNN(task, n, w_rank, u_rank, 8, v_bits, activations="hard")
    with torch.no_grad():  # away from the initialisation: biases spread, ζ and ν not at their starts
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


def _inputs(name: str, count: int, steps: int, seed: int) -> np.ndarray:
    task = MODELS[name][0]
    rng = np.random.default_rng(seed)
    if task.vocab_size:
        return rng.integers(0, task.vocab_size, (count, steps))
    return rng.normal(0.2, 1.0, (count, steps, task.input_size))


def _integer(name: str) -> IntegerFastGRNN:
    return quantize_fastgrnn(_model(name), _inputs(name, 64, 40, 0), MODELS[name][5])


def _float_logits(model: FastGRNN, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x) if x.dtype.kind == "i" else torch.from_numpy(x).float()).double().numpy()


def _lines(x: np.ndarray) -> str:
    if x.dtype.kind == "i":
        return "".join(" ".join(str(int(v)) for v in row) + "\n" for row in x)
    return "".join(" ".join(repr(float(v)) for v in row.reshape(-1)) + "\n" for row in x)


def _saturating(name: str, integer: IntegerFastGRNN, x: np.ndarray) -> np.ndarray:
    """``x`` with rows at, and far beyond, the inputs' saturation bounds (feature models)."""
    if x.dtype.kind == "i":
        x[:2] = [[0], [MODELS[name][0].vocab_size - 1]]  # the extreme ids
        return x
    low, high = integer.limits
    x[0], x[1] = high / 2.0 ** integer.fx, low / 2.0 ** integer.fx
    x[2:4] *= 1000
    x[4, ::2], x[4, 1::2] = high / 2.0 ** integer.fx, low / 2.0 ** integer.fx
    return x


@pytest.mark.parametrize("name", MODELS)
def test_the_integer_model_follows_the_float_model(name):
    model, integer = _model(name), _integer(name)
    x = _inputs(name, 200, 40, 1)
    if x.dtype.kind == "f":  # inputs beyond the calibrated range saturate, by design: kept to the range here
        low, high = integer.limits
        x = x[((x * 2.0 ** integer.fx > low) & (x * 2.0 ** integer.fx < high)).reshape(len(x), -1).all(1)]
        assert len(x) >= 150
    expected = _float_logits(model, x)
    ours = integer.logits(x)
    assert ours.shape == expected.shape
    scale = np.abs(expected).max()
    tolerance = {16: 0.002, 12: 0.05, 8: 0.1}[integer.bits]  # of the largest logit: the states' resolution
    assert np.abs(ours - expected).max() <= tolerance * scale
    classes = (expected[..., 0] > 0) if expected.shape[-1] == 1 else expected.argmax(-1)
    assert np.mean(integer.predict(x) == classes) >= (0.97 if integer.bits >= 12 else 0.85)


@pytest.mark.parametrize("name", MODELS)
def test_every_intermediate_stays_within_its_bound(name):
    """The values of every step, formed as the module's docstring writes them, on random and
    saturating inputs, never exceed the proven bounds."""
    integer = _integer(name)
    x_int = integer.quantize_inputs(_saturating(name, integer, _inputs(name, 64, 40, 2)))
    x = integer.embedding[x_int] if integer.embedding is not None else x_int
    bounds = {bound.name: bound.max_abs for bound in integer.bounds()}
    low, high = integer.limits
    q, one = integer.gate_bits, 1 << integer.gate_bits
    seen: dict[str, int] = {}

    def see(name_: str, value: np.ndarray) -> np.ndarray:
        seen[name_] = max(seen.get(name_, 0), int(np.abs(value).max()))
        return value

    def sums(v, factors, prefix):
        if len(factors) == 2:
            v = see(f"{prefix}_inner", v @ factors[0].T)
        return see(f"{prefix}_sum", v @ factors[-1].T)

    h = np.zeros((x.shape[0], integer.hidden_size), dtype=np.int64)
    for t in range(x.shape[1]):
        w = see("w_product", rshift_round(sums(x[:, t], integer.w_factors, "w"), integer.w_pre_shift)
                * integer.w_multiplier + (1 << integer.w_shift >> 1))
        u = see("u_product", rshift_round(sums(h, integer.u_factors, "u"), integer.u_pre_shift)
                * integer.u_multiplier + (1 << integer.u_shift >> 1))
        pre = (w >> integer.w_shift) + (u >> integer.u_shift)
        see("pre", pre + integer.b_update), see("pre", pre + integer.b_gate + one)
        candidate = np.clip(pre + integer.b_update, -one, one)
        gate = np.clip(pre + integer.b_gate + one, 0, 2 * one)
        gain = (see("gain", integer.zeta * (2 * one - gate) + (1 << q)) >> (q + 1)) + integer.nu
        exponent = integer.fh + 1 - q
        product = see("mix", gain * candidate)
        mix = see("mix", (product << exponent if exponent >= 0 else rshift_round(product, -exponent))
                  + gate * h + (1 << q))
        h = np.clip(mix >> (q + 1), low, high)
    see("logit", h @ integer.v_levels.T + integer.c)
    assert set(seen) == set(bounds)
    for key, value in seen.items():
        assert value <= bounds[key], key
    assert np.array_equal(integer.states(x_int)[..., -1, :] if integer.readout == "all" else integer.states(x_int), h)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("name", MODELS)
def test_gcc_build_is_bit_exact_with_the_numpy_integer_runtime(tmp_path, name):
    integer = _integer(name)
    write_c(integer, tmp_path / "c")
    subprocess.run(["gcc", *FLAGS, "-o", str(tmp_path / "predict"), str(tmp_path / "c" / "predict.c"),
                    str(tmp_path / "c" / "hadamrnn_model.c")], check=True, capture_output=True, text=True)
    x = _saturating(name, integer, _inputs(name, 60, 40, 3))
    result = subprocess.run([str(tmp_path / "predict")], input=_lines(x), capture_output=True, text=True, check=True)
    rows = [list(map(int, line.split())) for line in result.stdout.strip().splitlines()]
    logits = integer.logits_int(integer.quantize_inputs(x))
    last = logits[:, -1] if integer.readout == "all" else logits
    assert [row[1:] for row in rows] == last.tolist()
    again = load_integer_model(tmp_path / "c" / "integer_model.npz")  # what predict --runtime numpy-int reads
    assert isinstance(again, IntegerFastGRNN)
    assert np.array_equal(again.logits_int(again.quantize_inputs(x)), logits)
    header = (tmp_path / "c" / "hadamrnn_model.h").read_text()
    for bound in integer.bounds():  # each intermediate in the type its bound allows
        assert f"typedef {bound.ctype} hrnn_{bound.name}_t;" in header
    assert weight_bytes(integer) == sum(  # the constant arrays: levels one per byte (8 bits or fewer), biases
        levels.size for levels in (*integer.w_factors, *integer.u_factors, integer.v_levels)) + sum(
        table.size * (2 if np.abs(table).max() < 2 ** 15 else 4) for table in (
            integer.b_gate + (1 << integer.gate_bits), integer.b_update, integer.c)
    ) + (0 if integer.embedding is None else integer.embedding.size * 2)


# Make targets and defines: the M4 with its DSP path (where the bounds allow it), the M4 plain, the M0.
TARGETS = {"cortex-m4": ("qemu", ""), "cortex-m4-portable": ("qemu", "-DHRNN_PORTABLE"), "cortex-m0": ("qemu-m0", "")}


@pytest.mark.skipif(any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make")),
                    reason=f"needs arm-none-eabi-gcc, qemu-system-arm and make; on Debian: {INSTALL}")
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_cortex_m_under_qemu_prints_the_numpy_integer_lines(tmp_path, capsys, name, target):
    integer = _integer(name)
    write_c(integer, tmp_path / "c")
    (tmp_path / "in.txt").write_text(_lines(_saturating(name, integer, _inputs(name, 30, 25, 4))))
    goal, defines = TARGETS[target]
    result = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), goal, f"INPUT={tmp_path / 'in.txt'}",
                             f"DEFINES={defines}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy-int"]) == 0
    expected = capsys.readouterr().out
    assert len(expected.splitlines()) == 30 and result.stdout == expected
    if target.startswith("cortex-m4"):  # SMLAD is there exactly where the bounds allow it
        header = (tmp_path / "c" / "hadamrnn_model.h").read_text()
        code = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "c" / "predict.elf")],
                              capture_output=True, text=True, check=True).stdout
        fits = "#define HRNN_DSP_W_FITS 1" in header or "#define HRNN_DSP_U_FITS 1" in header
        assert ("\tsmlad\t" in code) == (not defines and fits)


def _train(tmp_path, *overrides):
    from hadamrnn.train import fit, load_config

    config = load_config(None, ["data.name=copy", "data.length=24", "data.train_samples=32", "data.val_samples=16",
                                "data.test_samples=16", "data.batch_size=16", "model.name=fastgrnn",
                                "model.hidden_size=8", "optim.epochs=1", *overrides])
    fit(config, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_cli_exports_a_trained_fastgrnn_to_c_and_refuses_what_it_cannot(tmp_path, capsys):
    run = _train(tmp_path, "model.activations=hard", "model.bits=8", "model.output_bits=8", "model.u_rank=2")
    assert main(["export", str(run), "--target", "c", "--bits", "12", "-o", str(tmp_path / "c")]) == 0
    assert "σ and tanh piecewise-linear" in capsys.readouterr().out
    integer = load_integer_model(tmp_path / "c" / "integer_model.npz")
    assert isinstance(integer, IntegerFastGRNN) and integer.bits == 12
    sequences = np.eye(10)[np.random.default_rng(0).integers(0, 10, (5, 24))]
    (tmp_path / "in.txt").write_text(_lines(sequences))
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy-int"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy"]) != 0
    assert "without a .hrnn float model" in capsys.readouterr().err
    smooth = _train(tmp_path / "smooth", "model.bits=8", "model.output_bits=8")
    assert main(["export", str(smooth), "--target", "c", "-o", str(tmp_path / "c2")]) != 0
    assert "train it with model.activations: hard" in capsys.readouterr().err
    assert main(["export", str(run), "-o", str(tmp_path / "m.hrnn")]) != 0  # the .hrnn file is HadamRNN's
    assert "export --target onnx" in capsys.readouterr().err
    assert main(["predict", str(run), str(tmp_path / "in.txt"), "--runtime", "numpy"]) != 0
    assert "use predict --runtime torch" in capsys.readouterr().err
    assert main(["predict", str(run), str(tmp_path / "in.txt"), "--runtime", "torch"]) == 0  # the model itself
    lines = capsys.readouterr().out.splitlines()
    model = load_trained(run)[0].double().eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(sequences))[:, -1]  # the copy task reads out at every step: the last step's logits are printed
    assert [line.split()[0] for line in lines] == [str(int(v)) for v in expected.argmax(-1)]
    assert np.allclose([[float(v) for v in line.split()[1:]] for line in lines], expected.numpy(), rtol=1e-5)
    unquantized = _train(tmp_path / "float", "model.activations=hard")
    assert main(["export", str(unquantized), "--target", "c", "-o", str(tmp_path / "c3")]) != 0
    assert "p-bit W and U (model.bits)" in capsys.readouterr().err


def test_an_integer_model_file_of_an_unknown_family_or_with_missing_fields_is_refused(tmp_path):
    from hadamrnn.deploy.fileformat import ModelFileError

    write_c(_integer("low-rank-12"), tmp_path / "c")
    with np.load(tmp_path / "c" / "integer_model.npz") as stored:
        arrays = {key: stored[key] for key in stored.files}
    np.savez(tmp_path / "unknown.npz", **{**arrays, "family": np.array("lstm")})
    with pytest.raises(ModelFileError, match=r"unknown.npz: unknown model family 'lstm'"):
        load_integer_model(tmp_path / "unknown.npz")
    for name, missing in (("short", "u_factors[1]"), ("no-zeta", "zeta")):
        np.savez(tmp_path / f"{name}.npz", **{k: v for k, v in arrays.items() if k != missing})
        with pytest.raises(ModelFileError, match=rf"{name}.npz: not an integer model"):
            load_integer_model(tmp_path / f"{name}.npz")


def test_by_default_the_states_are_the_widest_that_keep_every_intermediate_in_int32():
    model, calibration = _model("low-rank-16"), _inputs("low-rank-16", 64, 40, 0)
    chosen = quantize_fastgrnn(model, calibration)
    assert chosen.bits < 16 and all(bound.ctype == "int32_t" for bound in chosen.bounds())
    wider = quantize_fastgrnn(model, calibration, chosen.bits + 1)
    assert any(bound.ctype == "int64_t" for bound in wider.bounds())


def test_the_shipped_har6_fastgrnn_integer_model_keeps_the_float_models_answers(tmp_path, capsys, real_data):
    """pretrained:har6-mcu-fastgrnn as `hadamrnn export --target c` builds it (its default state width):
    the NumPy integer model gives the float model's class on at least 99 % of all HAR-6 test windows,
    and the C, built for this computer and for the Cortex-M0, prints the numpy-int lines on 300 of them."""
    from hadamrnn.train import load_splits

    root = real_data("hapt")
    assert main(["export", "pretrained:har6-mcu-fastgrnn", "--target", "c", "-o", str(tmp_path / "c"),
                 "--data-dir", str(root)]) == 0
    integer = load_integer_model(tmp_path / "c" / "integer_model.npz")
    assert all(bound.ctype == "int32_t" for bound in integer.bounds())
    model, config, _ = load_trained("pretrained:har6-mcu-fastgrnn")
    x, _ = load_splits(config, root).test.batch(torch.arange(2996))
    with torch.no_grad():
        float_classes = model.eval()(x).argmax(-1).numpy()
    assert np.mean(integer.predict(x.numpy()) == float_classes) >= 0.99
    assert main(["data", "har6", "--data-dir", str(root), "--dump", "test", "-o", str(tmp_path / "all.txt")]) == 0
    (tmp_path / "in.txt").write_text("".join((tmp_path / "all.txt").read_text().splitlines(keepends=True)[:300]))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy-int"]) == 0
    expected = capsys.readouterr().out
    subprocess.run(["make", "-s", "-C", str(tmp_path / "c")], check=True, capture_output=True)
    host = subprocess.run([str(tmp_path / "c" / "predict"), str(tmp_path / "in.txt")], capture_output=True,
                          text=True, check=True).stdout
    assert len(host.splitlines()) == 300 and host == expected
    if all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm")):
        m0 = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), "qemu-m0", f"INPUT={tmp_path / 'in.txt'}"],
                            capture_output=True, text=True, timeout=300)
        assert m0.returncode == 0, m0.stderr[-2000:]
        assert m0.stdout == host
