import json

import pytest
import torch

from hadamrnn.cli import main
from hadamrnn.train import fit, load_config, load_trained

SMALL = ["data.name=copy", "data.length=24", "data.train_samples=96", "data.val_samples=32", "data.test_samples=48",
         "data.batch_size=16", "model.hidden_size=16", "optim.epochs=3", "optim.lr=0.01", "optim.gamma=0.9",
         "optim.seed=4"]


def _config(*extra):
    return load_config(None, SMALL + list(extra))


def test_run_directory_contents(tmp_path):
    result = fit(_config(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "curves.png", "results.json",
                 "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    results = json.loads((run / "results.json").read_text())
    assert results == result.results
    assert {"test_metric", "metric_name", "best_val_metric", "epochs", "seconds"} <= set(results)
    assert results["best_val_metric"] == min(r["val_metric"] for r in records)
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("stop_after", [4, 6, 13])  # mid-epoch, at an epoch end, mid-epoch later
def test_interrupted_and_resumed_run_equals_a_straight_run(tmp_path, stop_after):
    straight = fit(_config(), tmp_path / "straight", progress=False)
    stopped = fit(_config(), tmp_path / "resumed", progress=False, stop_after_steps=stop_after)
    assert not stopped.completed
    resumed = fit(None, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.completed
    a, _, _ = load_trained(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, _, _ = load_trained(tmp_path / "resumed" / "checkpoints" / "last.safetensors")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(resumed.results) == strip(straight.results)
    lines = lambda run: [strip(json.loads(l)) for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731,E741
    assert lines("resumed") == lines("straight")


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    fit(_config("optim.epochs=1"), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="--resume"):
        fit(_config("optim.epochs=1"), tmp_path / "run", progress=False)


def test_cli_train_eval_size_data(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("data: {name: copy, length: 24, train_samples: 64, val_samples: 16, test_samples: 32, batch_size: 16}\n"
                      "model: {hidden_size: 16}\noptim: {epochs: 1, lr: 0.01}\n")
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    assert "test cross_entropy" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == f"hadamrnn train {config} --out {out}"  # what trained it, for the record
    assert main(["eval", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["metric"] == pytest.approx(results["test_metric"], rel=1e-6)
    assert main(["size", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["W"] == 16
    assert main(["size", str(config)]) == 0
    assert "sign bits" in capsys.readouterr().out
    assert main(["data", "copy", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["train"]["sample_shape"] == [1000, 10]


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("optim: {learning_rate: 0.1}\n")
    assert main(["train", str(config), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown key optim.learning_rate" in err and "Traceback" not in err


def test_sigkill_mid_training_leaves_a_resumable_checkpoint(tmp_path):
    """A real kill -9 at an arbitrary moment: the run resumes and ends as an uninterrupted one."""
    import subprocess
    import sys
    import time

    overrides = ["data.name=copy", "data.length=24", "data.train_samples=3200", "data.val_samples=32",
                 "data.test_samples=32", "data.batch_size=16", "model.hidden_size=16", "optim.epochs=2",
                 "optim.lr=0.01", "optim.seed=5", "optim.checkpoint_minutes=0"]
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "hadamrnn.cli", "train", "--out", str(run)]
    for item in overrides:
        command += ["--set", item]
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    process = subprocess.Popen(command[:4] + [str(config)] + command[4:], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.safetensors").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # early in the 400 steps: checkpoints are being rewritten after every step
    process.kill()
    process.wait()
    assert not (run / "results.json").exists(), "the run finished before it could be killed; make it longer"
    resumed = fit(None, run, resume=True, progress=False)
    straight = fit(load_config(None, overrides[:-1]), tmp_path / "straight", progress=False)
    a = load_trained(run / "checkpoints" / "last.safetensors")[0].state_dict()
    b = load_trained(tmp_path / "straight" / "checkpoints" / "last.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.results["test_metric"] == straight.results["test_metric"]


def test_latent_learning_rate_zero_freezes_w(tmp_path):
    fit(_config("optim.latent_lr=0", "optim.epochs=1"), tmp_path / "run", progress=False)
    model = load_trained(tmp_path / "run" / "checkpoints" / "last.safetensors")[0]
    torch.manual_seed(4)  # the same seed builds the same initial latent
    from hadamrnn.train import build_model
    from hadamrnn.data import load_data

    initial = build_model(_config(), load_data("copy", length=24, train_samples=8).info)
    assert torch.equal(model.latent, initial.latent)
    assert model.recurrence.flips(model.latent) == 0


def test_order_seed_draws_the_example_order_and_seed_the_initial_weights(tmp_path, monkeypatch):
    from hadamrnn.train import loop

    starts, order_seeds = [], []
    build, randperm = loop.build_model, torch.randperm

    def recording_build(*args):
        model = build(*args)
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    def recording_randperm(n, generator):
        order_seeds.append(generator.initial_seed())
        return randperm(n, generator=generator)

    monkeypatch.setattr(loop, "build_model", recording_build)
    monkeypatch.setattr(loop.torch, "randperm", recording_randperm)
    runs, first_start = {}, {}
    for name, extra in {"seed 4": [], "seed 4, order 5": ["optim.order_seed=5"], "seed 5": ["optim.seed=5"],
                        "seed 4, order 4": ["optim.order_seed=4"]}.items():
        starts.clear()  # the test pass builds a model again, from the best checkpoint
        runs[name] = fit(_config("optim.epochs=2", *extra), tmp_path / name.replace(" ", ""), progress=False).results
        first_start[name] = starts[0]
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(first_start["seed 4"], first_start["seed 4, order 5"])  # the start is seed's alone
    assert not same(first_start["seed 4"], first_start["seed 5"])
    assert order_seeds == [4 * 100_003, 4 * 100_003 + 1, 5 * 100_003, 5 * 100_003 + 1,
                           5 * 100_003, 5 * 100_003 + 1, 4 * 100_003, 4 * 100_003 + 1]  # the order is order_seed's
    assert runs["seed 4, order 5"]["best_val_metric"] != runs["seed 4"]["best_val_metric"]
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(runs["seed 4, order 4"]) == strip(runs["seed 4"])  # unset, it is the seed


def test_size_of_a_paper_config_needs_no_data(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)  # no ./data here
    configs = Path(__file__).resolve().parents[2] / "configs"
    assert main(["size", str(configs / "pmnist.yaml"), "--json"]) == 0
    bits = json.loads(capsys.readouterr().out)
    assert bits["W"] == 512 and bits["U"] == 512 * 4 + 32 and bits["V"] == 10 * 512 * 4 + 32
    assert main(["size", str(configs / "imdb.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embedding"] == 10_000 * 512 * 32


@pytest.mark.parametrize("epoch", [1, 2])
def test_ctrl_c_writes_a_checkpoint_and_resume_finishes_as_a_straight_run(tmp_path, epoch):
    """SIGINT in the first epoch (no checkpoint on disk yet) and in a later one; then the command
    the message names finishes the run, which ends exactly as an uninterrupted one."""
    import os
    import shlex
    import signal
    import subprocess
    import sys

    overrides = ["data.length=24", "data.train_samples=3200", "data.val_samples=32", "data.test_samples=32",
                 "data.batch_size=16", "model.hidden_size=16", "optim.epochs=2", "optim.lr=0.01", "optim.seed=5"]
    run = tmp_path / "run"
    command = [sys.executable, "-m", "hadamrnn.cli", "train", "copy-smoke", "--out", str(run)]
    for item in overrides:
        command += ["--set", item]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wanted = "training copy" if epoch == 1 else "epoch 1:"
    for line in process.stdout:
        if line.startswith(wanted):
            break
    process.send_signal(signal.SIGINT)  # a 200-step epoch is under way (or about to be)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and f"after {epoch - 1} epoch(s)" in err, err
    resume = err.strip().splitlines()[-1].split("Continue with: ")[1]
    done = subprocess.run([sys.executable, "-m", "hadamrnn.cli", *shlex.split(resume)[1:]], capture_output=True,
                          text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr
    straight = fit(load_config("copy-smoke", overrides), tmp_path / "straight", progress=False)
    results = json.loads((run / "results.json").read_text())
    assert results["test_metric"] == straight.results["test_metric"]


def test_progress_off_a_terminal_is_plain_lines(tmp_path, capsys, monkeypatch):
    import hadamrnn.train.loop as loop

    fit(_config("optim.epochs=1"), tmp_path / "quiet", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 0  # 6 steps in well under 30 s: nothing to report
    monkeypatch.setattr(loop, "PLAIN_PROGRESS_SECONDS", 0.0)
    fit(_config("optim.epochs=1"), tmp_path / "chatty", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("step ") == 6 and "epoch 1/1: step 6/6, loss" in err


def test_a_configuration_too_big_for_the_machine_is_refused_before_allocating(tmp_path):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r"training this configuration .* needs at least ~\d+.*GiB.* reduce data.batch_size"):
        fit(_config("data.length=1000000", "data.batch_size=100000", "model.hidden_size=1024"), tmp_path / "big",
            progress=False)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing big was touched
    assert not (tmp_path / "big").exists()


def test_the_memory_estimate_against_hand_arithmetic():
    from hadamrnn.data import load_data
    from hadamrnn.train import training_bytes

    info = load_data("copy", length=24, train_samples=8).info  # d = 10, C = 9, read-out at every step
    parameters = 16 * 10 + 2 * 16 + 9 * 16 + 9  # U, b and latent, V, c
    per_step = 4 * 10 + 16 + 8 * 9  # inputs, relu pattern, logits and their gradient
    building = 26 * 16 * 16 + 4 * parameters  # the measured start-up peak of HadamRNN, 26 bytes per n²
    assert building > 16 * parameters + 16 * 16  # at n = 16, building costs more than Adam's copies
    assert training_bytes(_config(), info, 24) == building + 16 * 24 * per_step
    assert training_bytes(_config("model.engine=loop"), info, 24) == building + 16 * 24 * (per_step + 12 * 16)
    lstm = _config("model.name=lstm")  # 4 n² recurrent weights, each with a gradient and two moments
    assert training_bytes(lstm, info, 24) == 16 * (parameters + 4 * 16 * 16) + 16 * 24 * (per_step + 12 * 16)


def test_resume_with_more_epochs_extends_a_finished_run_as_if_it_had_been_longer(tmp_path, capsys):
    longer = fit(_config("optim.epochs=4"), tmp_path / "straight", progress=False)
    fit(_config("optim.epochs=2"), tmp_path / "extended", progress=False)
    assert main(["train", "--resume", "--out", str(tmp_path / "extended"), "--set", "optim.epochs=4"]) == 0
    extended = json.loads((tmp_path / "extended" / "results.json").read_text())
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "resumed_with")}  # noqa: E731
    assert strip(extended) == strip(longer.results) and extended["epochs"] == 4
    assert extended["resumed_with"] == [f"hadamrnn train --resume --out {tmp_path / 'extended'} --set optim.epochs=4"]
    a, _, _ = load_trained(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, config, _ = load_trained(tmp_path / "extended" / "checkpoints" / "last.safetensors")
    assert config.optim.epochs == 4
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name


def test_resume_can_end_a_run_sooner_but_not_before_an_epoch_it_has_begun(tmp_path, capsys):
    stopped = fit(_config("optim.epochs=4"), tmp_path / "run", progress=False, stop_after_steps=8)  # in epoch 2
    assert not stopped.completed and stopped.epoch == 1
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--set", "optim.epochs=1"]) == 2
    assert "has begun epoch 2; choose at least 2" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--set", "optim.lr=0.1"]) == 2
    assert "--set takes only optim.epochs=N" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--set", "optim.epochs=2"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epochs"] == 2


def test_macro_f1_against_hand_arithmetic():
    from hadamrnn.train.loop import macro_f1

    # rows true, columns predicted; class 2 neither occurs nor is predicted: left out of the mean
    confusion = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # rows: true class, columns: predicted
    counts = torch.stack([confusion.diagonal(), confusion.sum(1), confusion.sum(0)])
    assert macro_f1(counts) == pytest.approx((2 * 5 / (2 * 5 + 2 + 1) + 2 * 3 / (2 * 3 + 1 + 2)) / 2)


def test_evaluate_reports_the_macro_f1_of_its_predictions():
    from hadamrnn.data import load_data
    from hadamrnn.train import build_model, evaluate

    config = load_config(None, ["data.length=24", "data.train_samples=16", "data.val_samples=16",
                                "data.test_samples=40", "model.hidden_size=16"])
    splits = load_data("copy", None, length=24, train_samples=16, val_samples=16, test_samples=40, seed=0)
    model = build_model(config, splits.info)
    result = evaluate(model, splits.test, splits.info, 16)
    x, y = splits.test.batch(torch.arange(len(splits.test)))
    with torch.no_grad():
        predicted, truth = model(x).argmax(-1).reshape(-1), y.reshape(-1)
    scores = [2 * ((predicted == c) & (truth == c)).sum() / ((predicted == c).sum() + (truth == c).sum())
              for c in range(splits.info.output_size) if ((predicted == c) | (truth == c)).any()]
    assert result["macro_f1"] == pytest.approx(float(torch.stack(scores).mean()))
    assert result["accuracy"] == pytest.approx(float((predicted == truth).double().mean()))


def test_a_model_too_big_to_build_is_refused_by_size_eval_and_train_before_allocating(tmp_path, capsys):
    """hidden_size=65536 would build a dense 65536² Hadamard basis and its temporaries (≈26 bytes per entry)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for command in (["size", "copy-smoke", "--set", "model.hidden_size=65536"],
                    ["train", "copy-smoke", "--set", "model.hidden_size=65536", "--out", str(tmp_path / "r")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "needs at least ~" in err and "model.hidden_size" in err and "Traceback" not in err, err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert not (tmp_path / "r").exists()


def test_resume_says_where_it_continues(tmp_path, capsys):
    run = tmp_path / "run"
    fit(_config(), run, progress=False, stop_after_steps=7)  # 6 steps an epoch: epoch 2, step 1 done
    capsys.readouterr()
    fit(None, run, resume=True, progress=True)
    out = capsys.readouterr().out
    assert f"resuming {run}: 1 of 3 epochs done, continuing epoch 2 at step 2 of 6 (global step 8;" in out


def test_curves_are_drawn_once_for_fast_epochs_and_at_every_slow_one(tmp_path, monkeypatch):
    from hadamrnn.train import metrics

    drawn = []
    real = metrics.MetricsLog._plot
    monkeypatch.setattr(metrics.MetricsLog, "_plot", lambda self: drawn.append(len(self.records())) or real(self))
    fit(_config(), tmp_path / "fast", progress=False)  # 3 epochs in a few seconds: one drawing, at the end
    assert drawn == [3]
    drawn.clear()
    monkeypatch.setattr(metrics, "PLOT_SECONDS", 0.0)  # epochs slower than PLOT_SECONDS: each is drawn
    fit(_config(), tmp_path / "slow", progress=False)
    assert drawn == [1, 2, 3]
    drawn.clear()
    monkeypatch.setattr(metrics, "PLOT_SECONDS", 3600.0)
    assert not fit(_config(), tmp_path / "stopped", progress=False, stop_after_steps=8).completed
    assert drawn == [1]  # a stop draws what the log holds
