"""Input lines that are not numbers a model can take: the generated C and the NumPy integer runtime
refuse them the same way, naming the line (no undefined behaviour, nothing silently cut)."""

import shutil
import subprocess
import sys

import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@pytest.fixture(scope="module")
def c_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("c")
    torch.manual_seed(1)
    export_model(HadamRNN(HadamRNNConfig(input_size=2, hidden_size=16, output_size=3)), directory / "m.hrnn")
    write_c(quantize_model(runtime.load(directory / "m.hrnn"), torch.randn(4, 5, 2).numpy(), bits=12), directory)
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover"]
    subprocess.run(["gcc", *flags, "-o", str(directory / "predict"), str(directory / "predict.c"),
                    str(directory / "hadamrnn_model.c")], check=True, capture_output=True)
    return directory


def _both(directory, text):
    c = subprocess.run([str(directory / "predict")], input=text, capture_output=True, text=True)
    python = subprocess.run([sys.executable, "-m", "hadamrnn.cli", "predict", str(directory), "-",
                             "--runtime", "numpy-int"], input=text, capture_output=True, text=True)
    return c, python


GOOD = "0.5 -0.25 1 2\n"


@pytest.mark.parametrize("bad, message", [
    ("nan 1 2 3", "line 2: not a finite number: 'nan'"),
    ("1 inf 2 3", "line 2: not a finite number: 'inf'"),
    ("1 2 -Infinity 3", "line 2: not a finite number: '-Infinity'"),
    ("0." + "0" * 70 + "1e70 1", "line 2: a value longer than 63 characters"),
    ("1 2 3", "line 2: the number of values is not a multiple of 2"),
    ("1 x", "line 2: not a number: 'x'"),
])
def test_bad_input_lines_are_refused_alike_with_the_line_number(c_model, bad, message):
    c, python = _both(c_model, GOOD + bad + "\n" + GOOD)
    assert c.returncode != 0 and message in c.stderr, c.stderr
    assert python.returncode != 0 and message in python.stderr and "Traceback" not in python.stderr, python.stderr
    assert c.stdout == python.stdout and len(c.stdout.splitlines()) == 1  # line 1 answered, then the refusal


def test_saturating_but_finite_inputs_are_taken_identically(c_model):
    text = GOOD + "1e300 -1e300 1e-300 0\n" + "63" * 31 + " 1\n"
    c, python = _both(c_model, text)
    assert c.returncode == python.returncode == 0, (c.stderr, python.stderr)
    assert c.stdout == python.stdout and len(c.stdout.splitlines()) == 3
