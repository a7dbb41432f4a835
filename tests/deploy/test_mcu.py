"""The generated C on a Cortex-M4 (QEMU's mps2-an386) and a Cortex-M0 (QEMU's microbit) through the
export directory's Makefile: `make -s -C DIR qemu INPUT=FILE` and `make -s -C DIR qemu-m0 INPUT=FILE`
print exactly the lines of `hadamrnn predict DIR FILE --runtime numpy-int`."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.cli import main
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

INSTALL = "apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "make")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason=f"needs {', '.join(TOOLS)}; on Debian: {INSTALL}")

MODELS = {  # (model, state bits)
    "full": (dict(input_size=3, hidden_size=64, output_size=5), 16),
    "block": (dict(input_size=2, hidden_size=128, output_size=10, block_size=32), 12),  # log2 m odd
    "tokens": (dict(input_size=8, hidden_size=32, output_size=1, vocab_size=40, block_size=8), 16),
    "many-to-many": (dict(input_size=2, hidden_size=32, output_size=3, block_size=4, readout="all"), 8),
    "block-2": (dict(input_size=1, hidden_size=16, output_size=2, block_size=2), 12),
    # states narrow enough for the DSP transform (two sums a word): its passes of three, two and one stages
    "dsp-64": (dict(input_size=9, hidden_size=64, output_size=6), 8),
    "dsp-block-128": (dict(input_size=5, hidden_size=256, output_size=4, block_size=128), 8),
    "dsp-256": (dict(input_size=2, hidden_size=256, output_size=3), 7),
    "dsp-tokens": (dict(input_size=6, hidden_size=32, output_size=1, vocab_size=40, block_size=16), 8),
}
# Make targets and defines: the M4 with its DSP path (where the model's bounds allow it), the M4 with
# the plain C path, and the M0 (no DSP instructions).
TARGETS = {"cortex-m4": ("qemu", ""), "cortex-m4-portable": ("qemu", "-DHRNN_PORTABLE"), "cortex-m0": ("qemu-m0", "")}


def _sequences(kwargs, integer, count=60, steps=30):
    rng = np.random.default_rng(3)
    if kwargs.get("vocab_size"):
        x = rng.integers(0, kwargs["vocab_size"], (count, steps))
        x[:4] = [[0], [kwargs["vocab_size"] - 1], [0], [kwargs["vocab_size"] - 1]]  # the extreme ids
        return "".join(" ".join(map(str, row)) + "\n" for row in x)
    x = rng.normal(0.3, 0.6, (count, steps, kwargs["input_size"]))
    low, high = integer.limits
    x[0], x[1] = high / 2.0 ** integer.fx, low / 2.0 ** integer.fx  # exactly at the saturation bounds
    x[2:4] *= 1000  # far beyond them: saturated the same way
    x[4, ::2], x[4, 1::2] = high / 2.0 ** integer.fx, low / 2.0 ** integer.fx  # alternating extremes
    return "".join(" ".join(repr(float(v)) for v in row.reshape(-1)) + "\n" for row in x)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_cortex_m_under_qemu_prints_the_numpy_integer_lines(tmp_path, capsys, name, target):
    kwargs, bits = MODELS[name]
    torch.manual_seed(5)
    model = HadamRNN(HadamRNNConfig(**kwargs))
    with torch.no_grad():
        model.input.bias.normal_(0, 0.5)
    export_model(model, tmp_path / "m.hrnn")
    exported = runtime.load(tmp_path / "m.hrnn")
    rng = np.random.default_rng(0)
    calibration = (rng.integers(0, kwargs["vocab_size"], (16, 30)) if kwargs.get("vocab_size")
                   else rng.normal(0.3, 0.6, (16, 30, kwargs["input_size"])))
    integer = quantize_model(exported, calibration, bits)
    write_c(integer, tmp_path / "c")
    (tmp_path / "in.txt").write_text(_sequences(kwargs, integer))
    goal, defines = TARGETS[target]
    result = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), goal, f"INPUT={tmp_path / 'in.txt'}",
                             f"DEFINES={defines}"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c"), str(tmp_path / "in.txt"), "--runtime", "numpy-int"]) == 0
    expected = capsys.readouterr().out
    assert len(expected.splitlines()) == 60
    assert result.stdout == expected
    if target.startswith("cortex-m4"):  # the DSP instructions are there exactly where the bounds allow them
        header = (tmp_path / "c" / "hadamrnn_model.h").read_text()
        code = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "c" / "predict.elf")],
                              capture_output=True, text=True, check=True).stdout
        dsp = not defines
        assert ("\tsmlad\t" in code) == (dsp and "#define HRNN_DSP_INPUT_FITS 1" in header)
        assert ("\tsasx\t" in code) == (dsp and "#define HRNN_DSP_FWHT_FITS 1" in header)


def test_qemu_target_names_a_missing_input(tmp_path):
    torch.manual_seed(0)
    export_model(HadamRNN(HadamRNNConfig(input_size=1, hidden_size=8, output_size=2)), tmp_path / "m.hrnn")
    write_c(quantize_model(runtime.load(tmp_path / "m.hrnn"), np.zeros((1, 4, 1)) + 0.5, 12), tmp_path / "c")
    usage = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), "qemu"], capture_output=True, text=True)
    assert usage.returncode != 0 and "make qemu INPUT=FILE or make qemu-m0 INPUT=FILE" in usage.stderr
    assert usage.stdout == ""
    missing = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), "qemu", f"INPUT={tmp_path / 'nope.txt'}"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "nope.txt: no such file" in missing.stderr and missing.stdout == ""


def test_the_shipped_har6_model_on_the_cortex_m0_prints_the_host_lines(tmp_path, real_data):
    """pretrained:har6-q8's C on the Cortex-M0 (soft division, no DSP) answers 300 real HAR-6 test
    windows exactly as the same C built for this computer does."""
    root = real_data("hapt")
    assert main(["export", "pretrained:har6-q8", "--target", "c", "-o", str(tmp_path / "c")]) == 0
    assert main(["data", "har6", "--data-dir", str(root), "--dump", "test", "-o", str(tmp_path / "all.txt")]) == 0
    (tmp_path / "in.txt").write_text("".join((tmp_path / "all.txt").read_text().splitlines(keepends=True)[:300]))
    subprocess.run(["make", "-s", "-C", str(tmp_path / "c")], check=True, capture_output=True)
    host = subprocess.run([str(tmp_path / "c" / "predict"), str(tmp_path / "in.txt")], capture_output=True,
                          text=True, check=True).stdout
    m0 = subprocess.run(["make", "-s", "-C", str(tmp_path / "c"), "qemu-m0", f"INPUT={tmp_path / 'in.txt'}"],
                        capture_output=True, text=True, timeout=300)
    assert m0.returncode == 0, m0.stderr[-2000:]
    assert m0.stdout == host and len(host.splitlines()) == 300
