"""Training step on real pre-padded token batches: padding shared across rows vs every step run.

    python benchmarks/padding_prefix.py [--data-dir ../shared/data] [--datasets sst2 imdb] [--repeats 9]

The fused engine runs the steps of a batch's leading padding once for all rows
(``hadamrnn.engine.SHARE_PADDING_PREFIX``); this times one training step (forward, backward,
fused Adam) on the first 100 training sequences of each data set, the two settings alternating in
one process, and prints the medians, their ratio and the batch's padding fraction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

import hadamrnn.engine as engine
from hadamrnn import HadamRNN, HadamRNNConfig
from hadamrnn.data import load_data

EMBEDDING = {"imdb": 512, "sst2": 256, "qqp": 256}  # the shipped configs' embedding sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("HADAMRNN_DATA", "../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=["sst2", "imdb"], choices=sorted(EMBEDDING))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    for name in args.datasets:
        splits = load_data(name, args.data_dir)
        x, y = splits.train.batch(torch.arange(100))
        torch.manual_seed(0)
        model = HadamRNN(HadamRNNConfig(input_size=EMBEDDING[name], hidden_size=128, output_size=1,
                                        vocab_size=splits.info.vocab_size))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        times: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats + 1):  # the first round warms up (compilation, allocator)
            for share in times:
                engine.SHARE_PADDING_PREFIX = share
                start = time.perf_counter()
                loss = F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y.float())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if repeat:
                    times[share].append(time.perf_counter() - start)
        engine.SHARE_PADDING_PREFIX = True
        shared, every = statistics.median(times[True]), statistics.median(times[False])
        print(f"{name}: batch {tuple(x.shape)}, padding {float((x == 0).float().mean()):.0%}: "
              f"shared prefix {shared * 1e3:.1f} ms, every step {every * 1e3:.1f} ms, {every / shared:.2f}×")


if __name__ == "__main__":
    main()
