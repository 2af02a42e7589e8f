import os

# Tests never touch the network and run on the CPU only.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TFDS_DATA_DIR", "/nonexistent-tfds-dir")

# Many tests (and the binaries they start as subprocesses, which inherit this environment)
# compile the same small programs: JAX's persistent compilation cache, in a folder of this
# test session, compiles each once. Measured on the 2-core CI kind of machine: the smoke
# addition binary takes 16.6 s with an empty cache and 7.3 s with a warm one (22 s without).
# A cache folder given by the caller (CI gives the default suite and the slow tests one folder)
# is kept; one made here is removed at the end.
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


def pytest_terminal_summary(terminalreporter, config):
    """Say which tests the default suite left out, and the command that runs them."""
    if config.getoption("markexpr") == "not slow":  # pytest.ini's default (workers under -n do the selecting)
        terminalreporter.write_line("The tests marked slow (end-to-end runs, several processes) are not part of this "
                                    "default run: `python -m pytest -q -m slow` runs them (CI runs both).")


@pytest.fixture
def data_dir():
    return shared_data_dir()


def _binaries() -> tuple:
    from experiments import common
    return ("main",) + tuple(common.config_files())  # found: each config file's task has its alias


BINARIES = _binaries()


def run_binary(module, *args, env=None, timeout=600, in_process=None):
    """``python -m experiments.<module> *args`` as a `subprocess.CompletedProcess` (returncode,
    stdout, stderr), from the repository root with ``env`` added to the environment.

    The binary or tool runs inside this process (`experiments.common.main` /
    `experiments.common.call_tool`: the same flags, checks, outputs and exit status, without
    the 7-17 s start of Python and JAX), unless it needs a process of its own:
    ``in_process=False``, or more than one device (``host_devices``, ``XLA_FLAGS``,
    ``--distributed``).
    """
    import contextlib
    import io
    import subprocess
    import sys

    own_process = ("XLA_FLAGS" in (env or {})
                   or any(a.startswith("--distributed") for a in args)
                   or any(a.startswith("--config.host_devices=") and a.split("=", 1)[1] not in ("0", "1")
                          for a in args))
    if in_process is False or (in_process is None and own_process):
        full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
        return subprocess.run([sys.executable, "-m", f"experiments.{module}", *args], cwd=REPO, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
    from experiments import common

    saved_env = {k: os.environ.get(k) for k in (env or {})}
    cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env or {})
        os.chdir(REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            argv = [f"experiments/{module}.py", *args]
            code = (common.main(None if module == "main" else module, argv) if module in BINARIES
                    else common.call_tool(module, argv))
    finally:
        os.chdir(cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


def device_flags(count: int) -> str:
    """XLA_FLAGS for a child process with ``count`` CPU host devices (and any flags already set)."""
    return (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={count}").strip()
