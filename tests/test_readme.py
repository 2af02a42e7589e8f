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
