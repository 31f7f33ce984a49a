import os

import pytest
import torch

from helpers import shared_data_dir

# Tests are small; one thread per process keeps them fast and reproducible on the shared 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> str:
    path = shared_data_dir()
    if path is None:
        pytest.fail("shared data not found: set LEANBERT_SHARED_DATA to the shared/data directory")
    return str(path)
