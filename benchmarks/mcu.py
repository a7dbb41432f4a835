"""HadamRNN on a Cortex-M4: flash, RAM and executed instructions per step, beside a dense int8 step.

    python benchmarks/mcu.py [--bits 12] [--json]
    python benchmarks/mcu.py --model SOURCE --window T [--cores m4,m4-portable,m0] [--json]   # one trained model

Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm`` (Debian: ``apt-get install gcc-arm-none-eabi
libnewlib-arm-none-eabi qemu-system-arm``). For each n in {64, 128, 256, 512}, a full and a block
Hadamard model, d = 1 and d = 8, 10 classes, 4-bit U/V and ``--bits`` states, the C written by
``hadamrnn.deploy.codegen`` is compiled with ``arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb`` at
``-Os`` and ``-O2``:

- flash: text + data of ``hadamrnn_model.o`` (``arm-none-eabi-size``): the model's code and weights;
- RAM: data + bss of that object, plus the deepest stack path ``hrnn_sequence`` → ``hrnn_step`` or
  ``hrnn_logits`` (``-fstack-usage``);
- instructions per step: executed instructions counted by QEMU (``mps2-an386``, ``-singlestep -d
  exec,nochain``: one log line per instruction) for two step counts, difference over difference.

The same is measured, in the same run and with the same flags, for a plain dense step with int8
``W``/``U``, int16 states and int32 accumulators (``benchmarks/mcu/dense_step.c``). Executed
instructions are not cycles: a load takes two cycles on a Cortex-M4, a taken branch one to three,
so no cycle count is claimed here.

With ``--model`` (a run directory, checkpoint or ``pretrained:NAME``: a HadamRNN trained with
``model.state_bits``, or a FastGRNN trained with ``model.activations: hard``, exported as ``hadamrnn
export SOURCE --target c`` does), the same flash, RAM and instructions per step
are measured for that model, with its stored bytes (the constant arrays of the generated C) and the
instructions of one window: ``T`` steps and the read-out, less the count of a run of no step; once
per core: ``m4`` (``-mcpu=cortex-m4``, the DSP path where the model's bounds allow it), ``m4-portable``
(the same core, ``-DHRNN_PORTABLE``: the plain C path), ``m0`` (``-mcpu=cortex-m0`` on QEMU's
``microbit``: ARMv6-M, no DSP instructions). The grid (without ``--model``) is built for the M4.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import load_integer_model, weight_bytes, write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

HERE = Path(__file__).resolve().parent / "mcu"
# core -> (compiler flags, QEMU machine, linker script): the M4 with the DSP path where the model's
# bounds allow it, the M4 with the plain C path, the M0 (ARMv6-M: no DSP instructions).
CORES = {"m4": (["-mcpu=cortex-m4", "-mthumb"], "mps2-an386", "mps2_an386.ld"),
         "m4-portable": (["-mcpu=cortex-m4", "-mthumb", "-DHRNN_PORTABLE"], "mps2-an386", "mps2_an386.ld"),
         "m0": (["-mcpu=cortex-m0", "-mthumb"], "microbit", "microbit.ld")}
QEMU = ["qemu-system-arm", "-display", "none", "-serial", "none", "-monitor", "none",
        "-semihosting-config", "enable=on,target=native"]
INSTALL = "apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"


def _run(command: list[str], cwd: Path) -> str:
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _object_size(source: Path, opt: str, folder: Path, core: str = "m4") -> dict:
    """Flash and RAM of one compiled source file (text+data, data+bss) and its functions' stack use."""
    obj = folder / f"{source.stem}{opt}{core}.o"
    _run(["arm-none-eabi-gcc", "-std=c99", opt, *CORES[core][0], "-fstack-usage", "-c", str(source), "-o", str(obj)],
         folder)
    text, data, bss = map(int, _run(["arm-none-eabi-size", str(obj)], folder).splitlines()[1].split()[:3])
    stack = {}
    for line in obj.with_suffix(".su").read_text().splitlines():
        name, size = re.match(r".*:(\w+)\t(\d+)", line).groups()
        stack[name] = int(size)
    return {"flash": text + data, "static_ram": data + bss, "stack": stack}


def _count(sources: list[Path], opt: str, defines: list[str], folder: Path, core: str = "m4") -> int:
    """Instructions executed under QEMU by the program built from ``sources`` with ``defines``."""
    flags, machine, script = CORES[core]
    elf = folder / f"{'_'.join(d.lstrip('-D').replace('=', '') for d in defines)}{opt}{core}.elf"
    _run(["arm-none-eabi-gcc", "-std=c99", opt, *flags, *defines, "-nostartfiles",
          "--specs=rdimon.specs", "-T", str(folder / script), "-I", str(folder), "-o", str(elf),
          str(folder / "startup_cortex_m.c"), *map(str, sources)], folder)
    process = subprocess.Popen([*QEMU, "-M", machine, "-kernel", str(elf), "-singlestep", "-d", "exec,nochain",
                                "-D", "/dev/stderr"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = 0
    while chunk := process.stderr.read(1 << 20):
        lines += chunk.count(b"\n")
    if process.wait() != 0:
        raise RuntimeError(f"{elf.name} failed under QEMU")
    return lines


def _instructions(sources: list[Path], opt: str, defines: list[str], folder: Path, steps: tuple[int, int],
                  core: str = "m4") -> float:
    """Executed instructions per step: (count(steps[1]) - count(steps[0])) / (steps[1] - steps[0])."""
    counts = [_count(sources, opt, [*defines, f"-DSTEPS={count}"], folder, core) for count in steps]
    return (counts[1] - counts[0]) / (steps[1] - steps[0])


def _dense_header(n: int, d: int, bits: int, folder: Path) -> None:
    rng = np.random.default_rng(0)

    def table(name, values):
        return f"static const int8_t {name}[{values.size}] = {{{', '.join(map(str, values.reshape(-1)))}}};"

    shift = 7 + int(np.log2(n)) // 2  # keeps a random state in range; the value does not change the count
    (folder / "dense_weights.h").write_text("\n".join([
        f"#define N {n}", f"#define D {d}", f"#define BITS {bits}", f"#define SHIFT {shift}",
        table("W", rng.integers(-127, 128, (n, n))), table("U", rng.integers(-127, 128, (n, d))),
        f"static const int16_t B[{n}] = {{{', '.join(map(str, rng.integers(-64, 64, n)))}}};", ""]))


def measure(n: int, block: int, d: int, bits: int, root: Path) -> dict:
    folder = root / f"n{n}_m{block}_d{d}"
    folder.mkdir()
    torch.manual_seed(0)
    model = HadamRNN(HadamRNNConfig(input_size=d, hidden_size=n, output_size=10, block_size=block,
                                    input_bits=4, output_bits=4))
    export_model(model, folder / "model.hrnn")
    calibration = np.random.default_rng(0).normal(0, 1, (16, 50, d))
    write_c(quantize_model(runtime.load(folder / "model.hrnn"), calibration, bits), folder)
    _dense_header(n, d, bits, folder)
    shutil.copy(HERE / "dense_step.c", folder)
    shutil.copy(HERE / "run_steps.c", folder)
    row = {"n": n, "block": block, "d": d, "bits": bits}
    steps = (2, 6) if n <= 128 else (1, 3)
    for opt in ("-Os", "-O2"):
        size = _object_size(folder / "hadamrnn_model.c", opt, folder)
        stack = size["stack"]["hrnn_sequence"] + max(size["stack"]["hrnn_step"], size["stack"]["hrnn_logits"])
        dense = _object_size(folder / "dense_step.c", opt, folder)
        key = opt[1:]
        row[f"flash_{key}"] = size["flash"]
        row[f"ram_{key}"] = size["static_ram"] + stack
        row[f"dense_flash_{key}"] = dense["flash"]
        row[f"dense_ram_{key}"] = dense["static_ram"] + dense["stack"]["dense_step"]
        row[f"instructions_{key}"] = _instructions([folder / "run_steps.c", folder / "hadamrnn_model.c"], opt, [],
                                                   folder, steps)
        row[f"dense_instructions_{key}"] = _instructions([folder / "run_steps.c", folder / "dense_step.c"], opt,
                                                         ["-DDENSE"], folder, steps)
        row[f"ratio_{key}"] = row[f"dense_instructions_{key}"] / row[f"instructions_{key}"]
    return row


def measure_model(source: str, window: int, root: Path, cores: list[str], state_bits: int | None = None) -> list[dict]:
    """Flash, RAM, stored bytes and instructions per step and per window of one trained model, a row per core."""
    folder = root / "model"
    bits = ["--bits", str(state_bits)] if state_bits is not None else []
    subprocess.run([sys.executable, "-m", "hadamrnn", "export", source, "--target", "c", "-o", str(folder), *bits],
                   check=True, capture_output=True, text=True)
    shutil.copy(HERE / "run_steps.c", folder)
    integer = load_integer_model(folder / "integer_model.npz")
    sources = [folder / "run_steps.c", folder / "hadamrnn_model.c"]
    rows = []
    for core in cores:
        row = {"model": source, "family": integer.family, "core": core, "n": integer.v_levels.shape[1],
               "d": integer.input_size, "bits": integer.bits, "window": window, "stored_bytes": weight_bytes(integer)}
        if integer.family == "hadamrnn":
            row["block"] = integer.block
        else:  # FastGRNN: the ranks of W and U (None: full)
            row.update({f"{name}_rank": factors[0].shape[0] if len(factors) == 2 else None
                        for name, factors in (("w", integer.w_factors), ("u", integer.u_factors))})
        for opt in ("-Os", "-O2"):
            size = _object_size(folder / "hadamrnn_model.c", opt, folder, core)
            stack = size["stack"]["hrnn_sequence"] + max(size["stack"]["hrnn_step"], size["stack"]["hrnn_logits"])
            key = opt[1:]
            row[f"flash_{key}"] = size["flash"]
            row[f"ram_{key}"] = size["static_ram"] + stack
            row[f"instructions_{key}"] = _instructions(sources, opt, [], folder, (2, 6), core)
            row[f"window_instructions_{key}"] = (
                _count(sources, opt, [f"-DSTEPS={window}", "-DLOGITS"], folder, core)
                - _count(sources, opt, ["-DSTEPS=0"], folder, core))
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=12, help="state bits (default 12)")
    parser.add_argument("--sizes", default="64,128,256,512", help="hidden sizes n, comma-separated")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--model", help="a trained fixed-point model (run directory, checkpoint or pretrained:NAME)")
    parser.add_argument("--state-bits", type=int, help="with --model: the export's --bits (default: the export's)")
    parser.add_argument("--window", type=int, default=128, help="steps of one window with --model (default 128)")
    parser.add_argument("--cores", default="m4,m4-portable,m0",
                        help=f"with --model: cores, comma-separated, of {', '.join(CORES)} (default all)")
    args = parser.parse_args()
    missing = [tool for tool in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(tool) is None]
    if missing:
        print(f"{', '.join(missing)} not found; install with: {INSTALL}", file=sys.stderr)
        return 2
    if args.model:
        cores = args.cores.split(",")
        unknown = [core for core in cores if core not in CORES]
        if unknown:
            parser.error(f"unknown core(s) {unknown}; choose from {list(CORES)}")
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure_model(args.model, args.window, Path(tmp), cores, args.state_bits)
        for row in rows:
            if args.json:
                print(json.dumps(row))
                continue
            shape = (f"block {row['block']}" if row["family"] == "hadamrnn"
                     else f"W rank {row['w_rank'] or 'full'}, U rank {row['u_rank'] or 'full'}")
            print(f"{row['model']} ({row['family']}) on {row['core']}: n = {row['n']}, {shape}, d = {row['d']}, "
                  f"{row['bits']}-bit states; {row['stored_bytes']} bytes of constants")
            for key in ("Os", "O2"):
                print(f"  -{key}: flash {row[f'flash_{key}']} B, RAM {row[f'ram_{key}']} B, "
                      f"{row[f'instructions_{key}']:.0f} instructions per step, "
                      f"{row[f'window_instructions_{key}']} per window of {row['window']} steps and the read-out")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.sizes.split(",")):
            for block in (n, 16):
                for d in (1, 8):
                    rows.append(measure(n, block, d, args.bits, Path(tmp)))
                    if args.json:
                        print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print(f"{'n':>4} {'m':>4} {'d':>2} | {'flash Os':>8} {'flash O2':>8} {'RAM O2':>6} | {'instr/step O2':>13} "
              f"{'dense':>8} {'ratio':>6} | {'instr Os':>8} {'dense Os':>8} {'ratio':>6}")
        for r in rows:
            print(f"{r['n']:>4} {r['block']:>4} {r['d']:>2} | {r['flash_Os']:>8} {r['flash_O2']:>8} {r['ram_O2']:>6} | "
                  f"{r['instructions_O2']:>13.0f} {r['dense_instructions_O2']:>8.0f} {r['ratio_O2']:>5.1f}× | "
                  f"{r['instructions_Os']:>8.0f} {r['dense_instructions_Os']:>8.0f} {r['ratio_Os']:>5.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
