"""The configuration system: declared settings, validation, named configs, train_and_evaluate."""

import importlib
import json
import os

import numpy as np

import pytest

from conftest import REPO, device_flags, shared_data_dir
from experiments import common
from nprnn_jax import config as config_lib
from nprnn_jax import experiment, rnn, tasks
from nprnn_jax import workdir as workdir_lib

CONFIG_FILES = tuple(common.config_files())  # found, not listed: a new config file is tested too


def variants(name):
    module = importlib.import_module(f"experiments.configs.{name}")
    return module, module.__doc__, list(module.named_configs())


def test_the_config_files_are_found_and_name_their_tasks():
    assert set(CONFIG_FILES) >= {"addition", "multiplication", "mnist", "action_recognition"}
    assert set(CONFIG_FILES) <= set(tasks.names())
    _, _, names = variants("addition")
    assert {"default", "smoke", "paper_T150", "cpu_T500", "frontier_T10", "hs_T100", "paper_T150_first10"} <= set(names)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_every_named_config_validates_and_is_documented(name):
    module, doc, names = variants(name)
    for variant in names:
        config = config_lib.validate(module.get_config(variant))
        assert config.task == name
        assert variant.split("_")[0] in doc, variant
    with pytest.raises(ValueError, match="unknown named config 'nope'; valid: default"):
        module.get_config("nope")


def test_paper_configs_are_the_papers_protocols():
    from experiments.configs import action_recognition, addition, mnist, multiplication
    c = config_lib.validate(addition.get_config("paper_T300"))
    assert (c.seq_len, c.batch_size, c.learning_rates, c.optimizer, c.clip_norm, c.num_steps, c.train_size,
            c.test_size, c.lr_schedule) == (300, 1, (0.001,), "sgd", 10.0, 1_000_000, 100_000, 10_000, "constant")
    assert c.inits == rnn.PAPER_VARIANTS == ("np", "irnn", "irnn_scaled", "nrnn", "ornn", "grnn", "np_tanh")
    c = config_lib.validate(multiplication.get_config("paper_T100"))
    assert (c.batch_size, c.learning_rates, c.num_steps, c.train_size) == (16, (2e-4,), 625_000, 100_000)
    assert config_lib.cut_steps(config_lib.init_settings(c, "np"), c.num_steps) == (208_333, 416_667)
    c = config_lib.validate(mnist.get_config("paper"))
    assert config_lib.cut_steps(config_lib.init_settings(c, "np"), c.num_steps) == (123_750, 247_500)
    assert c.num_steps == 375_000 and c.learning_rates == (1e-4,) and c.optimizer == "sgd"
    irnn = config_lib.init_settings(c, "irnn")
    assert (irnn["optimizer"], irnn["learning_rates"], irnn["lr_schedule"]) == ("rmsprop", (1e-6,), "constant")
    c = config_lib.validate(action_recognition.get_config("paper"))
    assert c.learning_rates == (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2) and c.dropout_rates == (0.5, 0.7, 0.9)
    assert (c.optimizer, c.batch_size, c.num_steps, c.lr_cut_steps) == ("rmsprop", 256, 70 * 38, (25 * 38, 55 * 38))
    c = config_lib.validate(action_recognition.get_config("cpu_GunPoint"))
    assert (c.batch_size, c.num_steps, c.lr_cut_steps) == (10, 350, (125, 275))  # 5 steps an epoch


def test_bad_settings_name_the_setting_and_what_is_allowed():
    def bad(**settings):
        config = config_lib.base_config("addition")
        for name, value in settings.items():
            config[name] = value
        return config

    cases = [
        (bad(inits=("np", "bogus")), "inits=('np', 'bogus'): item 'bogus' unknown value; allowed: np, irnn"),
        (bad(learning_rates=(0.01, 0.0)), "learning_rates=(0.01, 0.0): item 0.0 must be a finite number > 0"),
        (bad(dropout_rates=(1.0,)), "dropout_rates=(1.0,): item 1.0 must be a finite number >= 0 and < 1"),
        (bad(optimizer="lbfgs"), "optimizer='lbfgs': unknown value; allowed: sgd, momentum, rmsprop, adam"),
        (bad(num_seeds=0), "num_seeds=0: must be an int >= 1"),
        (bad(num_steps=250, eval_every=100), "num_steps=250 must be a multiple of eval_every=100"),
        (bad(test_size=0), "test_size=0: must be >= 1 for addition"),
        (bad(lr_schedule="step", lr_cut_steps=(20_000,)), "lr_cut_steps=(20000,): must be increasing steps in "
                                                          "[1, num_steps=10000)"),
        (bad(train_size=8), "train_size=8 must be 0 (fresh sequences) or at least batch_size=16"),
        (bad(inits=("np", "np")), "inits=('np', 'np'): has 'np' twice"),
    ]
    for config, message in cases:
        with pytest.raises(config_lib.ConfigError) as error:
            config_lib.validate(config)
        assert message in str(error.value), (str(error.value), message)


def test_unknown_settings_and_per_init_entries_are_refused_with_a_hint():
    config = config_lib.base_config("addition")
    config.unlock()
    config.num_seedz = 3
    with pytest.raises(config_lib.ConfigError, match="num_seedz: no such setting .did you mean num_seeds.."):
        config_lib.validate(config)
    config = config_lib.base_config("mnist")
    config.per_init = {"irnx": {"optimizer": "adam"}}
    with pytest.raises(config_lib.ConfigError, match="per_init.irnx: no such setting .did you mean irnn.."):
        config_lib.validate(config)
    config.per_init = {"irnn": {"hidden_size": 3}}
    with pytest.raises(config_lib.ConfigError, match="per_init.irnn.hidden_size: no such setting; allowed: "
                                                     "learning_rates, optimizer"):
        config_lib.validate(config)
    config.per_init = {"irnn": {"optimizer": "bogus"}}
    with pytest.raises(config_lib.ConfigError, match="per_init.irnn.optimizer='bogus': unknown value"):
        config_lib.validate(config)
    # a setting of another binary is not a setting of this one
    config = config_lib.base_config("addition")
    config.unlock()
    config.dataset = "GunPoint"
    with pytest.raises(config_lib.ConfigError, match="dataset: no such setting"):
        config_lib.validate(config)


def test_command_line_forms_are_normalized():
    config = config_lib.base_config("addition")
    config.inits = ("np,irnn", "nrnn")
    config.learning_rates = ("0.1,0.2",)
    config.clip_norm = 5
    config = config_lib.validate(config)
    assert config.inits == ("np", "irnn", "nrnn") and config.learning_rates == (0.1, 0.2)
    assert config.clip_norm == 5.0 and isinstance(config.clip_norm, float)


def test_settings_help_lists_every_setting_with_its_value_and_meaning():
    from experiments.configs import mnist
    text = config_lib.settings_help(config_lib.validate(mnist.get_config("paper")))
    for setting in config_lib.settings_of("mnist"):
        assert f"--config.{setting.name}=" in text and setting.meaning in text
    assert "--config.per_init.irnn.optimizer=rmsprop" in text
    assert "--config.bptt_chunk=-1" in text and "[speed only]" in text


def _smoke(tmp_path, **settings):
    from experiments.configs import addition
    config = addition.get_config("smoke")
    for name, value in settings.items():
        config[name] = value
    return config


@pytest.mark.slow
def test_train_and_evaluate_runs_per_init_optimizers_in_one_experiment(tmp_path):
    config = _smoke(tmp_path, inits=("np", "irnn"), num_seeds=1)
    config.per_init = {"irnn": {"optimizer": "adam", "learning_rates": (0.003,)}}
    summary = experiment.train_and_evaluate(config, tmp_path)
    rates = {(r["init"], r["learning_rate"]) for r in summary}
    assert rates == {("np", 0.01), ("np", 0.05), ("irnn", 0.003)}
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["config"]["per_init"] == {"irnn": {"learning_rates": [0.003], "optimizer": "adam"}}
    assert record["plan"]["bptt_chunk"] == 0 and record["plan"]["execution"] == "map"
    assert record["task"]["train_size"] == 64
    # one typed run description per init, the overrides applied once, and that is what is recorded;
    # how the recurrence runs is the plan's, not the run's
    runs = record["runs"]
    assert (runs["irnn"]["train"]["optimizer"], runs["irnn"]["grid"]["learning_rates"]) == ("adam", [0.003])
    assert (runs["np"]["train"]["optimizer"], runs["np"]["grid"]["learning_rates"]) == ("sgd", [0.01, 0.05])
    assert runs["np"]["train"]["init"] == "np" and "bptt_chunk" not in runs["np"]["train"]
    assert {"unroll", "backward", "remat_every", "bptt_chunk"} <= set(record["plan"])
    # The optimizers really differ: irnn's checkpointed state is Adam's (first and second moments).
    _, final, _, _, run = experiment.load_grid(tmp_path, "irnn")
    assert run.train_config.optimizer == "adam"
    assert "ScaleByAdamState" in repr(final.opt_state)
    _, final, _, _, run = experiment.load_grid(tmp_path, "np")
    assert run.train_config.optimizer == "sgd" and "ScaleByAdamState" not in repr(final.opt_state)
    # every result is finite, and the success flag follows the share
    for record in summary:
        assert np.isfinite(record["test_accuracy"]) and record["success"] == (record["test_accuracy"] >= 0.5)


def test_train_and_evaluate_refuses_a_bad_config_before_touching_the_workdir(tmp_path):
    config = _smoke(tmp_path)
    config.num_seeds = -1
    with pytest.raises(config_lib.ConfigError, match="num_seeds=-1"):
        experiment.train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()
    config = _smoke(tmp_path)
    config.remat_every = 7
    with pytest.raises(ValueError, match="remat_every=7 must be a positive divisor of the sequence length 10"):
        experiment.train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_read_config_round_trips_a_config(tmp_path):
    from experiments.configs import mnist
    config = config_lib.validate(mnist.get_config("paper"))
    record = {"version": workdir_lib.CONFIG_VERSION, "task": {}, "config": config_lib.to_json(config), "plan": {}}
    (tmp_path / "config.json").write_text(json.dumps(record))
    again, _ = experiment.read_config(tmp_path)
    assert config_lib.to_json(again) == config_lib.to_json(config)
    assert isinstance(again, config_lib.Settings) and again["hidden_size"] == again.hidden_size
    with pytest.raises(AttributeError, match="hidden_size: a validated config is read-only"):
        again.hidden_size = 3
    assert config_lib.validate(again.to_dict()) == again  # validates again from plain dicts
    # a config.json written before a setting existed reads with that setting at its default
    del record["config"]["seed_offset"]
    (tmp_path / "config.json").write_text(json.dumps(record))
    again, _ = experiment.read_config(tmp_path)
    assert again.seed_offset == 0 and config_lib.to_json(again) == config_lib.to_json(config)


def test_shared_data_dir_is_there():
    assert (shared_data_dir() / "mnist").is_dir()


@pytest.mark.slow
def test_load_params_returns_one_run_that_reproduces_its_recorded_metrics(tmp_path):
    import jax
    from nprnn_jax import train

    config = _smoke(tmp_path, inits=("np",), learning_rates=(0.01, 0.05), num_seeds=2)
    summary = experiment.train_and_evaluate(config, tmp_path)
    params = experiment.load_params(tmp_path, "np", 0.05, seed=1)
    assert all(isinstance(v, np.ndarray) for v in params.values()) and params["W_hh"].shape == (8, 8)
    config, _ = experiment.read_config(tmp_path)
    task, _ = experiment.build_task(config)
    trainer = train.make_train(experiment.init_runs(config)[0].train_config, task)
    metrics = trainer.evaluate(jax.tree.map(jax.numpy.asarray, params), task.test_set())
    record = next(r for r in summary if r["learning_rate"] == 0.05 and r["seed"] == 1)
    assert float(metrics["test_accuracy"]) == pytest.approx(record["test_accuracy"], abs=1e-6)
    initial = experiment.load_params(tmp_path, "np", 0.05, seed=1, initial=True)
    assert not np.allclose(initial["W_hh"], params["W_hh"])
    first, final, _, _, run = experiment.load_grid(tmp_path, "np")  # the engine's own initial state
    index = run.grid.combos.index((0.05, 0.0))
    for name in initial:
        # the same draws; eager and compiled float32 arithmetic round differently (1 ulp)
        np.testing.assert_allclose(initial[name], np.asarray(first.params[name][index, 1]), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(params[name], np.asarray(final.params[name][index, 1]))
    np.testing.assert_allclose(np.linalg.eigvalsh(initial["W_hh"])[-1], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"no single run at learning_rate=0.3; its \(learning rate, dropout\) "
                                         r"settings: \[\(0.01, 0.0\), \(0.05, 0.0\)\]"):
        experiment.load_params(tmp_path, "np", 0.3, seed=0)
    with pytest.raises(ValueError, match="seed=2 is not one of the run's seeds 0..1"):
        experiment.load_params(tmp_path, "np", 0.05, seed=2)
    for bad in (True, 1.0, "1"):
        with pytest.raises(ValueError, match=r"seed=.*: give the run's seed as an integer"):
            experiment.load_params(tmp_path, "np", 0.05, seed=bad)
    # the final checkpoint damaged: older weights only when asked, and then said
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints" / "np").iterdir() if p.name.isdigit())
    assert len(steps) == 2
    data = next(f for f in sorted((tmp_path / "checkpoints" / "np" / str(steps[-1])).rglob("*"))
                if f.is_file() and f.stat().st_size > 100 and "d" in f.parent.name)
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.raises(ValueError, match=rf"newest checkpoint \(step {steps[-1]}\) is damaged; the newest intact "
                                         rf"one is step {steps[0]}: pass allow_older=True"):
        experiment.load_params(tmp_path, "np", 0.05, seed=1)
    with pytest.warns(UserWarning, match=f"returning the weights of step {steps[0]}"):
        older = experiment.load_params(tmp_path, "np", 0.05, seed=1, allow_older=True)
    np.testing.assert_array_equal(older["W_hh"], experiment.load_params(tmp_path, "np", 0.05, seed=1,
                                                                        step=steps[0])["W_hh"])
    assert not np.array_equal(older["W_hh"], params["W_hh"])


@pytest.mark.slow
def test_load_params_reads_no_data_any_topology_and_merged_workdirs(tmp_path):
    """A workdir written on 2 host devices (sharded checkpoints) and merged with a second
    job: the weights load on this 1-device process, without the data, for either job."""
    import json
    import subprocess
    import sys
    import time
    from conftest import REPO
    from nprnn_jax import merge

    jobs = []
    for offset in (0, 2):
        workdir = tmp_path / f"job{offset}"
        result = subprocess.run(
            [sys.executable, "-m", "experiments.addition", "--config=experiments/configs/addition.py:smoke",
             "--config.inits=np", f"--config.seed_offset={offset}", f"--workdir={workdir}"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
            env={**__import__("os").environ, "XLA_FLAGS": device_flags(2)})
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads((workdir / "config.json").read_text())["plan"]["devices"] == 2
        jobs.append(workdir)
    merge.merge_workdirs([str(j) for j in jobs], tmp_path / "merged", "test_accuracy", True, schema=config_lib.SCHEMA)
    start = time.perf_counter()
    params = experiment.load_params(jobs[0], "np", 0.05, seed=1)
    assert time.perf_counter() - start < 30  # generous: the point is no data and no compilation
    assert params["W_hh"].shape == (8, 8)
    merged = experiment.load_params(tmp_path / "merged", "np", 0.05, seed=3)
    direct = experiment.load_params(jobs[1], "np", 0.05, seed=3)
    for name in direct:
        np.testing.assert_array_equal(merged[name], direct[name])
    assert not np.array_equal(merged["W_hh"], params["W_hh"])
    with pytest.raises(ValueError, match="seed=7 is in none of the merged workdirs"):
        experiment.load_params(tmp_path / "merged", "np", 0.05, seed=7)


def test_the_default_data_directory_does_not_depend_on_the_current_directory(monkeypatch, tmp_path):
    from experiments.configs import mnist
    from conftest import REPO
    if not (REPO.parent / "shared" / "data").is_dir():  # the default place: beside the checkout
        shared_data_dir(required=False)
        if os.environ.get("NPRNN_REQUIRE_DATA"):
            pytest.fail(f"{REPO.parent / 'shared' / 'data'} is absent (NPRNN_REQUIRE_DATA is set)")
        pytest.skip(f"no shared/data beside the checkout ({REPO.parent}): the default data folder is not there")
    monkeypatch.delenv("NPRNN_DATA_DIR", raising=False)
    monkeypatch.chdir("/")
    config = config_lib.validate(mnist.get_config("smoke"))
    found = tasks.data_dir(config)
    assert found.is_absolute() and (found / "mnist").is_dir()
    assert found.resolve() == shared_data_dir().resolve()
    monkeypatch.setenv("NPRNN_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(config_lib.ConfigError, match="data directory '.*absent' not found"):
        tasks.data_dir(config)


@pytest.mark.parametrize("name", ["tensorboard", "checkpoints"])
def test_a_file_where_the_run_writes_a_folder_is_refused_before_anything_is_written(tmp_path, name):
    from conftest import run_binary
    (tmp_path / name).write_text("not a folder")
    result = run_binary("addition", "--config=experiments/configs/addition.py:smoke", f"--workdir={tmp_path}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"error: {tmp_path / name}: a file where the run writes its {name} folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("platform", ["cuda", "bogus"])
def test_a_backend_this_machine_lacks_is_refused_in_one_line(tmp_path, platform):
    from conftest import run_binary
    result = run_binary("addition", "--config=experiments/configs/addition.py:smoke", f"--workdir={tmp_path / 'w'}",
                        env={"JAX_PLATFORMS": platform}, in_process=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"error: JAX_PLATFORMS='{platform}': JAX cannot start that backend on this machine" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_a_config_file_whose_get_config_returns_nothing_is_refused(tmp_path):
    from conftest import run_binary
    (tmp_path / "c.py").write_text("def get_config():\n    return None\n")
    result = run_binary("addition", f"--config={tmp_path / 'c.py'}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "get_config() returned NoneType, not an ml_collections.ConfigDict" in result.stderr
    assert not (tmp_path / "w").exists()


def test_load_params_needs_only_the_library():
    # The library install has no ml_collections (the binaries' extra): reading a workdir's config
    # and its weights, final and initial, must not import it (nor the experiments package).
    import subprocess
    import sys
    script = """
import sys
for name in ("ml_collections", "experiments", "tensorboardX", "tqdm"):
    sys.modules[name] = None  # an import of any of them fails
import numpy as np
from nprnn_jax import experiment
workdir = sys.argv[1]
config, _ = experiment.read_config(workdir)
final = experiment.load_params(workdir, "np", learning_rate=0.01, seed=0)
initial = experiment.load_params(workdir, "np", learning_rate=0.01, seed=0, initial=True)
print(config.hidden_size, final["W_hh"].shape, round(float(np.linalg.eigvalsh(initial["W_hh"])[-1]), 5),
      bool(np.allclose(final["W_hh"], initial["W_hh"])))
"""
    workdir = REPO / "tests" / "data" / "legacy_workdir_7e5892f"
    result = subprocess.run([sys.executable, "-c", script, str(workdir)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["8", "(8,", "8)", "1.0", "False"], result.stdout
