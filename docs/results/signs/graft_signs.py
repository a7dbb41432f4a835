"""The sign study of docs/results.md: a fresh model whose W takes its signs from elsewhere.

    python docs/results/signs/graft_signs.py RUN SIGNS OUT
    hadamrnn train pmnist-frozen --set optim.seed=S --set optim.init_from=OUT --data-dir DATA

OUT holds a model initialised exactly as RUN's config initialises one (its seed), except for the
signs of W: SIGNS is a run directory (its trained signs) or ``random:K`` (i.i.d. signs from NumPy's
generator seeded K). The latent magnitudes stay those of the fresh model, so runs started from it
differ in W alone. Prints the number of distinct eigenvalues of W.
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hadamrnn.recurrent import distinct_eigenvalues
from hadamrnn.train.checkpoint import save_checkpoint
from hadamrnn.train.loop import build_model, load_trained

run, source, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
_, config, info = load_trained(run)
config = replace(config, optim=replace(config.optim, init_from=None))
torch.manual_seed(config.optim.seed)
model = build_model(config, info)
if source.startswith("random:"):
    signs = torch.from_numpy(np.random.default_rng(int(source[7:])).choice([-1.0, 1.0], model.latent.numel())).float()
else:
    signs = torch.sign(load_trained(source)[0].latent.detach())
with torch.no_grad():
    model.latent.copy_(signs * model.latent.abs())
(out / "checkpoints").mkdir(parents=True, exist_ok=True)
save_checkpoint(out / "checkpoints" / "best.safetensors",
                {"config": config.to_dict(), "model": model.state_dict(), "info": info.__dict__})
print("distinct eigenvalues of W:", distinct_eigenvalues(signs, model.recurrence.block))
