"""The README's command-line block, run as written: every line in order, by bash, in a scratch
directory whose ``~/data`` (and ``$HADAMRNN_DATA``) holds small fixture copies of MNIST and HAPT,
beside a small ``sweep.yaml`` (the README's sweep reads one: docs/sweeps.md shows the format)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import write_hapt, write_mnist

README = Path(__file__).resolve().parents[1] / "README.md"

# Lines not run here, and where what they do is tested instead.
ELSEWHERE = {
    "torchrun": "several processes: tests/train/test_distributed.py",
    "hadamrnn bench": "about 20 minutes: tests/test_cli_bench.py runs one configuration",
}


def command_lines() -> list[str]:
    """The commands of the README's "Command line" block, without their trailing comments."""
    block = README.read_text().split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.strip().splitlines() if line.strip()]


def test_the_readme_block_is_what_this_test_reads():
    lines = command_lines()
    assert lines[0] == "hadamrnn configs" and lines[-1] == "hadamrnn --version" and len(lines) > 20


def test_every_readme_command_runs_as_written(tmp_path):
    home = tmp_path / "home"
    write_hapt(write_mnist(home / "data"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "sweep.yaml").write_text(
        "base: copy-smoke\nset: {data.length: 30, optim.epochs: 1, data.train_samples: 128, data.val_samples: 32, "
        "data.test_samples: 32}\nspace: {optim.lr: {low: 1.0e-3, high: 1.0e-2, log: true}}\ntrials: 2\nseeds: [1, 2]\n")
    env = {**os.environ, "HOME": str(home), "HADAMRNN_DATA": str(home / "data"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    arm = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    ran, outputs = [], {}
    for line in command_lines():
        if any(line.startswith(prefix) for prefix in ELSEWHERE):
            continue
        if "qemu" in line and not arm:
            continue  # tests/deploy/test_mcu.py skips with the apt line
        if line.startswith("make") and not shutil.which("cc"):
            continue
        done = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, line
        ran.append(line)
        outputs[line] = done.stdout
    qemu_lines = sum("qemu" in line for line in command_lines())
    assert len(ran) >= len(command_lines()) - len(ELSEWHERE) - (0 if arm else qemu_lines)
    c_lines = next(out for line, out in outputs.items() if "pmnist_c/predict" in line).splitlines()
    integer = outputs["hadamrnn predict pmnist_c test.txt --runtime numpy-int"].splitlines()
    assert c_lines == integer and len(integer) == 12  # the fixture's 12 test images, C == numpy-int
    assert outputs["hadamrnn predict runs/pmnist test.txt"] == outputs["hadamrnn predict pmnist.hrnn test.txt"]
