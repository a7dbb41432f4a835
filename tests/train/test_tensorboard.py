"""``hadamrnn train --tensorboard``: the event files hold what metrics.jsonl and results.json hold,
every step once across a stop and a resume; without the package, a clear error before any write."""

import json
import sys

import pytest

from hadamrnn.cli import main
from hadamrnn.train import fit, load_config

pytest.importorskip("tensorboard", reason="pip install 'hadamrnn[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

COPY = ["data.length=24", "data.train_samples=64", "data.val_samples=16", "data.test_samples=16",
        "data.batch_size=16", "model.hidden_size=8", "optim.epochs=2"]


def _scalars(run_dir):
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_events_match_the_run_records_across_a_stop_and_a_resume(tmp_path):
    run = tmp_path / "run"
    stopped = fit(load_config(None, COPY), run, progress=False, stop_after_steps=6, tensorboard=True)
    assert not stopped.completed  # 4 steps per epoch: stopped inside the second epoch
    results = fit(None, run, resume=True, progress=False, tensorboard=True).results
    scalars = _scalars(run)
    for tag in ("step/batch_loss", "step/train_loss", "step/lr", "step/gradient_norm", "step/flips"):
        assert [step for step, _ in scalars[tag]] == list(range(1, 9)), tag  # each step once
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in scalars["epoch/val_metric"]] == [r["step"] for r in records] == [4, 8]
    for record, (_, value) in zip(records, scalars["epoch/val_metric"]):
        assert value == pytest.approx(record["val_metric"], rel=1e-6)
    assert scalars["test/metric"] == [(8, pytest.approx(results["test_metric"], rel=1e-6))]
    last_epoch_loss = [value for step, value in scalars["step/train_loss"] if step == 8][0]
    assert last_epoch_loss == pytest.approx(records[-1]["train_loss"], rel=1e-6)  # the running mean of epoch 2


def test_without_the_package_the_error_names_the_extra_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    sets = [arg for item in COPY for arg in ("--set", item)]
    assert main(["train", "copy-smoke", *sets, "--out", str(tmp_path / "run"), "--tensorboard"]) != 0
    assert "pip install 'hadamrnn[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
