"""Bad and hostile input at the edges (issue 23): nothing silently wrong, every check before
the first write, one error line at the command line."""

import json

import numpy as np
import pytest

from conftest import run_binary, shared_data_dir
from experiments.configs import addition
from nprnn_jax import config as config_lib
from nprnn_jax import datasets, experiment, merge
from nprnn_jax import workdir as workdir_lib


def binary(module, *args, env=None):
    return run_binary(module, *args, env=env, timeout=300)


def smoke(**changes):
    config = addition.smoke()
    config.inits, config.learning_rates = ("np",), (0.01,)
    for key, value in changes.items():
        config[key] = value
    return config


@pytest.mark.parametrize("key,value,fragment", [
    ("learning_rates", (0.01, 1e-2), "learning_rates=(0.01, 0.01): has 0.01 twice"),
    ("dropout_rates", (0.0, 0.0), "dropout_rates=(0.0, 0.0): has 0.0 twice"),
    ("seed_offset", 2**31 - 1, "the last seed must be <= 2147483647"),
    ("num_steps", 2**31, "num_steps=2147483648: must be an int >= 1 and <= 2147483647"),
    ("test_seed", 2**32, "test_seed=4294967296: must be an int >= 0 and <= 2147483647"),
    ("data_seed", 2**64, "data_seed=18446744073709551616: must be an int"),
    ("eval_every", 40, "num_steps=20 must be a multiple of eval_every=40 (every segment has the same length, so the grid compiles once; eval_every <= num_steps); e.g. --config.eval_every=2"),
])
def test_values_jax_cannot_hold_or_that_count_twice_are_refused(key, value, fragment):
    with pytest.raises(config_lib.ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        config_lib.validate(smoke(**{key: value}))


def test_a_huge_lr_num_cuts_is_refused_at_once():
    config = smoke(lr_schedule="step", lr_num_cuts=10**9)
    with pytest.raises(config_lib.ConfigError, match="lr_num_cuts=1000000000 must be < num_steps=20"):
        config_lib.validate(config)


def test_the_memory_check_counts_parameters_and_names_what_drives_them():
    config = config_lib.validate(smoke(hidden_size=200_000))
    task, _ = experiment.build_task(config)
    with pytest.raises(config_lib.ConfigError, match=r"comes from hidden_size=200000: lower it"):
        experiment.check_memory(config, task, available=24 * 2**30)
    config = config_lib.validate(smoke(seq_len=100_000_000, test_size=64))
    task, _ = experiment.build_task(config)
    with pytest.raises(config_lib.ConfigError, match=r"lower it \(with sequences of 100000000 steps; or shorten"):
        experiment.check_memory(config, task, available=24 * 2**30)


def test_a_grid_with_more_event_files_than_open_files_is_refused_before_any_write(tmp_path):
    result = binary("addition", "--config=experiments/configs/addition.py:smoke", "--config.inits=np",
                    "--config.learning_rates=0.01", "--config.num_seeds=100000", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "error: tensorboard=True keeps one event file open per run, and this grid trains 100000 runs" \
        in result.stderr
    assert not (tmp_path / "w").exists()
    config = config_lib.validate(smoke(num_seeds=300))
    experiment.check_open_files(config, limit=1024)  # 300 runs fit under 1024 - 256
    config = config_lib.validate(smoke(num_seeds=300, inits=("np", "irnn", "nrnn")))
    with pytest.raises(config_lib.ConfigError, match="trains 900 runs at once"):  # grouped: all inits at once
        experiment.check_open_files(config, grouped=True, limit=1024)


class Stop(Exception):
    pass


@pytest.mark.slow
def test_a_kill_during_an_extension_leaves_an_unfinished_workdir_that_resumes(tmp_path):
    short = smoke()
    experiment.train_and_evaluate(short, tmp_path / "w")
    assert (tmp_path / "w" / "summary.json").is_file()
    longer = smoke(num_steps=40)

    def kill(event, init, step):
        if event == "checkpoint_started" and step == 30:
            raise Stop()
    with pytest.raises(Stop):
        experiment.train_and_evaluate(longer, tmp_path / "w", on_event=kill)
    # config.json says 40 steps; no summary or results of the 20-step run remain beside it
    assert json.loads((tmp_path / "w" / "config.json").read_text())["config"]["num_steps"] == 40
    assert not (tmp_path / "w" / "summary.json").exists() and not (tmp_path / "w" / "results.md").exists()
    with pytest.raises(ValueError, match="has no summary.json"):
        merge.merge_workdirs([tmp_path / "w"], tmp_path / "m", "test_accuracy", True, schema=config_lib.SCHEMA)
    experiment.train_and_evaluate(longer, tmp_path / "w")
    experiment.train_and_evaluate(longer, tmp_path / "direct")
    for name in ("summary.json",):
        assert (tmp_path / "w" / name).read_text() == (tmp_path / "direct" / name).read_text()


@pytest.mark.slow
def test_merge_never_writes_over_a_workdir_and_a_stray_step_folder_is_set_aside(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    experiment.train_and_evaluate(smoke(num_seeds=1), a)
    experiment.train_and_evaluate(smoke(num_seeds=1, seed_offset=1), b)
    before = {p.name: p.read_bytes() for p in a.iterdir() if p.is_file()}
    for out, fragment in ((a, "is one of the workdirs to merge"), (b, "is one of the workdirs to merge")):
        with pytest.raises(ValueError, match=fragment):
            merge.merge_workdirs([a, b], out, "test_accuracy", True, schema=config_lib.SCHEMA)
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text("[]")
    with pytest.raises(ValueError, match="exists and is not empty"):
        merge.merge_workdirs([a, b], other, "test_accuracy", True, schema=config_lib.SCHEMA)
    assert {p.name: p.read_bytes() for p in a.iterdir() if p.is_file() and p.name != ".lock"} == \
        {k: v for k, v in before.items() if k != ".lock"}
    with workdir_lib.locked(b):  # a run still writing b: the merge waits for nobody, it refuses
        with pytest.raises(workdir_lib.WorkdirConfigError, match="in use by"):
            merge.merge_workdirs([a, b], tmp_path / "m", "test_accuracy", True, schema=config_lib.SCHEMA)
    merge.merge_workdirs([a, b], tmp_path / "m", "test_accuracy", True, schema=config_lib.SCHEMA)
    assert len(json.loads((tmp_path / "m" / "summary.json").read_text())) == 2
    assert not (tmp_path / "m.merging").exists()
    # mkdir checkpoints/np/999 in a good workdir: named and set aside, the run resumes from 20
    (a / "checkpoints" / "np" / "999").mkdir()
    summary = experiment.train_and_evaluate(smoke(num_seeds=1), a)
    assert "checkpoints/np/999 is not a checkpoint" in capsys.readouterr().err
    assert (a / "damaged_checkpoints" / "np" / "999").is_dir()
    assert summary == json.loads((tmp_path / "m" / "summary.json").read_text())[:1]


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / ".lock").symlink_to(target)
    with pytest.raises(workdir_lib.WorkdirConfigError, match="cannot be opened as a plain file"):
        with workdir_lib.locked(tmp_path / "w"):
            pass
    assert target.read_text() == "keep me"


def test_single_class_training_data_is_refused(tmp_path):
    shared_data_dir()
    lines = (shared_data_dir() / "uea" / "GunPoint_TRAIN.ts").read_text().splitlines()
    data = [line for line in lines if not line.startswith(("@", "#")) and ":" in line]
    label = data[0].rsplit(":", 1)[1]
    keep = [line for line in lines if line.startswith("@") or line.startswith("#") or not line.strip()] + \
        [line for line in data if line.rsplit(":", 1)[1] == label]
    (tmp_path / "GunPoint_TRAIN.ts").write_text("\n".join(keep) + "\n")
    (tmp_path / "GunPoint_TEST.ts").write_text((shared_data_dir() / "uea" / "GunPoint_TEST.ts").read_text())
    with pytest.raises(datasets.DataError, match=f"every training case has the label '{label}'"):
        datasets.load_uea(tmp_path, "GunPoint")
    np.savez(tmp_path / "train.npz", features=np.zeros((4, 3, 2), np.float32), labels=np.array([1, 1, 1, 1]),
             class_names=np.array(["a", "b"]))
    with pytest.raises(datasets.DataError, match="every training case has the label 'b'"):
        datasets.check_training_classes(datasets.load_npz(tmp_path / "train.npz"), tmp_path / "train.npz")
    np.savez(tmp_path / "empty.npz", features=np.zeros((4, 3, 0), np.float32), labels=np.array([0, 1, 0, 1]))
    with pytest.raises(datasets.DataError, match="with N, T, D >= 1"):
        datasets.load_npz(tmp_path / "empty.npz")


@pytest.mark.parametrize("edit,fragment", [
    (lambda r: r["config"].__setitem__("num_steps", "20"), "num_steps='20': must be an int"),
    (lambda r: r.__setitem__("plan", "x"), "its 'plan' is str, not a dict"),
    (lambda r: r.__setitem__("config", None), "its 'config' is NoneType, not a dict"),
    (lambda r: r.__setitem__("version", 1), "written by another nprnn_jax (config version 1"),
    # a setting deleted (it would read as its default) or a learning rate changed (it would relabel
    # the trained runs): the fingerprint written with the record no longer matches
    (lambda r: r["config"].pop("num_steps"), "config.json was edited after the run wrote it (its fingerprint"),
    (lambda r: r["config"].__setitem__("learning_rates", [0.05]), "config.json was edited after the run wrote it"),
])
def test_a_hand_edited_config_json_is_refused_by_name(tmp_path, edit, fragment):
    config = config_lib.validate(smoke())
    task, _ = experiment.build_task(config)
    record = {"version": workdir_lib.CONFIG_VERSION, "task": task.describe(), "config": config_lib.to_json(config),
              "plan": {}}
    workdir_lib.check_or_write_config(tmp_path, record, schema=config_lib.SCHEMA)
    edited = json.loads((tmp_path / "config.json").read_text())
    edit(edited)
    (tmp_path / "config.json").write_text(json.dumps(edited))
    with pytest.raises(workdir_lib.WorkdirConfigError, match=fragment.replace("(", r"\(")):
        workdir_lib.check_or_write_config(tmp_path, record, schema=config_lib.SCHEMA)


def _config_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return f"--config={path}"


@pytest.mark.parametrize("args,fragment", [
    (["--config.data_dir=/tmp"], "--config.data_dir: the addition binary has no such setting (it is a setting "
                                 "of action_recognition, mnist)"),
    (["--workdir="], "--workdir is empty"),
    (["--config.learning_rates=0.1", "--config.learning_rates=0.2"], "--config.learning_rates is given twice"),
    (["CONFIG:x = 1\n"], "defines no get_config()"),
    (["CONFIG:def get_config(:\n"], "is not valid Python (SyntaxError"),
    (["CONFIG:import nonexistent_module_x\ndef get_config():\n    return None\n"],
     "failed to load (ModuleNotFoundError: No module named 'nonexistent_module_x')"),
])
def test_the_command_line_answers_with_one_line_naming_the_fault(tmp_path, args, fragment):
    args = [_config_file(tmp_path, "c.py", a[len("CONFIG:"):]) if a.startswith("CONFIG:") else a for a in args]
    result = binary("addition", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr[-2000:]


def test_mnist_names_its_own_settings():
    result = binary("mnist", "--config.train_size=5")
    assert result.returncode == 2 and "--config.train_size: the mnist binary has no such setting (it is a " \
        "setting of addition, multiplication)" in result.stderr


def test_a_gzip_bomb_is_refused_while_it_inflates_and_a_stale_idx_beside_its_gz_is_named(tmp_path):
    import gzip
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as f:
        chunk = bytes(2**20)
        for _ in range(300):  # 300 MiB of zeros: about 300 KB compressed
            f.write(chunk)
    with pytest.raises(datasets.DataError, match="inflates to more than 256 MiB"):
        datasets.read_idx(bomb)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    with pytest.raises(datasets.DataError, match="both train-images-idx3-ubyte and train-images-idx3-ubyte.gz exist"):
        datasets.load_mnist_idx(tmp_path, "train")


@pytest.mark.slow
def test_the_same_data_under_another_path_resumes_and_other_data_does_not(tmp_path):
    from experiments.configs import action_recognition
    rng = np.random.default_rng(0)
    first = tmp_path / "a"
    first.mkdir()
    for split, n in (("train", 20), ("test", 10)):
        np.savez(first / f"{split}.npz", features=rng.normal(size=(n, 6, 3)).astype(np.float32),
                 labels=np.arange(n) % 2)
    config = action_recognition.get_config("smoke")
    config.dataset, config.data_dir, config.inits = "npz", str(first), ("np",)
    config.learning_rates, config.dropout_rates = (0.01,), (0.0,)
    config.num_steps, config.eval_every, config.lr_cut_steps = 20, 10, (5, 10)
    summary = experiment.train_and_evaluate(config, tmp_path / "w")
    moved = tmp_path / "b"
    import shutil
    shutil.copytree(first, moved)
    config.data_dir = str(moved)
    assert experiment.train_and_evaluate(config, tmp_path / "w") == summary  # the same data: resumed
    data = np.load(moved / "test.npz")
    np.savez(moved / "test.npz", features=data["features"], labels=1 - data["labels"])
    with pytest.raises(workdir_lib.WorkdirConfigError, match="data_sha256"):
        experiment.train_and_evaluate(config, tmp_path / "w")


@pytest.mark.parametrize("args,fragment", [
    (["--coordinator_address=localhost:1234"], "--coordinator_address is given without --distributed"),
    (["--distributed", "--coordinator_address=nohost"], "expected host:port"),
    (["--config.num_seeds=3", "--config.shard=seeds", "--config.host_devices=2"],
     "shard='seeds' needs num_seeds to be a multiple of the 2 devices"),
])
def test_multi_device_settings_that_cannot_apply_are_refused(tmp_path, args, fragment):
    result = binary("addition", "--config=experiments/configs/addition.py:smoke", *args,
                    f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, \
        result.stderr[-2000:]
    assert not (tmp_path / "w").exists()


# --- issue 34 item 6: settings say what the user typed; settings nothing reads are refused ----

@pytest.mark.parametrize("args,message", [
    (("--config.lr_schedule=step", "--config.lr_cut_fractions=0.75,0.5"),
     "error: lr_cut_fractions=(0.75, 0.5): must be increasing fractions of num_steps"),
    (("--config.lr_schedule=step", "--config.lr_cut_fractions=0.5,0.51"),
     "error: lr_cut_fractions=(0.5, 0.51): with num_steps=20 they fall on the steps (10, 10); the cuts must be on "
     "increasing steps in [1, 20)"),
    (("--config.lr_schedule=constant", "--config.lr_cut_fractions=0.5"),
     "error: lr_cut_fractions=(0.5,) is ignored: no init has lr_schedule=step (they have lr_schedule=constant)"),
    (("--config.lr_schedule=constant", "--config.lr_cut_steps=5,10"),
     "error: lr_cut_steps=(5, 10) is ignored: no init has lr_schedule=step"),
    (("--config.optimizer=sgd", "--config.momentum=0.5"),
     "error: momentum=0.5 is ignored: no init has optimizer=momentum (they have optimizer=sgd)"),
    (("--config.inits=np,irnn", "--config.per_init.irnn.optimizer=rmsprop", "--config.per_init.irnn.momentum=0.5"),
     "error: per_init.irnn.momentum=0.5 is ignored: irnn has optimizer=rmsprop"),
    (("--config.inits=np", "--config.per_init.lstm.learning_rates=0.1"),
     "error: per_init.lstm.learning_rates is ignored: lstm is not trained (inits=np)"),
    (("--config.task=multiplication",),
     "error: task='multiplication' (from --config=experiments/configs/addition.py:smoke or --config.task): this is "
     "the addition binary"),
])
def test_settings_that_nothing_reads_or_that_the_user_did_not_type_are_refused(tmp_path, args, message):
    result = binary("addition", "--config=experiments/configs/addition.py:smoke", *args,
                    f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_another_task_s_config_file_is_refused_by_the_binary(tmp_path):
    result = binary("addition", "--config=experiments/configs/mnist.py:smoke", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2 and "error: task='mnist' (from --config=experiments/configs/mnist.py:smoke): this " \
        "is the addition binary; run python -m experiments.main --config=experiments/configs/mnist.py:smoke for " \
        "that task" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "w").exists()


def test_a_coordinator_that_does_not_resolve_is_refused_at_once(tmp_path):
    result = binary("addition", "--config=experiments/configs/addition.py:smoke", "--distributed",
                    "--coordinator_address=no.such.host.invalid:1234", "--num_processes=2", "--process_id=0",
                    f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: --coordinator_address='no.such.host.invalid:1234': the host 'no.such.host.invalid' does not " \
        "resolve" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w").exists()


def test_a_setting_written_as_a_group_is_refused_in_one_line(tmp_path):
    result = binary("addition", "--config=experiments/configs/addition.py:smoke", "--config.inits.foo=1",
                    f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2 and "error: --config.inits.foo: inits is a setting, not a group of settings" \
        in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "w").exists()


def test_dynamics_with_no_inits_is_refused_before_its_folder_is_made(tmp_path):
    result = run_binary("dynamics", "--inits=", f"--workdir={tmp_path / 'd'}", timeout=300)
    assert result.returncode == 2 and "error: --inits='': give one or more sRNN inits" in result.stderr, \
        result.stderr[-2000:]
    assert not (tmp_path / "d").exists()


def test_binary_garbage_in_metrics_jsonl_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"init": "np", "step": 10}\n{"init": "np", "step": 20}\n\x00\xff garbage\n')
    with pytest.raises(workdir_lib.WorkdirConfigError, match=r"metrics.jsonl: line 3 is not text \(byte 55 is not "
                                                             r"UTF-8\); the file is damaged"):
        workdir_lib.truncate_metrics(path, "np", 10)


@pytest.mark.slow
def test_a_kill_between_two_inits_checkpoints_of_a_group_resumes_to_the_same_bytes(tmp_path, capsys):
    # grouped inits (one program): np's checkpoint of step 20 written, irnn's not. The resume
    # restarted them in sub-groups (irnn from 10, np from 20), so the rows came out in another
    # order; now both restart at step 10 and the files equal the uninterrupted run's byte for byte.
    config = smoke(inits=("np", "irnn"), num_steps=30, eval_every=10, log_every=5, group_inits="on",
                   tensorboard=False)

    def kill(event, init, step):
        if event == "checkpoint_started" and init == "np" and step == 20:
            raise Stop()
    with pytest.raises(Stop):
        experiment.train_and_evaluate(config, tmp_path / "w", on_event=kill)
    assert sorted(p.name for p in (tmp_path / "w" / "checkpoint_hashes" / "np").iterdir()) == ["10.json", "20.json"]
    assert sorted(p.name for p in (tmp_path / "w" / "checkpoint_hashes" / "irnn").iterdir()) == ["10.json"]
    experiment.train_and_evaluate(config, tmp_path / "w")
    resumed = capsys.readouterr().err
    experiment.train_and_evaluate(config, tmp_path / "whole")
    for name in ("metrics.jsonl", "train_loss.jsonl", "summary.json", "validation.json"):
        assert (tmp_path / "w" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert "np: resumes at step 10 with the other inits of its group" in resumed
