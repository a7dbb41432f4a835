"""Training-step speed and peak memory of the fast engine vs the step-by-step loop.

    python benchmarks/train_step.py [--config pmnist|imdb|copy|all] [--json]

Same as ``hadamrnn bench``; the measurement itself lives in ``hadamrnn.bench``.
"""

import sys

from hadamrnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
