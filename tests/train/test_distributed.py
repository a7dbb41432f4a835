"""`torchrun --nproc_per_node=2 -m hadamrnn train`: two CPU processes (gloo, loopback) train as one process
with the combined batch; one set of files; a 2-process checkpoint resumes in one process."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest
import torch

from hadamrnn.train import load_trained

CONFIG = """data: {name: copy, length: 24, train_samples: 100, val_samples: 40, test_samples: 48, batch_size: 16, seed: 0}
model: {name: NAME, hidden_size: 16EXTRA}
optim: {epochs: 2, lr: 0.01, gamma: 0.9, seed: 4}
"""
FILES = {"config.yaml", "metrics.jsonl", "metrics.csv", "curves.png", "results.json",
         "checkpoints/best.safetensors", "checkpoints/last.safetensors"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hadamrnn(*args, processes=1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                 "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "hadamrnn"]
                if processes > 1 else [sys.executable, "-m", "hadamrnn"])
    done = subprocess.run([*launcher, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


LEAVE = """
import os, time, torch
from hadamrnn.train.distributed import join, leave

def threads():
    return len(os.listdir("/proc/self/task"))

ranks, _ = join("cpu")
def step():
    net = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
    net(torch.randn(3, 4)).sum().backward()
step()
before = threads()
leave(ranks)
# a joined thread can linger in /proc for a moment on a loaded machine; one never joined stays
deadline = time.monotonic() + 10
while threads() >= before and time.monotonic() < deadline:
    time.sleep(0.05)
# one write(2) of a short line: the two ranks share the pipe, and print's separate newline could interleave
os.write(1, f"rank {ranks.rank}: {before} threads before leave, {threads()} after\\n".encode())
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc/self/task (Linux)")
def test_leave_joins_the_process_groups_threads(tmp_path):
    # A gloo worker thread alive at interpreter shutdown can abort the process (distributed.leave)
    (tmp_path / "leave.py").write_text(LEAVE)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(tmp_path / "leave.py")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    counts = [(int(before), int(after)) for before, after in
              re.findall(r"rank \d+: (\d+) threads before leave, (\d+) after", done.stdout)]
    assert len(counts) == 2 and all(after < before for before, after in counts), done.stdout


def _parameters(run):
    return load_trained(run / "checkpoints" / "last.safetensors")[0].state_dict()


def _close(a, b):
    for name, value in a.items():
        if value.is_floating_point():
            torch.testing.assert_close(b[name], value, rtol=1e-5, atol=1e-6, msg=name)
        else:
            assert torch.equal(b[name], value), name


@pytest.mark.parametrize("family", ["hadamrnn", "gru"])
def test_two_processes_train_as_one_with_the_combined_batch_and_resume_in_one(tmp_path, family):
    # float U and V: a 4-bit quantizer turns a last-bit difference of the gradient sums into a level flip
    extra = ", input_bits: null, output_bits: null" if family == "hadamrnn" else ""
    (tmp_path / "run.yaml").write_text(CONFIG.replace("NAME", family).replace("EXTRA", extra))
    # 100 samples in batches of 16: the last batch (4) is split 2 + 2; validation 40 = 16 + 16 + 8
    two = _hadamrnn("train", tmp_path / "run.yaml", "--out", tmp_path / "two", processes=2)
    _hadamrnn("train", tmp_path / "run.yaml", "--out", tmp_path / "one")
    assert two.count("test cross_entropy") == 1  # one process speaks
    _close(_parameters(tmp_path / "one"), _parameters(tmp_path / "two"))
    files = {str(p.relative_to(tmp_path / "two")) for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert files == FILES
    a, b = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))
    assert b["test_metric"] == pytest.approx(a["test_metric"], rel=1e-4)  # evaluation reduced over both processes
    assert b["steps"] == a["steps"]
    # the 2-process checkpoint, continued by one process for a third epoch = one process for three epochs
    _hadamrnn("train", "--resume", "--out", tmp_path / "two", "--set", "optim.epochs=3")
    _hadamrnn("train", tmp_path / "run.yaml", "--out", tmp_path / "three", "--set", "optim.epochs=3")
    _close(_parameters(tmp_path / "three"), _parameters(tmp_path / "two"))
    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
