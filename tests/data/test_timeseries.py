"""Your own time series (``data: {name: timeseries}``): UEA/UCR ``.ts`` and long-format CSV files,
string labels, per-channel normalisation from the training split, and errors that name the file
and the line."""

import importlib.util

import numpy as np
import pytest

from hadamrnn.data import load_data
from hadamrnn.data.timeseries import read_series
from hadamrnn.preprocess import InputTransform

HEADER = "# a comment\n@problemName toy\n@timeStamps false\n@univariate false\n@dimensions 2\n" \
         "@equalLength true\n@classLabel true walk run sit\n@data\n"


def _ts(path, rows, header=HEADER):
    """rows: (channels as lists of values, label)."""
    path.write_text(header + "".join(":".join(",".join(map(str, c)) for c in ch) + f":{label}\n" for ch, label in rows))
    return path


def _csv(path, rows):
    lines = ["series,step,acc x,acc y,label"]
    for k, (channels, label) in enumerate(rows):
        steps = list(range(len(channels[0])))[::-1]  # any order
        lines += [f"s{k},{t},{channels[0][t]},{channels[1][t]},{label}" for t in steps]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(rng, count, steps=5, labels=("walk", "run", "sit")):
    return [([list(np.round(rng.normal(3, 2, steps), 3)), list(np.round(rng.normal(-1, 0.5, steps), 3))],
             labels[k % len(labels)]) for k in range(count)]


@pytest.mark.parametrize("write", [_ts, _csv], ids=["ts", "csv"])
def test_both_formats_read_the_same_series_with_labels_and_normalisation(tmp_path, write):
    rng = np.random.default_rng(0)
    train_rows, test_rows = _rows(rng, 30), _rows(rng, 6)
    suffix = ".ts" if write is _ts else ".csv"
    train, test = write(tmp_path / f"train{suffix}", train_rows), write(tmp_path / f"test{suffix}", test_rows)
    series, labels = read_series(train)
    assert len(series) == 30 and series[0].shape == (5, 2) and labels[:3] == ["walk", "run", "sit"]
    np.testing.assert_array_equal(series[4][:, 1], train_rows[4][0][1])
    splits = load_data("timeseries", train=train, test=test)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (27, 3, 6)
    assert splits.info.num_classes == 3 and splits.info.input_size == 2
    np.testing.assert_array_equal(splits.test.y.numpy(), [["run", "sit", "walk"].index(l) for _, l in test_rows])
    transform = InputTransform.from_dict(splits.info.transform)
    x = splits.train.batch(np.arange(27))[0].numpy()  # the model's inputs: normalised per channel
    np.testing.assert_allclose(x.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 1)), 1, atol=1e-4)
    assert transform.offset[0] == pytest.approx(splits.train.x.numpy()[..., 0].mean(), rel=1e-6)


def test_ts_and_csv_of_the_same_series_give_the_same_data(tmp_path):
    rng = np.random.default_rng(1)
    rows, test_rows = _rows(rng, 20), _rows(rng, 4)
    a = load_data("timeseries", train=_ts(tmp_path / "a.ts", rows), test=_ts(tmp_path / "at.ts", test_rows))
    b = load_data("timeseries", train=_csv(tmp_path / "b.csv", rows), test=_csv(tmp_path / "bt.csv", test_rows))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split).x.numpy(), getattr(b, split).x.numpy())
        np.testing.assert_array_equal(getattr(a, split).y.numpy(), getattr(b, split).y.numpy())
    ta, tb = (InputTransform.from_dict(s.info.transform) for s in (a, b))
    assert ta.offset == pytest.approx(tb.offset, rel=1e-12) and ta.divisor == pytest.approx(tb.divisor, rel=1e-12)


@pytest.mark.parametrize("line, message", [
    ("1,2,x:1,2,3:walk", "line 9: not a number: 'x'"),
    ("1,2,NaN:1,2,3:walk", "line 9: 'NaN' is not a finite number"),
    ("1,,3:1,2,3:walk", r"line 9: a missing value \('\?' or an empty field\)"),
    ("1,2,?:1,2,3:walk", "line 9: a missing value"),
    ("1,2,3:1,2:walk", r"line 9: its channels have different lengths \[3, 2\]"),
    ("1,2,3:1,2,3:fly", "line 9: label 'fly' is not declared by @classLabel"),
])
def test_a_bad_ts_line_is_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.ts"
    path.write_text(HEADER + line + "\n")
    with pytest.raises(ValueError, match=f"{path}, {message}"):
        read_series(path)


@pytest.mark.parametrize("text, message", [
    ("series,step,a,label\ns,0,1,x\ns,0,2,x\n", "line 3: series 's' has step 0 twice"),
    ("series,step,a,label\ns,0,1,x\ns,1,2,y\n", "line 3: series 's' has the label 'y' here and 'x' before"),
    ("series,step,a,label\ns,0,,x\n", "line 2: a missing value"),
    ("series,step,a,label\ns,0.5,1,x\n", "line 2: step '0.5' is not a whole number"),
    ("series,step,a,label\ns,0,1,x,9\n", "line 2: 5 fields where the header has 4"),
    ("series,a,label\n", r"line 1: the header lacks the column\(s\) \['step'\]"),
    ("series,step,a,label\ns,0,1,x\ns,2,1,x\n", "series 's' lacks step 1"),
])
def test_a_bad_csv_row_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_series(path)


def test_a_test_label_unseen_in_training_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    train = _ts(tmp_path / "train.ts", _rows(rng, 10, labels=("walk", "run")))
    test = _ts(tmp_path / "test.ts", _rows(rng, 3, labels=("sit",)))
    with pytest.raises(ValueError, match="label 'sit' is not among the training file's classes"):
        load_data("timeseries", train=train, test=test)
    with pytest.raises(ValueError, match="needs data.test"):
        load_data("timeseries", train=train)
    with pytest.raises(ValueError, match="unknown extension '.txt'"):
        (tmp_path / "x.txt").write_text("")
        read_series(tmp_path / "x.txt")


@pytest.mark.parametrize("write", [_ts, _csv], ids=["ts", "csv"])
def test_unequal_lengths_are_pre_padded_as_the_transform_pads_a_raw_series(tmp_path, write):
    """Training pads to the longest training series with what the transform makes zeros; a test
    series that is shorter is padded, a longer one keeps its last steps; the transform applied to
    a raw series alone (what every runtime does with a predict line) gives the same model inputs."""
    rng = np.random.default_rng(7)
    train_rows = [r for k in range(20) for r in _rows(rng, 1, steps=3 + k % 5, labels=(("walk", "run")[k % 2],))]
    test_rows = _rows(rng, 1, steps=2) + _rows(rng, 1, steps=9) + _rows(rng, 1, steps=7)
    suffix = ".ts" if write is _ts else ".csv"
    header = HEADER.replace("@equalLength true", "@equalLength false")
    train = write(tmp_path / f"train{suffix}", train_rows, **({"header": header} if write is _ts else {}))
    test = write(tmp_path / f"test{suffix}", test_rows, **({"header": header} if write is _ts else {}))
    splits = load_data("timeseries", train=train, test=test, val=train)
    transform = InputTransform.from_dict(splits.info.transform)
    assert transform.length == 7 and splits.train.x.shape == (20, 7, 2) and splits.test.x.shape == (3, 7, 2)
    real = np.concatenate([np.array(channels).T for channels, _ in train_rows])
    np.testing.assert_allclose(transform.offset, real.mean(axis=0), rtol=1e-6)  # real steps only
    inputs = splits.test.batch(np.arange(3))[0].numpy()
    for k, (channels, _) in enumerate(test_rows):
        alone = transform.features(np.array(channels, np.float32).T[None])[0]
        np.testing.assert_array_equal(inputs[k], alone)
    assert (inputs[0, :5] == 0).all() and (inputs[0, 5:] != 0).all()  # two steps, five of padding
    np.testing.assert_array_equal(inputs[1], transform.features(np.array(test_rows[1][0], np.float32).T[None, -7:])[0])


def test_a_run_trains_on_ts_files_and_evaluates_from_anywhere(tmp_path, monkeypatch):
    from hadamrnn.cli import main

    rng = np.random.default_rng(3)
    monkeypatch.chdir(tmp_path)
    _ts(tmp_path / "train.ts", _rows(rng, 40)), _ts(tmp_path / "test.ts", _rows(rng, 9))
    (tmp_path / "toy.yaml").write_text("data: {name: timeseries, train: train.ts, test: test.ts, batch_size: 8}\n"
                                       "model: {hidden_size: 8}\noptim: {epochs: 2}\n")
    assert main(["train", "toy.yaml", "--out", "run"]) == 0
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert f"train: {tmp_path / 'train.ts'}" in config  # made absolute: eval finds it from anywhere
    monkeypatch.chdir(tmp_path.parent)
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0


@pytest.mark.parametrize("suffix", [".ts", ".csv"])
def test_a_split_dumped_as_series_trains_as_the_built_in_set(tmp_path, suffix, capsys):
    """hadamrnn data NAME --dump SPLIT -o FILE.ts|.csv writes what data: timeseries reads back exactly."""
    from hadamrnn.cli import main

    copy = ["--set", "data.length=24", "--set", "data.train_samples=8", "--set", "data.val_samples=4",
            "--set", "data.test_samples=4"]
    assert main(["data", "copy", *copy, "--dump", "test", "-o", str(tmp_path / f"t{suffix}")]) == 2
    assert "time-series files hold feature series with one class each; copy is not" in capsys.readouterr().err
    rng = np.random.default_rng(4)
    arrays = {"x_train": rng.normal(size=(20, 6, 3)).astype(np.float32), "y_train": rng.integers(0, 3, 20),
              "x_test": rng.normal(size=(5, 6, 3)).astype(np.float32), "y_test": rng.integers(0, 3, 5)}
    np.savez(tmp_path / "a.npz", **arrays)
    for split in ("train", "val", "test"):
        assert main(["data", "npz", "--path", str(tmp_path / "a.npz"), "--dump", split,
                     "-o", str(tmp_path / f"{split}{suffix}")]) == 0
    series = load_data("timeseries", train=tmp_path / f"train{suffix}", val=tmp_path / f"val{suffix}",
                       test=tmp_path / f"test{suffix}", normalize=False)
    built_in = load_data("npz", path=tmp_path / "a.npz")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(series, split).x.numpy(), getattr(built_in, split).x.numpy())
        np.testing.assert_array_equal(getattr(series, split).y.numpy(), getattr(built_in, split).y.numpy())
    assert main(["data", "timeseries", "--set", f"data.train={tmp_path / f'train{suffix}'}",
                 "--set", f"data.test={tmp_path / f'test{suffix}'}"]) == 0
    assert "timeseries: 3 classes" in capsys.readouterr().out


def test_a_training_file_of_one_class_is_refused(tmp_path):
    rows = _rows(np.random.default_rng(2), 4, labels=("walk",))
    with pytest.raises(ValueError, match=r"train\.ts: 1 class\(es\); a classifier needs 2"):
        load_data("timeseries", train=_ts(tmp_path / "train.ts", rows), test=_ts(tmp_path / "test.ts", rows))


def test_numeric_labels_keep_their_numeric_order(tmp_path):
    rng = np.random.default_rng(5)
    labels = [str(k) for k in range(12)]
    rows = _rows(rng, 24, labels=labels)
    header = HEADER.replace("walk run sit", " ".join(labels))
    splits = load_data("timeseries", train=_ts(tmp_path / "a.ts", rows, header), val=_ts(tmp_path / "v.ts", rows, header),
                       test=_ts(tmp_path / "t.ts", rows, header))
    np.testing.assert_array_equal(splits.test.y.numpy(), [int(label) for _, label in rows])


def test_predict_on_raw_series_of_unequal_lengths_reproduces_eval(tmp_path, monkeypatch, capsys):
    """Trained on pre-padded series, a model exported with its transform answers the raw series of the
    test file, one line each at its own length, as eval scored them, and names the classes as the
    files do, in every runtime (eval names them too)."""
    import json

    from hadamrnn.cli import main

    rng = np.random.default_rng(9)
    header = HEADER.replace("@equalLength true", "@equalLength false")
    train = [r for k in range(60) for r in _rows(rng, 1, steps=3 + k % 6, labels=(("walk", "run", "sit")[k % 3],))]
    test = [r for k in range(15) for r in _rows(rng, 1, steps=2 + k % 9, labels=(("walk", "run", "sit")[k % 3],))]
    _ts(tmp_path / "train.ts", train, header), _ts(tmp_path / "test.ts", test, header)
    (tmp_path / "toy.yaml").write_text("data: {name: timeseries, train: train.ts, test: test.ts, batch_size: 8}\n"
                                       "model: {hidden_size: 8}\noptim: {epochs: 2}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "toy.yaml", "--out", "run"]) == 0
    assert main(["eval", "run", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert sorted(evaluated["classes"]) == ["run", "sit", "walk"]
    assert sum(c["support"] for c in evaluated["classes"].values()) == len(test)
    assert main(["eval", "run"]) == 0
    assert "  walk: recall" in capsys.readouterr().out
    (tmp_path / "lines.txt").write_text("".join(" ".join(map(str, np.array(ch).T.reshape(-1))) + "\n"
                                                for ch, _ in test))
    assert main(["export", "run", "--target", "c", "-o", "c"]) == 0
    runs = [["run"], ["run", "--runtime", "torch"], ["c", "--runtime", "numpy-int"]]
    if importlib.util.find_spec("onnxruntime") is not None:
        runs.append(["run", "--runtime", "onnx"])
    answers = []
    for arguments in runs:
        capsys.readouterr()
        assert main(["predict", arguments[0], "lines.txt", *arguments[1:]]) == 0
        answers.append([line.split()[0] for line in capsys.readouterr().out.splitlines()])
    truth = [label for _, label in test]
    assert np.mean(np.array(answers[0]) == np.array(truth)) == pytest.approx(evaluated["metric"])
    assert all(names == answers[0] for names in answers[1:3])  # numpy-int: 16-bit states, same verdicts here
    assert all(names == answers[0] for names in answers[3:])


def test_a_features_length_goes_without_an_order_and_keeps_the_last_steps():
    with pytest.raises(ValueError, match="keeps the last steps and goes without an order"):
        InputTransform("features", offset=(0.0,), divisor=(1.0,), order=(1, 0), length=2)
    with pytest.raises(ValueError, match="keeps the last steps"):
        InputTransform("features", offset=(0.0,), divisor=(1.0,), length=2, keep="first")


def test_a_run_whose_files_changed_is_not_resumed(tmp_path):
    """Resuming reads the files again: a training file edited since the run started (other statistics,
    other classes) is refused, naming what changed, and the checkpoint is left as it was."""
    from hadamrnn.train import fit
    from hadamrnn.train.config import from_dict

    rng = np.random.default_rng(11)
    _ts(tmp_path / "train.ts", _rows(rng, 30)), _ts(tmp_path / "test.ts", _rows(rng, 6))
    config = from_dict({"data": {"name": "timeseries", "train": str(tmp_path / "train.ts"),
                                 "test": str(tmp_path / "test.ts"), "batch_size": 8},
                        "model": {"hidden_size": 8}, "optim": {"epochs": 2}})
    assert not fit(config, tmp_path / "run", progress=False, stop_after_steps=2).completed
    last = (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes()
    _ts(tmp_path / "train.ts", _rows(rng, 30))  # other values: other normalisation
    with pytest.raises(ValueError, match="the data set's transform changed since this run started"):
        fit(config, tmp_path / "run", resume=True, progress=False)
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").read_bytes() == last
