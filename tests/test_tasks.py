"""The task registry: each task declares itself in one module (what the engine needs), the
study declares the paper's side of the paper's tasks (`experiments.study.protocols`), and a
task of one's own is one module and one config file, run by `experiments.main`."""

import ast
import dataclasses
import json
import pathlib

import numpy as np
import pytest

from conftest import REPO, run_binary
from experiments.study import protocols
from nprnn_jax import checks, tasks
from nprnn_jax import config as config_lib
from nprnn_jax.tasks import base

PACKAGE = pathlib.Path(tasks.__file__).parent


def test_every_task_module_registers_one_lean_declaration():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "base"))
    assert set(modules) <= set(tasks.names())
    assert modules == ["action_recognition", "addition", "mnist", "multiplication"]
    # what the engine needs, and nothing of the paper
    assert [f.name for f in dataclasses.fields(base.TaskSpec)] == ["name", "settings", "build", "title",
                                                                   "metric_text", "check"]
    common = {s.name for s in config_lib.SETTINGS}
    for name in modules:
        spec = tasks.get(name)
        assert spec.name == name and spec.metric_text
        assert not common & {s.name for s in spec.settings}, name  # a task never redeclares a common setting
        # the study's side of each paper task
        protocol = protocols.get(name)
        assert 0 < protocol.success_threshold < 1 and protocol.paper_updates > 0
        baselines, claim = protocol.claim
        assert baselines and "np-RNN" in claim
    # the settings a binary takes: the common ones and its task's, as before the registry
    assert "seq_len" in {s.name for s in config_lib.settings_of("multiplication")}
    assert "seq_len" not in {s.name for s in config_lib.settings_of("mnist")}
    assert {"action_recognition", "mnist"} <= set(config_lib.tasks_having("data_dir"))
    with pytest.raises(checks.ConfigError, match=r"task='copy': unknown value; allowed: action_recognition, "
                                                 r"addition, mnist, multiplication"):
        tasks.get("copy")
    with pytest.raises(checks.ConfigError, match=r"task='copy': the study has no protocol for it"):
        protocols.get("copy")


def test_the_declared_paper_numbers_and_chance_levels():
    assert protocols.get("addition").paper_results({"seq_len": 500})["np"] == 75.5
    assert protocols.get("multiplication").paper_results({"seq_len": 100})["irnn"] == 45
    assert protocols.get("mnist").paper_results({}) == {"np": 92, "irnn": 83}
    assert protocols.get("action_recognition").paper_grid_cells["np"] == 12
    assert protocols.get("addition").paper_config({"seq_len": 300}) == "paper_T300"
    # the best constant's share on the generated test set: sum of two uniforms within 0.04 of 1 is
    # about 2 * 0.04 = 8%, the product's best window about 0.08 (1 - ln 0.08) = 28%
    config = config_lib.with_defaults({"task": "multiplication", "seq_len": 20, "test_size": 4000})
    assert protocols.get("multiplication").chance(config) == pytest.approx(0.08 * (1 - np.log(0.08)), abs=0.02)
    config = config_lib.with_defaults({"task": "addition", "seq_len": 20, "test_size": 4000})
    assert protocols.get("addition").chance(config) == pytest.approx(0.08, abs=0.015)


def test_a_task_of_ones_own_is_one_module_and_one_config_run_by_the_one_binary(tmp_path):
    """tests/example_task: mean_task.py (the task and its declaration) and mean.py (its config, which
    imports the module); no other file names it. Its seq_len is its own setting: default 12, >= 1,
    where the marked-pair tasks' seq_len defaults to 50 and must be >= 2."""
    folder = REPO / "tests" / "example_task"
    assert sorted(p.name for p in folder.glob("*.py")) == ["mean.py", "mean_task.py"]
    result = run_binary("main", "--config=tests/example_task/mean.py:smoke", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("mean of 12 values: finished")
    record = json.loads((tmp_path / "w" / "config.json").read_text())
    assert record["config"]["task"] == "mean" and record["config"]["seq_len"] == 12
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert {(r["init"], r["seed"]) for r in summary} == {(i, s) for i in ("np", "irnn") for s in (0, 1)}
    assert all(0 <= r["test_accuracy"] <= 1 and np.isfinite(r["test_mse"]) for r in summary)
    # the same setting name, scoped per task: each task's own default and rule
    from tests.example_task import mean_task  # noqa: F401  (registered by the run above already)
    assert config_lib.base_config("mean").seq_len == 12 and config_lib.base_config("addition").seq_len == 50
    mean = config_lib.base_config("mean")
    mean.seq_len = 1
    assert config_lib.validate(mean).seq_len == 1
    addition = config_lib.base_config("addition")
    addition.seq_len = 1
    with pytest.raises(checks.ConfigError, match=r"seq_len=1: .*>= 2"):
        config_lib.validate(addition)
    # the one binary refuses to change a config's task on the command line
    result = run_binary("main", "--config=tests/example_task/mean.py:smoke", "--config.task=addition",
                        f"--workdir={tmp_path / 'x'}")
    assert result.returncode == 2 and "the config file names its task ('mean'" in result.stderr
    assert not (tmp_path / "x").exists()


@dataclasses.dataclass(frozen=True)
class DifferenceTask(base.MarkedPairTask):
    """A task that is not in the package: target = (a - b + 1) / 2 of the two marked values."""

    name = "difference"
    mean_target = 0.5

    def _combine(self, a, b):
        return (a - b + 1) / 2


DIFFERENCE = base.TaskSpec(
    name="difference", settings=base.MARKED_PAIR_SETTINGS, build=base.MarkedPairBuild(DifferenceTask),
    title=lambda config: f"difference (T={config.seq_len})", check=base.check_marked_pair,
    metric_text="share of test sequences within 0.04")
# its side in the study (the report reads it): a bar, its chance level, its unstated choices
DIFFERENCE_PROTOCOL = protocols.Protocol(
    success_threshold=0.5, success_text="share >= 50%", chance_text="the best constant prediction",
    chance=protocols.marked_pair_chance(DifferenceTask), paper_updates=1000, paper_sequences=1000,
    paper_results=lambda config: {}, claim=(("irnn",), "np-RNN succeeds at least as often"),
    steps_per_sequence=lambda config: config["seq_len"], unstated=protocols.marked_pair_unstated)


@pytest.fixture
def difference(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "difference", DIFFERENCE)
    monkeypatch.setitem(protocols._PROTOCOLS, "difference", DIFFERENCE_PROTOCOL)
    return DIFFERENCE


@pytest.mark.slow
def test_a_task_declared_outside_the_package_runs_end_to_end(tmp_path, difference):
    from experiments.study import paper
    from nprnn_jax import experiment

    config = config_lib.base_config("difference")
    assert config.seq_len == 50 and "dataset" not in config  # its settings, and no other task's
    config.update(inits=("np", "irnn"), hidden_size=8, seq_len=8, learning_rates=(0.01,), num_seeds=2,
                  num_steps=20, eval_every=10, test_size=64, tensorboard=False)
    summary = experiment.train_and_evaluate(config, tmp_path)
    assert {(r["init"], r["seed"]) for r in summary} == {(i, s) for i in ("np", "irnn") for s in (0, 1)}
    assert all(np.isfinite(r["test_mse"]) for r in summary)
    assert (tmp_path / "results.md").read_text().startswith("# difference (T=8)")
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["task"]["name"] == "difference" and record["config"]["task"] == "difference"
    # the task's own rule between settings, and its settings' own rules
    config.train_size = 4
    with pytest.raises(checks.ConfigError, match="train_size=4 must be 0 .* or at least batch_size=16"):
        config_lib.validate(config)
    config.train_size, config.dataset = 0, "GunPoint"
    with pytest.raises(checks.ConfigError, match="dataset: no such setting"):
        config_lib.validate(config)
    # the report reads the declaration: the chance level, the choices the paper does not state
    job = {"config": record["config"], "task": record["task"], "folder": tmp_path}
    assert paper.chance_level(job) == DIFFERENCE_PROTOCOL.chance(config_lib.with_defaults(record["config"]))
    assert 0.04 < paper.chance_level(job) < 0.5
    choices = [what for what, _, _ in paper.unstated_choices("difference", record)]
    assert "marker placement" in choices and "learning rate at batch 16" not in choices


def test_the_engine_never_reads_the_configuration():
    """One-way imports: nothing the experiment calls imports nprnn_jax.config back (the
    configuration is read once, at the entry: experiment.py and the binaries)."""
    root = PACKAGE.parent
    below = [p for p in root.rglob("*.py") if p.name not in ("config.py", "experiment.py")]
    assert len(below) > 15
    for path in below:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            assert not any(n == "nprnn_jax.config" or n.startswith("nprnn_jax.config.") for n in names), \
                f"{path.relative_to(root)} imports nprnn_jax.config"
