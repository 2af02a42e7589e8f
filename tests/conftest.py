import os

# Tests never touch the network and run on the CPU only.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TFDS_DATA_DIR", "/nonexistent-tfds-dir")

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def shared_data_dir() -> pathlib.Path:
    """The shared real data sets: $NPRNN_DATA_DIR, else ../shared/data beside the repo."""
    return pathlib.Path(os.environ.get("NPRNN_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture
def data_dir():
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"shared data directory {path} not found; set NPRNN_DATA_DIR")
    return path
