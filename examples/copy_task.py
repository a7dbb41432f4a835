"""Train a small HadamRNN on a short copy task and compare with the memoryless baseline.

    python examples/copy_task.py [--length 50] [--steps 600]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from hadamrnn import HadamRNN, HadamRNNConfig, size_summary
from hadamrnn.data import CopyTask, copy_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=50, help="total sequence length T")
    parser.add_argument("--steps", type=int, default=600, help="Adam steps of batch 64")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    config = HadamRNNConfig(input_size=10, hidden_size=128, output_size=9, input_bits=4, output_bits=4,
                            readout="all")
    model = HadamRNN(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = torch.utils.data.DataLoader(CopyTask(args.steps * 64, args.length, seed=args.seed + 1), batch_size=64)
    baseline = copy_baseline(args.length)
    print(size_summary(model), "\n")

    start = time.perf_counter()
    progress = tqdm(train, desc=f"copy T={args.length}", unit="step")
    for x, y in progress:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(loss=f"{loss.item():.4f}", baseline=f"{baseline:.4f}",
                             flips=model.recurrence.flips(model.latent))
    seconds = time.perf_counter() - start

    x, y = next(iter(torch.utils.data.DataLoader(CopyTask(2048, args.length, seed=10_000 + args.seed), batch_size=2048)))
    with torch.no_grad():
        logits = model(x)
    test_loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    answer = slice(args.length - 10, None)
    accuracy = (logits[:, answer].argmax(-1) == y[:, answer]).float().mean().item()
    print(f"\ntest cross-entropy {test_loss:.4f} nats/step vs memoryless baseline {baseline:.4f} "
          f"({test_loss / baseline:.1%} of it); copied-symbol accuracy {accuracy:.1%}; "
          f"{args.steps} steps in {seconds:.1f} s")


if __name__ == "__main__":
    main()
