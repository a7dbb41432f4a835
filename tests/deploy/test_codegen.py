"""Generated C, compiled with gcc, against the NumPy integer runtime (bit for bit) and the float model."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import load_integer_model, write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import INV_SQRT2, SQRT2_BITS, quantize_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

CASES = [
    (dict(input_size=3, hidden_size=64, output_size=5), 16),
    (dict(input_size=3, hidden_size=128, output_size=4, block_size=32), 12),  # log2 m odd: the 1/sqrt(2) constant
    (dict(input_size=2, hidden_size=32, output_size=3, block_size=4, readout="all"), 8),
    (dict(input_size=8, hidden_size=32, output_size=1, vocab_size=40, block_size=8), 16),
]


def _exported(tmp_path, kwargs):
    torch.manual_seed(1)
    model = HadamRNN(HadamRNNConfig(**kwargs))
    with torch.no_grad():
        model.input.bias.normal_(0, 0.5)
    export_model(model, tmp_path / "m.hrnn")
    return model, runtime.load(tmp_path / "m.hrnn")


def _data(kwargs, count, steps, seed):
    rng = np.random.default_rng(seed)
    if kwargs.get("vocab_size"):
        return rng.integers(0, kwargs["vocab_size"], (count, steps))
    return rng.normal(0.3, 0.6, (count, steps, kwargs["input_size"]))


def _lines(x):
    if x.dtype.kind == "i":
        return "".join(" ".join(str(int(v)) for v in row) + "\n" for row in x)
    return "".join(" ".join(repr(float(v)) for v in row.reshape(-1)) + "\n" for row in x)


def _build(directory):
    subprocess.run(["gcc", *FLAGS, "-o", str(directory / "predict"), str(directory / "predict.c"),
                    str(directory / "hadamrnn_model.c")], check=True, capture_output=True, text=True)
    return directory / "predict"


@pytest.mark.parametrize("kwargs, bits", CASES)
def test_gcc_build_is_bit_exact_with_the_numpy_integer_runtime(tmp_path, kwargs, bits):
    model, exported = _exported(tmp_path, kwargs)
    integer = quantize_model(exported, _data(kwargs, 64, 60, 0), bits)
    write_c(integer, tmp_path / "c")
    predict = _build(tmp_path / "c")
    x = _data(kwargs, 40, 60, 1)
    x[:3] *= 50 if x.dtype.kind == "f" else 1  # out-of-range inputs saturate the same way in both
    result = subprocess.run([str(predict)], input=_lines(x), capture_output=True, text=True, check=True)
    rows = [list(map(int, line.split())) for line in result.stdout.strip().splitlines()]
    logits = integer.logits_int(integer.quantize_inputs(x))
    last = logits[:, -1] if kwargs.get("readout") == "all" else logits
    assert len(rows) == len(x)
    for row, expected in zip(rows, last):
        assert row[1:] == expected.tolist()
        assert row[0] == (int(expected[0] > 0) if len(expected) == 1 else int(np.argmax(expected)))
    # The integer model agrees with the float model on the in-range sequences.
    float_classes = exported.predict(x[3:])
    float_classes = float_classes[:, -1] if kwargs.get("readout") == "all" else float_classes
    agreement = np.mean(float_classes == np.array([r[0] for r in rows[3:]]))
    assert agreement >= (0.9 if bits >= 12 else 0.6), agreement
    # The saved integer model reloads to the same logits (what `hadamrnn predict --runtime numpy-int` uses).
    again = load_integer_model(tmp_path / "c" / "integer_model.npz")
    assert np.array_equal(again.logits_int(again.quantize_inputs(x)), logits)


def test_make_builds_with_the_generated_makefile(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    _, exported = _exported(tmp_path, CASES[0][0])
    write_c(quantize_model(exported, _data(CASES[0][0], 8, 10, 0), 16), tmp_path / "c")
    subprocess.run(["make", "-C", str(tmp_path / "c")], check=True, capture_output=True)
    bad = subprocess.run([str(tmp_path / "c" / "predict")], input="1 2\n", capture_output=True, text=True)
    assert bad.returncode == 1 and "not a multiple of 3" in bad.stderr


def test_no_floating_point_or_allocation_in_the_model_source(tmp_path):
    _, exported = _exported(tmp_path, CASES[1][0])
    write_c(quantize_model(exported, _data(CASES[1][0], 8, 10, 0), 12), tmp_path / "c")
    source = (tmp_path / "c" / "hadamrnn_model.c").read_text()
    import re

    for word in (r"\bfloat\b", r"\bdouble\b", r"\bmalloc\b", r"math\.h"):
        assert not re.search(word, source), word


@pytest.mark.parametrize("bits", [8, 16, 24])
def test_accumulators_do_not_overflow_at_the_bound(tmp_path, bits):
    """Saturated states and extreme inputs: the int64 path equals exact Python integers."""
    kwargs = dict(input_size=4, hidden_size=512, output_size=3, block_size=128)
    _, exported = _exported(tmp_path, kwargs)
    integer = quantize_model(exported, _data(kwargs, 16, 20, 0), bits)
    low, high = integer.limits
    x_int = np.full((1, 6, 4), high, dtype=np.int64)
    x_int[0, 1::2] = low
    logits = integer.logits_int(x_int)[0]

    def exact_shift(v, s):
        return (v + (1 << (s - 1))) >> s if s > 0 else v

    h = [0] * 512
    for t in range(6):
        a = [int(v) for v in h]
        half = 1
        while half < 128:
            for start in range(0, 512, 2 * half):
                for k in range(start, start + half):
                    a[k], a[k + half] = a[k] + a[k + half], a[k] - a[k + half]
            half *= 2
        new = []
        for i in range(512):
            acc = sum(int(integer.u_levels[i, k]) * int(x_int[0, t, k]) for k in range(4))
            z = exact_shift(acc * integer.u_multiplier, integer.u_shift) + int(integer.b[i])
            # m = 128: log2 m = 7 is odd; the step's terms are 8 bits finer than a state until one rounding
            rotated = exact_shift(a[i] * INV_SQRT2, SQRT2_BITS + 3 - 8)
            new.append(min(max(exact_shift(int(integer.signs[i]) * rotated + z, 8), low), high))
        h = new
    expected = [int(integer.c[c]) + sum(int(integer.v_levels[c, i]) * max(h[i], 0) for i in range(512))
                for c in range(3)]
    assert logits.tolist() == expected
    assert max(abs(v) for v in h) == high or min(h) == low  # the bound was actually reached


def test_cli_c_export_and_numpy_int_predict_print_identical_lines(tmp_path, capsys):
    from hadamrnn.cli import main
    from hadamrnn.train import fit, load_config

    config = load_config(None, ["data.name=copy", "data.length=24", "data.train_samples=32", "data.val_samples=16",
                                "data.test_samples=16", "data.batch_size=16", "model.hidden_size=16", "optim.epochs=1"])
    fit(config, tmp_path / "run", progress=False)
    assert main(["export", str(tmp_path / "run"), "--target", "c", "--bits", "12", "-o", str(tmp_path / "c")]) == 0
    predict = _build(tmp_path / "c")
    rng = np.random.default_rng(0)
    (tmp_path / "in.txt").write_text(_lines(np.eye(10)[rng.integers(0, 10, (5, 24))]))
    c_lines = subprocess.run([str(predict)], stdin=open(tmp_path / "in.txt"), capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy-int"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == c_lines


def _tiny_integer_model(bits=4):
    """n = 4 = m, d = 1: small enough to try every state and every input."""
    from hadamrnn.deploy.integer import IntegerModel

    return IntegerModel(bits=bits, fx=bits - 2, fh=bits - 2, block=4, readout="last",
                        signs=np.array([1, -1, -1, 1]), u_levels=np.array([[7], [-7], [3], [0]]),
                        u_multiplier=23127, u_shift=14, b=np.array([3, -5, 0, 1]),
                        v_levels=np.array([[7, -7, 1, 0], [-8, -8, 7, 7]]), c=np.array([-20, 9]),
                        logit_scale=0.1, embedding=None)


def test_every_bound_holds_over_all_states_and_inputs_and_the_hadamard_bound_is_reached():
    import itertools

    from hadamrnn.deploy.integer import rshift_round
    from hadamrnn.deploy.runtime import fwht

    model = _tiny_integer_model()
    low, high = model.limits
    values = np.arange(low, high + 1)
    states = np.array(list(itertools.product(values, repeat=4)))  # all 16^4 states
    multiplier, shift = model.rotation
    sums = fwht(states, 4)
    assert shift == 0  # log2 4 is even: r = a · 2^G / 2 is a product by a power of two, exact
    inputs = values[:, None] * model.u_levels[:, 0][None, :]  # every input x: L_U x
    products = inputs * model.u_multiplier + (1 << (model.u_shift - 1))
    z = rshift_round(products - (1 << (model.u_shift - 1)), model.u_shift) + model.b
    rotated = rshift_round(sums * multiplier, shift)
    updates = (model.signs * rotated)[:, None, :] + z[None, :, :] + (1 << (model.guard_bits - 1))
    relu = np.maximum(states, 0)
    logits = relu @ model.v_levels.T + model.c
    observed = {"sum": np.abs(sums).max(), "rotation": np.abs(sums * multiplier).max(), "input": np.abs(inputs).max(),
                "input_product": np.abs(products).max(), "update": np.abs(updates).max(), "logit": np.abs(logits).max()}
    bounds = {bound.name: bound.max_abs for bound in model.bounds()}
    assert set(bounds) == set(observed)
    for name, value in observed.items():
        assert value <= bounds[name], name
    assert np.abs(sums).max() == 4 * 2 ** 3  # m · 2^(b-1), reached by a saturated state
    assert observed["logit"] == bounds["logit"]  # the read-out's bound is exact here


def test_a_bound_beyond_64_bits_is_an_error_naming_the_bits_that_fit():
    model = _tiny_integer_model(bits=16)
    model.b = np.array([2 ** 63, 0, 0, 0], dtype=object)
    with pytest.raises(ValueError, match=r"s ⊙ r \+ u \+ b \+ 2\^\(G-1\) before the rounding shift \(65 bits\) would overflow "
                                         r"64-bit integers "
                                         r"with 16-bit states"):
        model.check_bounds()


def test_c_types_follow_the_bounds(tmp_path):
    model = _tiny_integer_model(bits=12)
    write_c(model, tmp_path / "c")
    header = (tmp_path / "c" / "hadamrnn_model.h").read_text()
    for bound in model.bounds():
        assert f"#define HRNN_{bound.name.upper()}_BOUND {bound.max_abs} " in header
        assert f"typedef {bound.ctype} hrnn_{bound.name}_t;" in header
    assert "typedef int16_t hrnn_state_t;" in header
    assert "typedef int64_t" not in header  # 12-bit states: everything fits 32 bits


def test_an_integer_model_from_before_the_one_rounding_step_is_refused(tmp_path):
    from hadamrnn.deploy.fileformat import ModelFileError

    write_c(_tiny_integer_model(), tmp_path / "c")
    path = tmp_path / "c" / "integer_model.npz"
    with np.load(path, allow_pickle=False) as stored:
        fields = {k: stored[k] for k in stored.files if k != "guard_bits"}  # as an older hadamrnn wrote it
    np.savez(path, **fields)
    with pytest.raises(ModelFileError, match=r"integer_model.npz: written by an older hadamrnn.*export the model again"):
        load_integer_model(path)
