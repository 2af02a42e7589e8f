"""The README's library examples run as written (a small workdir stands in for the main job's)."""

import re

import pytest

from conftest import REPO


def _blocks():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Using the library"):]
    section = section[:section.index("\n## ", 10)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_its_library_examples():
    blocks = _blocks()
    assert len(blocks) >= 4 and any("load_params" in b for b in blocks)


@pytest.mark.slow
def test_the_readme_library_examples_run(tmp_path, monkeypatch, capsys):
    from experiments.configs import addition
    from nprnn_jax import experiment

    monkeypatch.chdir(tmp_path)
    config = addition.smoke()  # learning rates 0.01 and 0.05, seeds 0 and 1
    experiment.train_and_evaluate(config, tmp_path / "workdirs" / "addition")
    namespace = {}
    for block in _blocks():
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "(2, 4, 2)" in out and "share within 0.04:" in out


BENCHMARKS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py")
                    if p.stem not in ("__init__", "timing"))


@pytest.mark.parametrize("module", BENCHMARKS)
def test_every_benchmark_script_starts(module):
    # --help parses its flags: two scripts defining one flag (rnn_throughput and batch1's
    # --repeats) crashed batch1 at its start with DuplicateFlagError.
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", "--help"], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_the_batch1_benchmark_runs_its_smallest_setting():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "benchmarks.batch1", "--seq_lens=10", "--steps=20", "--repeats=1"],
                            capture_output=True, text=True, timeout=600,
                            cwd=REPO)
    assert result.returncode == 0 and "us/update" in result.stdout, result.stderr[-2000:]


def test_a_binary_runs_as_a_script_path_too():
    # `python experiments/addition.py` (the Flax examples' habit) ended in "No module named 'experiments'"
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "experiments/addition.py", "--show_config"], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0 and "seq_len" in result.stdout + result.stderr, result.stderr[-2000:]
