import os

# Tests never touch the network and run on the CPU only.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TFDS_DATA_DIR", "/nonexistent-tfds-dir")

# Many tests (and the binaries they start as subprocesses, which inherit this environment)
# compile the same small programs: JAX's persistent compilation cache, in a folder of this
# test session, compiles each once. Measured on the 2-core CI kind of machine: the smoke
# addition binary takes 16.6 s with an empty cache and 7.3 s with a warm one (22 s without).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="nprnn-jax-test-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def shared_data_dir(required: bool = True) -> pathlib.Path:
    """The shared real data sets: $NPRNN_DATA_DIR, else ../shared/data beside the repo.

    A test that needs them and finds no such folder is skipped with the reason (a clone that
    does not sit beside shared/), unless $NPRNN_REQUIRE_DATA is set: then it fails (CI has
    the data, so there every test runs).
    """
    path = pathlib.Path(os.environ.get("NPRNN_DATA_DIR", REPO.parent / "shared" / "data"))
    if required and not path.is_dir():
        message = (f"the shared data folder {path} is absent; set NPRNN_DATA_DIR to a folder holding "
                   "mnist/ and uea/ (README 'Data')")
        if os.environ.get("NPRNN_REQUIRE_DATA"):
            pytest.fail(message + " (NPRNN_REQUIRE_DATA is set: data tests are required here)")
        pytest.skip(message)
    return path


@pytest.fixture
def data_dir():
    return shared_data_dir()
