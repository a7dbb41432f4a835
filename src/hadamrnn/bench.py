"""Training-step benchmark: a fast engine against the step-by-step loop, same process, interleaved.

One training step = forward, loss, backward, Adam update (``fused=True``, for both), on the paper's shapes:

| config | n | input | T | B | read-out | loss |
|---|---|---|---|---|---|---|
| pmnist | 512 | 1 pixel | 784 | 100 | last | cross-entropy, 10 classes |
| imdb | 128 | token ids, 10k vocab, embedding 512 | 500 | 100 | last | binary cross-entropy |
| copy | 128 | one-hot, 10 symbols | 1000 | 128 | every step | cross-entropy, 9 classes |
| ornn | 512 | 1 pixel | 784 | 100 | last | cross-entropy, 10 classes (the full-precision orthogonal RNN; with `--lstm` its row adds `lstm_step_s`, an LSTM of the same size, which takes most of `--config all`'s time) |
| pmnist-q8 | 512 | 1 pixel | 784 | 100 | last | as pmnist, trained with 8-bit fixed-point states (`state_bits: 8`; the loop is the fixed-point step loop, over a minute per step: not in `--config all`) |

IMDB batches are synthetic: token ranks drawn from a Zipf law (exponent 1) over the vocabulary and
reviews pre-padded to 500 tokens, so the number of distinct tokens per batch is that of real text.
Peak memory is measured in a fresh subprocess per engine (Linux): the peak resident set size during
two training steps minus the resident size just before them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .models import Task, build_model, model_options
from .models.hadamrnn import HadamRNN, HadamRNNConfig

__all__ = ["BENCH_CONFIGS", "benchmark", "main"]


@dataclass(frozen=True)
class BenchConfig:
    name: str
    model: dict
    batch: int
    steps: int
    loss: str  # "ce" | "bce" | "ce_all"
    family: str = "hadamrnn"  # model.name (hadamrnn.models)
    in_all: bool = True  # part of --config all (the fixed-point loop takes over a minute per step: by name only)


BENCH_CONFIGS = {
    "pmnist": BenchConfig("pmnist", dict(input_size=1, hidden_size=512, output_size=10), 100, 784, "ce"),
    "imdb": BenchConfig("imdb", dict(input_size=512, hidden_size=128, output_size=1, vocab_size=10_000), 100, 500, "bce"),
    "copy": BenchConfig("copy", dict(input_size=10, hidden_size=128, output_size=9, readout="all"), 128, 1000, "ce_all"),
    # the full-precision orthogonal baseline at pMNIST shape; its row also times an LSTM of the same size
    "ornn": BenchConfig("ornn", dict(input_size=1, hidden_size=512, output_size=10), 100, 784, "ce", family="ornn"),
    # many-to-many: the dense recurrence's fused adjoint (the kernel form serves the last state only)
    "ornn-copy": BenchConfig("ornn-copy", dict(input_size=10, hidden_size=128, output_size=9, readout="all"), 128, 1000,
                             "ce_all", family="ornn"),
    "pmnist-q8": BenchConfig("pmnist-q8", dict(input_size=1, hidden_size=512, output_size=10, state_bits=8), 100, 784,
                             "ce", in_all=False),
}


def _batch(config: BenchConfig, seed: int = 0):
    rng = np.random.default_rng(seed)
    b, t = config.batch, config.steps
    if config.name == "imdb":
        vocab = config.model["vocab_size"]
        ranks = np.arange(3, vocab, dtype=np.float64)  # ids 0 pad, 1 start, 2 out-of-vocabulary
        tokens = rng.choice(np.arange(3, vocab), size=(b, t), p=(1 / ranks) / (1 / ranks).sum())
        lengths = rng.integers(t // 4, t + 1, size=b)
        tokens[np.arange(t)[None, :] < (t - lengths)[:, None]] = 0
        return torch.from_numpy(tokens), torch.from_numpy(rng.integers(0, 2, b)).float()
    if config.loss == "ce_all":  # the copy task's shape
        x = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, 10, (b, t))), 10).float()
        return x, torch.from_numpy(rng.integers(0, 9, (b, t)))
    return torch.from_numpy(rng.random((b, t, 1), dtype=np.float32)), torch.from_numpy(rng.integers(0, 10, b))


def _model(config: BenchConfig, engine: str, family: str | None = None) -> torch.nn.Module:
    family = family or config.family
    if family == "hadamrnn":
        return HadamRNN(HadamRNNConfig(engine=engine, **config.model))
    m = config.model
    options = {"name": family, "hidden_size": m["hidden_size"], **({"engine": engine} if family == "ornn" else {})}
    task = Task(m["input_size"], m["output_size"], m.get("vocab_size"), m.get("readout", "last"))
    return build_model(model_options(options), task)


def _trainer(config: BenchConfig, engine: str, family: str | None = None):
    torch.manual_seed(0)
    model = _model(config, engine, family)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)  # as hadamrnn.train uses
    x, y = _batch(config)

    def step() -> None:
        out = model(x)
        if config.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(out.squeeze(-1), y)
        else:
            loss = F.cross_entropy(out.flatten(0, -2), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _peak_mb(config_name: str, engine: str) -> float:
    """Peak resident memory of two training steps above the resident size before them (fresh process)."""
    code = ("from hadamrnn.bench import BENCH_CONFIGS, _trainer, _memory_kb;"
            f"step = _trainer(BENCH_CONFIGS[{config_name!r}], {engine!r});"
            "open('/proc/self/clear_refs', 'w').write('5');"  # resets the peak (VmHWM) to the current size
            "before = _memory_kb('VmRSS'); step(); step(); print((_memory_kb('VmHWM') - before) / 1024)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def benchmark(config_name: str, engine: str = "auto", repeats: int = 5, memory: bool = True, lstm: bool = False,
              say=lambda message: None) -> dict:
    """Median training-step seconds of ``engine`` and ``loop``, timed alternately, and peak memory;
    ``lstm``: an LSTM of the same size for the ORNN rows too. ``say`` receives a line per stage."""
    config = BENCH_CONFIGS[config_name]
    say(f"{config_name}: building and warming up ({engine} and loop)")
    fast, slow = _trainer(config, engine), _trainer(config, "loop")
    fast(), slow()  # warm-up: compilation, allocator
    fast_times, slow_times = [], []
    for k in range(repeats):
        say(f"{config_name}: timed step {k + 1} of {repeats} of each")
        for step, times in ((fast, fast_times), (slow, slow_times)):
            times.append(_timed(step))
    fast_s, slow_s = statistics.median(fast_times), statistics.median(slow_times)
    result = {"config": config_name, "engine": engine, "engine_step_s": fast_s, "loop_step_s": slow_s,
              "speedup": slow_s / fast_s}
    if lstm and config.family == "ornn":  # an LSTM of the same size and shape, for reference (no fast path)
        say(f"{config_name}: an LSTM of the same size, {repeats + 1} steps")
        step = _trainer(config, engine, "lstm")
        step()
        result["lstm_step_s"] = statistics.median(_timed(step) for _ in range(repeats))
    if memory:
        say(f"{config_name}: peak memory, a fresh process per engine")
        result["engine_peak_mb"] = _peak_mb(config_name, engine)
        result["loop_peak_mb"] = _peak_mb(config_name, "loop")
    return result


def main(configs: list[str], engine: str = "auto", repeats: int = 5, as_json: bool = False,
         lstm: bool = False) -> list[dict]:
    results = []

    def say(message: str) -> None:  # progress on standard error: the table or JSON stays on standard output
        print(message, file=sys.stderr, flush=True)

    if not as_json:
        print(f"training step (forward + backward + Adam), median of {repeats}, torch threads "
              f"{torch.get_num_threads()}")
        print(f"{'config':8} {'engine s':>10} {'loop s':>10} {'speedup':>8} {'engine MB':>10} {'loop MB':>10}")
    for name in configs:
        r = benchmark(name, engine, repeats, lstm=lstm, say=say)
        results.append(r)
        if as_json:
            print(json.dumps(r))
        else:
            print(f"{name:8} {r['engine_step_s']:10.4f} {r['loop_step_s']:10.4f} {r['speedup']:7.1f}× "
                  f"{r['engine_peak_mb']:10.1f} {r['loop_peak_mb']:10.1f}"
                  + (f"   LSTM of the same size: {r['lstm_step_s']:.4f} s" if "lstm_step_s" in r else ""), flush=True)
    return results
