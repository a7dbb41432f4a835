"""Per-step inference time of the generated integer C code vs a dense float32 RNN step, same compiler.

    python benchmarks/c_step.py [--steps 200000] [--cflags "-std=c99 -O2"] [--json]

For each shape, a random HadamRNN (d = 1 input, 10 classes, 4-bit U/V) is exported, quantized to
16-bit states and generated as C (``hadamrnn.deploy.codegen``); a dense float32 step ``h = W h + U x + b``
of the same n and d is written beside it. Both are compiled with the same ``gcc`` flags and timed in
one run of this script, each on the same fixed input, over ``--steps`` steps (median of 5 runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.deploy import runtime
from hadamrnn.deploy.codegen import weight_bytes, write_c
from hadamrnn.deploy.export import export_model
from hadamrnn.deploy.integer import quantize_model

TIMER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static double seconds(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
"""

HADAMRNN_MAIN = TIMER + r"""
#include "hadamrnn_model.h"
int main(int argc, char **argv) {
    long steps = atol(argv[1]), t;
    hrnn_state state;
    int32_t x[HRNN_D];
    hrnn_logit_t logits[HRNN_C];
    int i;
    double start;
    for (i = 0; i < HRNN_D; i++) x[i] = (int32_t)(HRNN_INPUT_MAX / 3);
    hrnn_reset(&state);
    start = seconds();
    for (t = 0; t < steps; t++) { x[0] = (int32_t)((t * 7919) % (HRNN_INPUT_MAX / 2)); hrnn_step(&state, x); }
    hrnn_logits(&state, logits);
    printf("%.3f %lld\n", 1e9 * (seconds() - start) / steps, (long long)logits[0]);
    return 0;
}
"""

DENSE = r"""
#define N {n}
#define D {d}
static float W[N * N], U[N * D], B[N], h[N], next[N];
int main(int argc, char **argv) {{
    long steps = atol(argv[1]), t;
    unsigned seed = 12345u;
    int i, j;
    float x[D];
    double start;
    for (i = 0; i < N * N; i++) {{ seed = seed * 1103515245u + 12345u; W[i] = ((seed >> 16) & 1 ? 1.0f : -1.0f) / {sqrt_n}f; }}
    for (i = 0; i < N * D; i++) U[i] = 0.01f * (float)(i % 7);
    for (i = 0; i < N; i++) {{ B[i] = 0.001f * (float)(i % 5); h[i] = 0.0f; }}
    start = seconds();
    for (t = 0; t < steps; t++) {{
        for (j = 0; j < D; j++) x[j] = (float)((t * 7919) % 1000) * 0.001f;
        for (i = 0; i < N; i++) {{
            float acc = B[i];
            for (j = 0; j < N; j++) acc += W[i * N + j] * h[j];
            for (j = 0; j < D; j++) acc += U[i * D + j] * x[j];
            next[i] = acc;
        }}
        for (i = 0; i < N; i++) h[i] = next[i];
    }}
    printf("%.3f %f\n", 1e9 * (seconds() - start) / steps, h[0]);
    return 0;
}}
"""


def _compile(sources: list[Path], output: Path, flags: list[str]) -> Path:
    subprocess.run(["gcc", *flags, "-o", str(output), *map(str, sources)], check=True)
    return output


def _time(program: Path, steps: int, repeats: int = 5) -> float:
    runs = [float(subprocess.run([str(program), str(steps)], capture_output=True, text=True, check=True).stdout.split()[0])
            for _ in range(repeats)]
    return float(np.median(runs))


def measure(n: int, block: int | None, steps: int, root: Path, flags: list[str]) -> dict:
    d, classes = 1, 10
    torch.manual_seed(0)
    model = HadamRNN(HadamRNNConfig(input_size=d, hidden_size=n, output_size=classes, block_size=block))
    folder = root / f"n{n}_b{block or n}"
    folder.mkdir()
    export_model(model, folder / "model.hrnn")
    integer = quantize_model(runtime.load(folder / "model.hrnn"), np.random.default_rng(0).random((32, 100, d)), 16)
    write_c(integer, folder)
    (folder / "bench.c").write_text(HADAMRNN_MAIN)
    hadamrnn_program = _compile([folder / "bench.c", folder / "hadamrnn_model.c"], folder / "bench", flags)
    (folder / "dense.c").write_text(TIMER + DENSE.format(n=n, d=d, sqrt_n=float(np.sqrt(n))))
    dense_program = _compile([folder / "dense.c"], folder / "dense", flags)
    hadamrnn_ns, dense_ns = _time(hadamrnn_program, steps), _time(dense_program, max(steps // 10, 1000))
    return {"n": n, "block": block or n, "hadamrnn_ns_per_step": hadamrnn_ns, "dense_float_ns_per_step": dense_ns,
            "speedup": dense_ns / hadamrnn_ns, "hadamrnn_weight_bytes_as_generated": weight_bytes(integer),
            "hadamrnn_weight_bytes_bit_packed": (n + 4 * n * d + 4 * classes * n) // 8 + 2 * n + 8 * classes,
            "dense_float_weight_bytes": 4 * (n * n + n * d + n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--cflags", default="-std=c99 -O2", help="gcc flags for both programs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    flags = args.cflags.split()
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(n, block, args.steps, Path(tmp), flags) for n, block in ((128, None), (128, 16), (512, None), (512, 64))]
    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    print(f"gcc {args.cflags}")
    print(f"{'n':>4} {'block':>5} {'HadamRNN ns/step':>17} {'dense f32 ns/step':>18} {'speedup':>8} "
          f"{'weight bytes (gen / packed / dense)':>36}")
    for r in results:
        print(f"{r['n']:>4} {r['block']:>5} {r['hadamrnn_ns_per_step']:>17.1f} {r['dense_float_ns_per_step']:>18.1f} "
              f"{r['speedup']:>7.1f}× {r['hadamrnn_weight_bytes_as_generated']:>12} / "
              f"{r['hadamrnn_weight_bytes_bit_packed']:>6} / {r['dense_float_weight_bytes']:>8}")


if __name__ == "__main__":
    sys.exit(main())
