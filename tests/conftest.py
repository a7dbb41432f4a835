import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


@pytest.fixture
def real_data():
    """``real_data("mnist", ...)``: the real data directory ($HADAMRNN_DATA, else ../shared/data)
    holding those folders, or a skip that names the path it tried."""

    def find(*folders: str) -> Path:
        root = Path(os.environ["HADAMRNN_DATA"]) if os.environ.get("HADAMRNN_DATA") else SHARED
        missing = [folder for folder in folders if not (root / folder).is_dir()]
        if missing:
            source = "$HADAMRNN_DATA" if os.environ.get("HADAMRNN_DATA") else "../shared/data (HADAMRNN_DATA unset)"
            pytest.skip(f"real data not found: {', '.join(str(root / f) for f in missing)} missing ({source})")
        return root

    return find
