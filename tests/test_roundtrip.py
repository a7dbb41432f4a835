"""Raw data in, the trained model's answers out: ``data --dump`` → ``export`` → ``predict`` reproduces ``eval``."""

import json
import subprocess
import sys

import numpy as np
import pytest


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "hadamrnn.cli", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name, folders, model", [
    ("har6", ("hapt",), ["model.hidden_size=16"]),  # float features: per-channel mean/std
    ("sst2", ("glue", "bert-base-uncased"), ["model.hidden_size=16", "model.embedding_dim=8"]),  # tokens: padding
])
def test_predict_on_dumped_raw_data_reproduces_eval(tmp_path, real_data, name, folders, model):
    root = real_data(*folders)
    run = tmp_path / "run"
    overrides = [f"data.name={name}", "optim.epochs=1", "optim.max_steps_per_epoch=20", "optim.lr=0.01", *model]
    _cli("train", f"{name}-smoke" if name == "sst2" else name, "--out", run, "--data-dir", root,
         *[arg for item in overrides for arg in ("--set", item)])
    evaluated = json.loads(_cli("eval", run, "--json").strip().splitlines()[-1])  # the run remembers its data
    _cli("export", run, "-o", tmp_path / "model.hrnn")
    _cli("data", name, "--data-dir", root, "--dump", "test", "-o", tmp_path / "test.txt")
    first = (tmp_path / "test.txt").read_text().splitlines()[0].split()
    if name == "sst2":
        assert first[0] == "101" and first[-1] == "102"  # [CLS] … [SEP], no padding
    else:
        assert len(first) == 128 * 9  # raw windows: unscaled sensor values
    ids = ["--token-ids"] if name == "sst2" else []  # the model reads text; the dump holds its ids
    lines = _cli("predict", tmp_path / "model.hrnn", tmp_path / "test.txt", *ids).splitlines()
    labels = np.loadtxt(tmp_path / "test.txt.labels", dtype=np.int64)
    predicted = np.array([int(line.split()[0]) for line in lines])
    margins = np.array([abs(float(line.split()[1])) if name == "sst2" else np.diff(np.sort(
        [float(v) for v in line.split()[1:]]))[-1] for line in lines])
    assert len(predicted) == len(labels) == evaluated["samples"]
    # float64 here, float32 in eval: only a prediction within rounding of a tie may differ
    assert abs(int((predicted == labels).sum()) - round(evaluated["accuracy"] * len(labels))) <= int((margins < 1e-4).sum())


def _c_predict_equals_numpy_int(tmp_path, run, root, name):
    """C export of ``run``; its ``predict`` (gcc) on the dumped raw test split prints exactly the lines of
    ``predict --runtime numpy-int``; returns those lines."""
    import shutil

    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the generated C")
    out = tmp_path / "c"
    _cli("export", run, "--target", "c", "-o", out, "--bits", 16, "--calibration-samples", 64)
    subprocess.run(["make", "-C", str(out)], check=True, capture_output=True)
    _cli("data", name, "--data-dir", root, "--dump", "test", "-o", tmp_path / "raw.txt")
    with open(tmp_path / "raw.txt") as stream:
        c_lines = subprocess.run([str(out / "predict")], stdin=stream, capture_output=True, text=True, check=True).stdout
    ids = ["--token-ids"] if name == "sst2" else []  # the C reads ids; the model also reads text
    python_lines = _cli("predict", out, tmp_path / "raw.txt", "--runtime", "numpy-int", *ids)
    assert c_lines == python_lines and c_lines
    return python_lines.splitlines()


def test_c_model_applies_the_pmnist_transform(tmp_path, mnist_dir):
    """Raw pixels 0-255 in raster order: the C predict program scales and permutes them as training did."""
    run = tmp_path / "run"
    _cli("train", "pmnist", "--out", run, "--data-dir", mnist_dir, "--set", "model.hidden_size=16",
         "--set", "optim.epochs=1", "--set", "data.batch_size=16")
    lines = _c_predict_equals_numpy_int(tmp_path, run, mnist_dir, "pmnist")
    assert len(lines) == 12
    header = (tmp_path / "c" / "hadamrnn_input.h").read_text()
    assert "HRNN_ORDER_STEPS 784" in header and "255.0f" in header


def test_c_model_pads_and_cuts_token_lines(tmp_path, real_data):
    root = real_data("glue", "bert-base-uncased")
    run = tmp_path / "run"
    _cli("train", "sst2-smoke", "--out", run, "--data-dir", root, "--set", "model.hidden_size=16",
         "--set", "model.embedding_dim=8", "--set", "optim.max_steps_per_epoch=10")
    _c_predict_equals_numpy_int(tmp_path, run, root, "sst2")
    long_line = " ".join(["101"] + ["2204"] * 300 + ["102"])  # longer than 128: cut to the first 127 and [SEP]
    (tmp_path / "long.txt").write_text(long_line + "\n" + " ".join(["101"] + ["2204"] * 126 + ["102"]) + "\n")
    with open(tmp_path / "long.txt") as stream:
        c_lines = subprocess.run([str(tmp_path / "c" / "predict")], stdin=stream, capture_output=True, text=True,
                                 check=True).stdout.splitlines()
    assert c_lines[0] == c_lines[1]  # the cut long line is the 128-token line


def test_a_fixed_point_trained_model_predicts_its_recorded_test_accuracy(tmp_path, mnist_dir):
    """model.state_bits: 8 → export --target c (the trained scales) → predict --runtime numpy-int on raw
    pixels gives exactly the test accuracy of results.json (the same integer model, not within a point)."""
    run = tmp_path / "run"
    _cli("train", "pmnist", "--out", run, "--data-dir", mnist_dir, "--set", "model.hidden_size=16",
         "--set", "model.state_bits=8", "--set", "optim.epochs=2", "--set", "data.batch_size=16")
    out = tmp_path / "c"
    printed = _cli("export", run, "--target", "c", "-o", out)
    assert "8-bit states, the scales it was trained with" in printed
    _cli("data", "pmnist", "--data-dir", mnist_dir, "--dump", "test", "-o", tmp_path / "raw.txt")
    lines = _cli("predict", out, tmp_path / "raw.txt", "--runtime", "numpy-int").splitlines()
    labels = np.loadtxt(tmp_path / "raw.txt.labels", dtype=np.int64)
    predicted = np.array([int(line.split()[0]) for line in lines])
    recorded = json.loads((run / "results.json").read_text())["test_metric"]
    assert float(np.mean(predicted == labels)) == recorded
