import os

import pytest
import torch

# Tests are small; one thread per process keeps them fast and reproducible on the shared 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# ../shared/data next to the checkout; LEANBERT_SHARED_DATA overrides (e.g. for a clone elsewhere).
SHARED_CANDIDATES = [os.environ.get("LEANBERT_SHARED_DATA", ""),
                     os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"),
                     "/work/shared/data"]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> str:
    for path in SHARED_CANDIDATES:
        if path and os.path.isdir(path):
            return os.path.abspath(path)
    pytest.fail("shared data not found: set LEANBERT_SHARED_DATA to the shared/data directory")
