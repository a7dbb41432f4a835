"""One input grammar (docs/format.md, "Input lines"): the generated C ``predict`` and the ``numpy``,
``numpy-int``, ``torch`` and ``onnx`` (where onnxruntime is installed) runtimes give every input the same verdict — the same answers, or the
same refusal naming the same line and word — with no undefined behaviour in C (built with
``-fsanitize=undefined``)."""

import importlib.util
import io
import random
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.inputs import MAX_LINE_BYTES, InputError, parse_line, read_lines
from hadamrnn.deploy.integer import quantize_model
from hadamrnn.deploy.predict import open_predictor
from hadamrnn.preprocess import InputTransform

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")

ONNX = importlib.util.find_spec("onnxruntime") is not None
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover"]
VOCABULARY = 50


def _exported(directory, config, transform, calibration):
    """``directory`` holding model.hrnn, the C export (built), integer_model.npz and model.onnx."""
    model = HadamRNN(config)
    export_model(model, directory / "model.hrnn", transform.to_dict() if transform else None)
    if ONNX:
        from hadamrnn.data import TaskInfo
        from hadamrnn.deploy.onnx import export_onnx

        tokens = config.vocab_size is not None
        export_onnx(model, TaskInfo("t", num_classes=config.output_size, loss="ce",
                                    input_size=None if tokens else config.input_size, vocab_size=config.vocab_size,
                                    transform=transform.to_dict() if transform else None), directory / "model.onnx")
    write_c(quantize_model(runtime.load(directory / "model.hrnn"), calibration, bits=12), directory)
    subprocess.run(["gcc", *FLAGS, "-o", str(directory / "predict"), str(directory / "predict.c"),
                    str(directory / "hadamrnn_model.c")], check=True, capture_output=True)
    return directory


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Two features per step, no input transform."""
    torch.manual_seed(1)
    return _exported(tmp_path_factory.mktemp("plain"), HadamRNNConfig(input_size=2, hidden_size=16, output_size=3),
                     None, torch.randn(4, 5, 2).numpy())


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """Three features per step through a transform; channel 2's divisor is tiny, so values that are
    finite in float32 leave its range after the transform and saturate."""
    torch.manual_seed(2)
    transform = InputTransform("features", offset=(1.5, -2.0, 0.0), divisor=(2.0, 0.5, 1e-30))
    calibration = transform.features(np.random.default_rng(0).normal(size=(4, 6, 3)) * 1e-30)
    return _exported(tmp_path_factory.mktemp("features"),
                     HadamRNNConfig(input_size=3, hidden_size=16, output_size=4, block_size=4), transform, calibration)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    """Token ids below 50, cut to the last 6 and pre-padded."""
    torch.manual_seed(3)
    transform = InputTransform("tokens", length=6, keep="last")
    return _exported(tmp_path_factory.mktemp("tokens"), HadamRNNConfig(input_size=4, hidden_size=16, output_size=2,
                                                                       vocab_size=VOCABULARY),
                     transform, np.random.default_rng(2).integers(0, VOCABULARY, (4, 6)))


@pytest.fixture(scope="module")
def ordered(tmp_path_factory):
    """One feature per step, read in a fixed order of exactly 5 steps (as pMNIST's)."""
    torch.manual_seed(4)
    transform = InputTransform("features", offset=(0.0,), divisor=(255.0,), order=(4, 0, 3, 1, 2))
    return _exported(tmp_path_factory.mktemp("ordered"), HadamRNNConfig(input_size=1, hidden_size=8, output_size=3),
                     transform, np.random.default_rng(1).random((4, 5, 1)))


@pytest.fixture(scope="module")
def padded(tmp_path_factory):
    """Three features per step through a transform, sequences cut to their last 4 steps and pre-padded
    with steps of zeros (time series of unequal lengths)."""
    torch.manual_seed(5)
    transform = InputTransform("features", offset=(1.5, -2.0, 0.0), divisor=(2.0, 0.5, 1e-30), length=4)
    calibration = transform.features(np.random.default_rng(3).normal(size=(4, 6, 3)) * 1e-30)
    return _exported(tmp_path_factory.mktemp("padded"),
                     HadamRNNConfig(input_size=3, hidden_size=16, output_size=4, block_size=4), transform, calibration)


def _c(directory, data: bytes):
    """``(answers, refusal or None)`` of the C program on ``data`` as its standard input."""
    done = subprocess.run([str(directory / "predict")], input=data, capture_output=True)
    assert done.returncode in (0, 1), done.stderr  # 1: a refused line; anything else is a crash
    refusal = done.stderr.decode().strip() or None
    assert (done.returncode == 1) == (refusal is not None), done.stderr
    return done.stdout.decode().splitlines(), refusal


def _python(predictor, data: bytes):
    answers = []
    try:
        for answer in predictor.run(io.BytesIO(data)):
            answers.append(answer)
    except InputError as error:
        return answers, str(error)
    return answers, None


class Runtimes:
    """The runtimes of one exported model."""

    def __init__(self, directory):
        self.directory = directory
        self.numpy = open_predictor(directory / "model.hrnn", "numpy")
        self.torch = open_predictor(directory / "model.hrnn", "torch")
        self.integer = open_predictor(directory, "numpy-int")
        self.floats = [self.torch] + ([open_predictor(directory / "model.onnx", "onnx")] if ONNX else [])

    def verdicts(self, data: bytes):
        """The C and numpy-int verdicts, which must be identical, and the float runtimes' (same
        refusal; answers with the same class and logits to float64 rounding)."""
        c = _c(self.directory, data)
        integer, numpy = _python(self.integer, data), _python(self.numpy, data)
        assert integer == c, data
        assert numpy[1] == c[1] and len(numpy[0]) == len(c[0]), data
        for other in self.floats:
            self._same_float_answers(data, numpy, _python(other, data))
        return c

    @staticmethod
    def _same_float_answers(data, numpy, other):
        assert other[1] == numpy[1] and len(other[0]) == len(numpy[0]), data
        for ours, theirs in zip(numpy[0], other[0]):
            a, b = np.array(ours.split(), float), np.array(theirs.split(), float)
            scale = max(1.0, float(np.abs(a[1:]).max()))  # float64 rounding is relative to the largest logit
            assert np.allclose(a[1:], b[1:], rtol=1e-5, atol=1e-6 * scale), (data, ours, theirs)
            margin = np.sort(a[1:])[-2:] if len(a) > 2 else None  # a tie within rounding may pick either class
            assert a[0] == b[0] or (margin is not None and margin[1] - margin[0] <= 1e-6 * scale), (data, ours, theirs)
            assert np.isfinite(a).all() and np.isfinite(b).all(), data


@pytest.fixture(scope="module")
def runtimes(plain, features, tokens, ordered, padded):
    return {name: Runtimes(d) for name, d in (("plain", plain), ("features", features), ("tokens", tokens),
                                               ("ordered", ordered), ("padded", padded))}


GOOD = b"0.5 -0.25 1 2\n"


@pytest.mark.parametrize("bad, message", [
    (b"nan 1 2 3", "line 2: not a decimal number: 'nan'"),
    (b"1 inf 2 3", "line 2: not a decimal number: 'inf'"),
    (b"1 2 -Infinity 3", "line 2: not a decimal number: '-Infinity'"),
    (b"0x1p0 1", "line 2: not a decimal number: '0x1p0'"),  # strtod takes hex floats, Python does not
    (b"1_0 1", "line 2: not a decimal number: '1_0'"),  # Python takes underscores, strtod does not
    ("１ 2".encode(), "line 2: byte 0xef at column 1 is not allowed"),  # full-width digit: not ASCII
    (b"1\x002 3", "line 2: byte 0x00 at column 2 is not allowed"),  # strtod would stop at the NUL
    (b"1 2\r3 4", "line 2: byte 0x0d at column 4 is not allowed"),  # Python's text mode made it two lines
    (b"1\x0b2", "line 2: byte 0x0b at column 2 is not allowed"),  # isspace() took a vertical tab
    (b"0." + b"0" * 70 + b"1e70 1", "line 2: a word longer than 63 characters at column 1"),
    (b"1 2 3", "line 2: the number of values is not a multiple of 2"),
    (b"1 x", "line 2: not a decimal number: 'x'"),
])
def test_bad_input_lines_are_refused_alike_with_the_line_number(runtimes, bad, message):
    answers, refusal = runtimes["plain"].verdicts(GOOD + bad + b"\n" + GOOD)
    assert refusal.startswith(message) and len(answers) == 1  # line 1 answered, then the refusal


@pytest.mark.parametrize("bad, message", [
    (b"3 -1", "line 1: not a token id (a whole number from 0 to 49): '-1'"),  # numpy-int wrapped it around
    (b"3 50", "line 1: token id '50' is not below the vocabulary size 50"),  # an IndexError traceback
    (b"9223372036854775808", "line 1: token id '9223372036854775808' is not below the vocabulary size 50"),
    (b"1 +2", "line 1: not a token id (a whole number from 0 to 49): '+2'"),
    (b"1 2.0", "line 1: not a token id (a whole number from 0 to 49): '2.0'"),
])
def test_bad_token_ids_are_refused_alike(runtimes, bad, message):
    assert runtimes["tokens"].verdicts(bad + b"\n") == ([], message)


def test_token_ids_with_leading_zeros_and_long_lines_are_taken(runtimes):
    answers, refusal = runtimes["tokens"].verdicts(b"0000000000000000000000000000049 1\n" + b" 7" * 500 + b"\n")
    assert refusal is None and len(answers) == 2


def test_crlf_and_a_missing_last_line_end_are_line_ends(runtimes):
    unix = runtimes["plain"].verdicts(b"1 2\n3 4\n")
    assert unix[1] is None and len(unix[0]) == 2
    assert runtimes["plain"].verdicts(b"1 2\r\n3 4\r\n") == unix
    assert runtimes["plain"].verdicts(b"1 2\r\n3 4\r") == unix
    assert runtimes["plain"].verdicts(b"1 2\n\n \t \n3 4") == unix  # blank lines are skipped


def test_values_beyond_float32_saturate_identically_everywhere(runtimes):
    """±1e300 (and ±1e400, beyond double) are ±FLT_MAX, before and after the transform; the float
    runtimes stay finite (a ±1e300 feature gave NaN logits in numpy before)."""
    text = b"1e300 -1e300 1e-300 0\n" + b"63" * 31 + b" 1\n" + b"1e400 -1e400\n"
    answers, refusal = runtimes["plain"].verdicts(text)
    assert refusal is None and len(answers) == 3
    same = runtimes["plain"].verdicts(b"3.4028234663852886e38 -3.4028234663852886e38\n")[0]
    assert same[0] == answers[2]  # 1e400 is FLT_MAX exactly
    answers, refusal = runtimes["features"].verdicts(b"1e300 -1e300 1e-20 1 2 3e30\n")
    assert refusal is None and len(answers) == 1


def test_a_reordered_model_refuses_another_step_count_after_checking_every_word(runtimes):
    assert runtimes["ordered"].verdicts(b"1 2 3 4 5\n")[1] is None
    assert runtimes["ordered"].verdicts(b"1 2 3\n") == (
        [], "line 1: this model reads sequences of exactly 5 steps (it reorders them), got 3")
    answers, refusal = runtimes["ordered"].verdicts(b"1 2 3 4 5 6 7 x\n")  # the bad word comes first
    assert refusal == "line 1: not a decimal number: 'x'"


NUMBERS = ["0", "1", "-1", "+1", "-0", "00012", "1.", ".5", "-.5", "+.5e3", "1.25", "3.14159265358979323846",
           "1e5", "1E-5", "1e+05", "-2.5e-3", "1e300", "-1e300", "1e400", "-1e400", "1e-400", "4.9e-324",
           "3.4028235e38", "-3.4028234e38", "1e-30", "2.5e29", "123456789012345678901234567890"]
NOT_NUMBERS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "infinity", "nan(123)", "0x1p0", "0X1.8P1", "0x10",
               "1_0", "1,5", "1.2.3", "--1", "+-1", "e5", ".", "+", "-", "1e", "1e+", "1e5.5", "x", "1x", "١",
               "１", "½", "1d5", "0b1", "\u00a01"]
CONTROL = [b"\x00", b"\x01", b"\x0b", b"\x0c", b"\r", b"\x1b", b"\x7f", b"\x80", b"\xff", b"\xef\xbb\xbf"]
SEPARATORS = [b" ", b"  ", b"\t", b" \t "]


def _hostile_lines(rng: random.Random, count: int, token_model: bool):
    """``count`` inputs of one to three lines: mostly valid words, each line with some chance of one
    hostile element (a malformed word, a control byte, an over-long word, a huge or negative id)."""
    def word() -> bytes:
        if token_model:
            return rng.choice([str(rng.randrange(VOCABULARY)), str(rng.randrange(VOCABULARY)).zfill(rng.randrange(1, 30)),
                               str(VOCABULARY - 1)]).encode()
        return rng.choice([rng.choice(NUMBERS), f"{rng.gauss(0, 10 ** rng.randrange(-3, 40)):.{rng.randrange(1, 17)}g}"]
                          ).encode()

    def hostile() -> bytes:
        kind = rng.randrange(6)
        if kind == 0:
            return rng.choice(NOT_NUMBERS if not token_model else NOT_NUMBERS + ["-1", "+3", "2.0", "1e2", "-0"]).encode()
        if kind == 1:  # a control byte inside, before or after a word
            w, c = word(), rng.choice(CONTROL)
            at = rng.randrange(len(w) + 1)
            return w[:at] + c + w[at:]
        if kind == 2:  # words around the length limit
            return b"1" * rng.randrange(60, 70) if token_model else b"0." + b"5" * rng.randrange(58, 68)
        if kind == 3 and token_model:
            return str(rng.choice([VOCABULARY, VOCABULARY + 1, 2**31, 2**63, 2**64, 10**40])).encode()
        if kind == 3:
            return rng.choice([b"1e300", b"-1e300", b"1e38", b"-3e38", b"3.5e38", b"1e39"])
        return word()

    inputs = []
    for _ in range(count):
        lines = []
        for _ in range(rng.randrange(1, 4)):
            steps = rng.randrange(0, 5)
            words = [word() for _ in range(steps * (1 if token_model else 3) + (rng.random() < 0.1))]
            if words and rng.random() < 0.5:
                words[rng.randrange(len(words))] = hostile()
            line = b""
            for w in words:
                line += rng.choice(SEPARATORS) + w
            if rng.random() < 0.3:
                line = line.lstrip()
            lines.append(line + (rng.choice(SEPARATORS) if rng.random() < 0.2 else b""))
        end = rng.choice([b"\n", b"\r\n"])
        inputs.append(end.join(lines) + (end if rng.random() < 0.8 else b""))
    return inputs


@pytest.mark.parametrize("model, count", [("features", 1300), ("tokens", 900), ("padded", 600)])
def test_every_runtime_gives_every_hostile_input_the_same_verdict(runtimes, model, count):
    """2,800 random inputs over three models (each a one- to three-line file; "padded" cuts and pads
    its lines to 4 steps): C, numpy-int, numpy, torch and onnx give the same answers or the same
    refusal on every one."""
    rng = random.Random(24 + count)
    refused = answered = 0
    for data in _hostile_lines(rng, count, model == "tokens"):
        answers, refusal = runtimes[model].verdicts(data)
        refused += refusal is not None
        answered += len(answers)
    assert refused > count // 5 and answered > count // 2  # both verdicts well exercised


def test_lines_of_every_length_are_cut_and_padded_alike(runtimes):
    """A model with a length of 4 steps: lines of 1 to 9 steps answer in C as in numpy-int, and every
    float runtime answers as the model on the transform's padded inputs."""
    rng = np.random.default_rng(8)
    lines = [" ".join(f"{v:.4g}" for v in rng.normal(0, 3, 3 * steps)) for steps in range(1, 10) for _ in range(3)]
    data = ("\n".join(lines) + "\n").encode()
    answers, refusal = runtimes["padded"].verdicts(data)
    assert refusal is None and len(answers) == len(lines)
    model = runtime.load(runtimes["padded"].directory / "model.hrnn")
    for line, answer in zip(lines, _python(runtimes["padded"].numpy, data)[0]):
        raw = np.array(line.split(), float).reshape(1, -1, 3)
        x = model.transform.features(raw)
        assert x.shape == (1, 4, 3)
        expected = model.logits(x)[0]
        np.testing.assert_allclose(np.array(answer.split()[1:], float), expected, rtol=1e-5, atol=1e-6)


def test_the_c_program_takes_files_and_refuses_unknown_options(plain, tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1 2\n")
    (tmp_path / "b.txt").write_bytes(b"3 4\n5 6\n")
    both = subprocess.run([str(plain / "predict"), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
                          capture_output=True, text=True)
    piped = subprocess.run([str(plain / "predict")], input="1 2\n3 4\n5 6\n", capture_output=True, text=True)
    assert both.returncode == 0 and both.stdout == piped.stdout and len(both.stdout.splitlines()) == 3
    unknown = subprocess.run([str(plain / "predict"), "--help"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown option '--help'" in unknown.stderr and not unknown.stdout
    missing = subprocess.run([str(plain / "predict"), str(tmp_path / "none.txt")], capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot open" in missing.stderr


def test_the_cli_refuses_like_the_c_program(plain):
    python = subprocess.run([sys.executable, "-m", "hadamrnn.cli", "predict", str(plain), "-", "--runtime", "numpy-int"],
                            input=GOOD + b"1 nan\n", capture_output=True)
    c = subprocess.run([str(plain / "predict")], input=GOOD + b"1 nan\n", capture_output=True)
    assert python.returncode == 2 and b"Traceback" not in python.stderr
    assert python.stderr.decode().endswith(c.stderr.decode()) and python.stdout == c.stdout


def test_lines_longer_than_the_limit_are_refused_where_c_refuses_them(runtimes):
    padding = b" " * (MAX_LINE_BYTES - 3)  # separators count: "1 2" and these make exactly the limit
    assert runtimes["plain"].verdicts(b"1 2" + padding + b"\r\n")[1] is None  # then CRLF: taken
    assert runtimes["plain"].verdicts(b"1 2" + padding + b"\r")[1] is None  # CR ending the input: taken
    too_long = f"line 1: longer than {MAX_LINE_BYTES} bytes"
    assert runtimes["plain"].verdicts(b"1 2" + padding + b" \n") == ([], too_long)
    assert runtimes["plain"].verdicts(b"1 2" + padding + b"\rx") == ([], too_long)  # the length is met first
    assert runtimes["plain"].verdicts(b"1 x" + padding + b"  \n")[1] == "line 1: not a decimal number: 'x'"


def test_a_long_line_is_read_in_memory_linear_in_its_length():
    line = b" ".join(b"%.9g" % v for v in np.random.default_rng(0).normal(size=200_000))  # 2.2 MB
    tracemalloc.start()
    values = parse_line(line, 1, tokens=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert values.shape == (200_000,) and peak < 20 * len(line)
    assert list(read_lines(io.BytesIO(line + b"\n")))[0][1] == line


def test_lines_computed_in_batches_answer_as_one_at_a_time(runtimes):
    rng = np.random.default_rng(5)
    lines = [" ".join(f"{v:.5g}" for v in rng.normal(size=3 * rng.choice([4, 4, 4, 7]))) for _ in range(600)]
    data = ("\n".join(lines) + "\n").encode()
    for name in ("integer", "numpy", "torch"):
        predictor = getattr(runtimes["features"], name)
        batched, single = list(predictor.run(io.BytesIO(data))), list(predictor.run(io.BytesIO(data), batch=1))
        assert len(batched) == 600
        if name == "integer":
            assert batched == single
        else:
            a, b = (np.array([line.split() for line in out], float) for out in (batched, single))
            assert np.allclose(a, b, rtol=1e-5, atol=1e-9)
    assert list(runtimes["features"].integer.run(io.BytesIO(data))) == _c(runtimes["features"].directory, data)[0]
