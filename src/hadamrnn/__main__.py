"""``python -m hadamrnn`` (and ``torchrun ... -m hadamrnn train ...``): the command line."""

import sys

from .cli import main

sys.exit(main())
