"""The benchmark binaries end to end (tiny scale) and their handling of bad input."""

import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_binary, shared_data_dir


def run(module, *args, env=None, in_process=None):
    """The binary's result (in this process where it can be: `conftest.run_binary`)."""
    return run_binary(module, *args, env={"NPRNN_DATA_DIR": str(shared_data_dir(required=False)), **(env or {})},
                      in_process=in_process)


FIGURES = ("learning_curves.png", "train_loss.png", "lr_sensitivity.png")


def check_outputs(workdir, metric, num_runs, figures=False):
    """The workdir's records; its figures exist exactly when ``figures`` (the smoke configs draw
    none: --config.figures=true draws them)."""
    for name in ("config.json", "metrics.jsonl", "summary.json", "results.md"):
        assert (workdir / name).is_file(), name
    for name in FIGURES:
        assert (workdir / name).is_file() == figures, name
        assert not figures or (workdir / name).read_bytes()[:4] == b"\x89PNG", name
    summary = json.loads((workdir / "summary.json").read_text())
    assert len(summary) == num_runs
    assert all(np.isfinite(r[metric]) and r["diverged"] is False for r in summary)
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    for init in {r["init"] for r in rows}:
        losses = {}
        for r in rows:
            if r["init"] == init and r["train_loss"] is not None:
                losses.setdefault(r["step"], []).append(r["train_loss"])
        steps = sorted(losses)
        assert np.all(np.isfinite(sum(losses.values(), [])))
        assert np.mean(losses[steps[-1]]) < np.mean(losses[steps[0]]), (init, losses)
    return summary


def smoke(module):
    return f"--config=experiments/configs/{module}.py:smoke"


@pytest.mark.slow
def test_multiplication_binary_runs_its_smoke_config(tmp_path):
    result = run("multiplication", smoke("multiplication"), f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = check_outputs(tmp_path, "test_mse", 2 * 2 * 2)
    assert json.loads((tmp_path / "config.json").read_text())["task"]["name"] == "multiplication"
    assert all(0 <= r["test_accuracy"] <= 1 for r in summary)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["addition"])
def test_marked_pair_binaries_end_to_end(tmp_path, module):
    args = [smoke(module), "--config.seq_len=8", "--config.num_steps=300", "--config.eval_every=100",
            "--config.optimizer=adam", "--config.batch_size=32", "--config.learning_rates=0.01,0.003",
            "--config.hidden_size=16", "--config.train_size=0", "--config.figures=true", f"--workdir={tmp_path}"]
    result = run(module, *args, in_process=False)  # a process of its own: it splits the CPU into devices
    assert result.returncode == 0, result.stderr[-3000:]
    summary = check_outputs(tmp_path, "test_mse", 2 * 2 * 2, figures=True)
    assert {"test_accuracy", "success", "dropout"} <= set(summary[0])
    assert "| np | 0.01 | 2 |" in result.stdout and "step/s" in result.stderr
    assert "--config.optimizer=adam" in result.stderr  # the settings are printed at start
    # the seeds are sharded over one XLA host device per core when they divide evenly
    cores = os.cpu_count() or 1
    assert f"on {cores if 2 % cores == 0 else 1} cpu device(s)" in result.stderr
    assert "| np | 0.01 | 2 |" in (tmp_path / "results.md").read_text()
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["config"]["optimizer"] == "adam" and record["plan"]["devices"] == (cores if 2 % cores == 0 else 1)
    # Run again without figures (an output setting, not a result one): it resumes from the final
    # checkpoint and trains nothing more.
    again = run(module, *[a for a in args if a != "--config.figures=true"])
    assert again.returncode == 0 and "resumed at step 300" in again.stderr
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_mnist_binary_end_to_end(tmp_path):
    shared_data_dir()  # skipped (failed in CI) without the data
    result = run("mnist", smoke("mnist"), "--config.optimizer=adam", "--config.per_init.np.optimizer=adam",
                 "--config.batch_size=32", "--config.permute=true", "--config.inits=np",
                 f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    check_outputs(tmp_path, "test_accuracy", 2)
    permutation = json.loads((tmp_path / "permutation.json").read_text())["permutation"]
    assert sorted(permutation) == list(range(784)) and permutation != list(range(784))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["task"]["seq_len"] == 784 and config["task"]["num_test"] == 200


@pytest.mark.slow
def test_action_recognition_binary_end_to_end(tmp_path):
    shared_data_dir()  # skipped (failed in CI) without the data
    result = run("action_recognition", smoke("action_recognition"), "--config.num_steps=150",
                 "--config.eval_every=50", "--config.lr_cut_steps=100,125", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = check_outputs(tmp_path, "test_accuracy", 2 * 2 * 2)  # 2 inits x 2 dropout rates x 2 seeds
    assert {r["dropout"] for r in summary} == {0.0, 0.5}
    assert max(r["test_accuracy"] for r in summary) > 0.4  # 4 classes: chance is 0.25
    assert "| dropout |" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_action_recognition_npz(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        labels = rng.integers(0, 3, n)
        lengths = rng.integers(3, 9, n)
        features = rng.normal(size=(n, 8, 4)).astype(np.float32)
        features[:, :, 0] += 3 * labels[:, None]
        np.savez(tmp_path / f"{split}.npz", features=features, labels=labels, lengths=lengths)
    result = run("action_recognition", smoke("action_recognition"), "--config.dataset=npz",
                 f"--config.data_dir={tmp_path}", "--config.inits=np", "--config.learning_rates=1e-2",
                 "--config.dropout_rates=0", "--config.num_steps=100", "--config.eval_every=50",
                 "--config.lr_schedule=constant", "--config.optimizer=adam", f"--workdir={tmp_path / 'work'}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = check_outputs(tmp_path / "work", "test_accuracy", 2)
    assert min(r["test_accuracy"] for r in summary) > 0.6
    assert not (tmp_path / "work" / "validation.json").exists()  # no validation_size: none held out
    # validation_size: that many training cases, stratified, are held out (not trained on) and
    # the final parameters are evaluated on them (validation.json, the summary's runs)
    held = run("action_recognition", smoke("action_recognition"), "--config.dataset=npz",
               f"--config.data_dir={tmp_path}", "--config.inits=np", "--config.learning_rates=1e-2,1e-3",
               "--config.dropout_rates=0", "--config.num_steps=50", "--config.eval_every=50",
               "--config.lr_schedule=constant", "--config.optimizer=adam", "--config.validation_size=8",
               f"--workdir={tmp_path / 'held'}")
    assert held.returncode == 0, held.stderr[-3000:]
    task = json.loads((tmp_path / "held" / "config.json").read_text())["task"]
    assert (task["num_train"], task["num_validation"]) == (32, 8)
    validation = json.loads((tmp_path / "held" / "validation.json").read_text())
    summary = json.loads((tmp_path / "held" / "summary.json").read_text())
    key = lambda r: (r["init"], r["learning_rate"], r["seed"])  # noqa: E731
    assert [key(r) for r in validation] == [key(r) for r in summary]
    assert all(r["test_accuracy"] in {i / 8 for i in range(9)} for r in validation)  # shares of 8 cases
    too_many = run("action_recognition", smoke("action_recognition"), "--config.dataset=npz",
                   f"--config.data_dir={tmp_path}", "--config.validation_size=40", f"--workdir={tmp_path / 'x'}")
    assert_clean_error(too_many, "validation_size=40: must be below the 40 training examples")
    assert not (tmp_path / "x").exists()


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# Value checks are tested in process (test_config.py); through the binary, one case per code path:
# a value, a list parsed from text, a flag parse error, a typo, the plan, a config variant, argv.
@pytest.mark.parametrize("args,fragments", [
    (["--config.inits=np,bogus"], ["inits=('np', 'bogus'): item 'bogus' unknown value; allowed: np, irnn"]),
    (["--config.learning_rates=fast"], ["item 'fast' must be a finite number > 0"]),
    (["--config.num_steps=250", "--config.eval_every=100"], ["num_steps=250 must be a multiple of eval_every=100"]),
    (["--config.num_seeds=abc"], ["--config.num_seeds=abc", "invalid literal"]),
    (["--config.num_seedz=3"], ["--config.num_seedz: no such setting (did you mean num_seeds?)", "--show_config"]),
    (["--config.bptt_chunk=7"], ["bptt_chunk=7 must divide the sequence length 50"]),
    (["--config.remat_every=7"], ["remat_every=7 must be a positive divisor of the sequence length 50"]),
    (["--config=experiments/configs/addition.py:paper_T999"], ["unknown named config 'paper_T999'"]),
    (["stray"], ["unexpected arguments: stray"]),
    (["--config.host_devices=100000"], ["host_devices=100000: at most"]),
    (["--config.host_devices=-1"], ["host_devices=-1: must be an int >= 0"]),
    (["--config.batch_size=1000000000"], ["GiB here; most of it", "comes from batch_size=1000000000: lower it"]),
    (["--config.test_size=1000000000"], ["comes from test_size=1000000000: lower it"]),
])
def test_bad_settings(tmp_path, args, fragments):
    result = run("addition", f"--workdir={tmp_path / 'w'}", *args)
    assert_clean_error(result, *fragments)
    assert not (tmp_path / "w").exists()


def test_show_config_lists_every_setting_with_its_value():
    result = run("mnist", "--config=experiments/configs/mnist.py:paper", "--config.num_seeds=3", "--show_config")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--config.num_seeds=3  seeds per" in result.stdout
    assert "--config.per_init.irnn.optimizer=rmsprop" in result.stdout
    assert "--config.lr_cut_fractions=0.33,0.66" in result.stdout
    helped = run("addition", "--help")
    assert helped.returncode == 0
    help_text = helped.stdout
    assert "--config.<name>=value" in help_text and "learning_rates" in help_text and "--show_config" in help_text


def test_the_one_binary_takes_its_task_from_the_config():
    """experiments.main: the config file names the task; the per-task binaries are its aliases."""
    shown = run("main", "--config=experiments/configs/mnist.py:smoke", "--show_config")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "--config.permute=False" in shown.stdout and "--config.seq_len" not in shown.stdout
    default = run("main", "--show_config")  # the main job's config: addition's default
    assert default.returncode == 0 and "--config.seq_len=50" in default.stdout
    assert run("addition", "--show_config").stdout == default.stdout
    wrong = run("main", "--config=experiments/configs/mnist.py:smoke", "--config.seq_len=5")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "--config.seq_len: task mnist (the config's) has no such setting (it is a setting of addition" \
        in wrong.stderr
    helped = run("main", "--help")
    assert helped.returncode == 0 and "the config names its task" in helped.stdout


@pytest.mark.parametrize("tool,in_process", [("addition", True), ("dynamics", True), ("merge", True),
                                             ("reproduce", True),
                                             pytest.param("addition", False, marks=pytest.mark.slow),
                                             pytest.param("reproduce", False, marks=pytest.mark.slow)])
def test_every_tool_helps_with_exit_0_and_refuses_a_bad_flag_with_one_line(tool, in_process):
    # in_process=False: the real process's exit status and output (the contract in-process calls mirror)
    helped = run(tool, "--help", in_process=in_process)
    assert helped.returncode == 0 and "--" in helped.stdout
    assert ("--config.<name>=value" in helped.stdout) == (tool == "addition")
    bad = run(tool, "--no_such_flag=1", in_process=in_process)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert bad.returncode == 2 and len(errors) == 1 and "no_such_flag" in errors[0], bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr


def test_missing_data_directory(tmp_path):
    result = run("mnist", f"--config.data_dir={tmp_path / 'absent'}", f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "data directory", "absent", "not found")


@pytest.fixture
def broken_mnist(tmp_path):
    source = shared_data_dir() / "mnist"
    target = tmp_path / "mnist"
    target.mkdir()
    for path in source.iterdir():
        shutil.copy(path, target / path.name)
    return target


def test_truncated_idx(tmp_path, broken_mnist):
    path = broken_mnist / "train-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    result = run("mnist", f"--config.data_dir={broken_mnist}", f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "train-labels-idx1-ubyte.gz", "truncated IDX payload")
    assert not (tmp_path / "w").exists()


def test_wrong_magic_idx(tmp_path, broken_mnist):
    path = broken_mnist / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[2] = 0x42
    path.write_bytes(gzip.compress(bytes(raw)))
    result = run("mnist", f"--config.data_dir={broken_mnist}", f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "t10k-images-idx3-ubyte.gz", "wrong magic number 0x00004203")


@pytest.mark.parametrize("corruption,fragment", [
    (lambda text: text.replace("@classLabel true Standing Running Walking Badminton", "@classLabel true"),
     "@classLabel true <at least two labels>"),
    (lambda text: text.replace("@seriesLength 100", "@seriesLength 120"), "@seriesLength says 120"),
])
def test_malformed_ts(tmp_path, corruption, fragment):
    uea = tmp_path / "uea"
    uea.mkdir()
    for split in ("TRAIN", "TEST"):
        text = (shared_data_dir() / "uea" / f"BasicMotions_{split}.ts").read_text()
        (uea / f"BasicMotions_{split}.ts").write_text(corruption(text) if split == "TRAIN" else text)
    result = run("action_recognition", f"--config.data_dir={uea}", f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "BasicMotions_TRAIN.ts", fragment)


def test_ts_inconsistent_lengths(tmp_path):
    uea = tmp_path / "uea"
    uea.mkdir()
    for split in ("TRAIN", "TEST"):
        lines = (shared_data_dir() / "uea" / f"GunPoint_{split}.ts").read_text().splitlines()
        if split == "TRAIN":
            index = next(i for i, line in enumerate(lines) if line and line[0].isdigit() or line.startswith("-"))
            values, label = lines[index].rsplit(":", 1)
            lines[index] = ",".join(values.split(",")[:-5]) + ":" + label
        (uea / f"GunPoint_{split}.ts").write_text("\n".join(lines) + "\n")
    result = run("action_recognition", "--config.dataset=GunPoint", f"--config.data_dir={uea}",
                 f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "GunPoint_TRAIN.ts", "length 145; @seriesLength says 150")


@pytest.mark.slow
def test_workdir_of_another_config_is_refused_and_kept(tmp_path):
    workdir = tmp_path / "w"
    first = run("addition", smoke("addition"), "--config.seq_len=5", f"--workdir={workdir}")
    assert first.returncode == 0, first.stderr[-3000:]
    files = lambda: {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob("*")
                     if p.is_file() and p.name != ".lock"}  # the lock names its current holder
    before = files()
    second = run("addition", smoke("addition"), "--config.seq_len=6", f"--workdir={workdir}")
    assert_clean_error(second, "different config", "task.seq_len: 5 in workdir vs 6 now")
    assert before == files()
    # config.json removed next to the results: refused, never rewritten
    (workdir / "config.json").unlink()
    third = run("addition", smoke("addition"), "--config.learning_rates=0.5", f"--workdir={workdir}")
    assert_clean_error(third, "holds results but no config.json")
    assert not (workdir / "config.json").exists()


def test_chunk_lengths_are_checked_against_the_training_length_too(tmp_path):
    shared_data_dir()  # skipped (failed in CI) without the data
    # PickupGestureWiimoteZ: training sequences padded to 361 steps, test to 324; 4 divides only 324.
    result = run("action_recognition", smoke("action_recognition"), "--config.dataset=PickupGestureWiimoteZ",
                 "--config.bptt_chunk=4", f"--workdir={tmp_path / 'w'}")
    assert_clean_error(result, "bptt_chunk=4 must divide the sequence length 361")
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_jobs_with_seed_offsets_merge_into_one_study(tmp_path):
    common = [smoke("addition"), "--config.inits=np", "--config.learning_rates=0.01", "--config.num_seeds=1",
              "--config.host_devices=1"]
    for offset in (0, 1):
        result = run("addition", *common, f"--config.seed_offset={offset}", f"--workdir={tmp_path / str(offset)}")
        assert result.returncode == 0, result.stderr[-3000:]
    merged = subprocess.run([sys.executable, "-m", "experiments.merge", f"--workdirs={tmp_path / '0'},{tmp_path / '1'}",
                             f"--out={tmp_path / 'merged'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stderr[-3000:]
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert sorted(r["seed"] for r in summary) == [0, 1] and "| np | 0.01 | 2 |" in merged.stdout
    assert summary[0]["test_mse"] != summary[1]["test_mse"]
    for name in ("results.md", "learning_curves.png", "metrics.jsonl", "sources.json"):
        assert (tmp_path / "merged" / name).is_file()
    again = subprocess.run([sys.executable, "-m", "experiments.merge", f"--workdirs={tmp_path / '0'},{tmp_path / '0'}",
                            f"--out={tmp_path / 'bad'}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "seed 0 of np is in both" in again.stderr


# A workdir written by the engine before its schedule became an optax schedule (7e5892f): the
# args below, num_steps=20; its checkpoint's optimizer state has no schedule count.
LEGACY_WORKDIR = REPO / "tests" / "data" / "legacy_workdir_7e5892f"


@pytest.mark.slow
def test_a_finished_run_is_extended_to_more_steps_and_equals_a_longer_run(tmp_path):
    # With a step schedule (cuts at 5 and 15), so that the extension and the legacy workdir
    # below carry the schedule across the resumption.
    args = [smoke("addition"), "--config.inits=np", "--config.learning_rates=0.01", "--config.num_seeds=1",
            "--config.lr_schedule=step", "--config.lr_cut_steps=5,15"]
    first = run("addition", *args, f"--workdir={tmp_path / 'w'}")
    assert first.returncode == 0, first.stderr[-3000:]
    longer = run("addition", *args, "--config.num_steps=40", f"--workdir={tmp_path / 'w'}")
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert "resumed at step 20" in longer.stderr
    direct = run("addition", *args, "--config.num_steps=40", f"--workdir={tmp_path / 'direct'}")
    assert direct.returncode == 0, direct.stderr[-3000:]
    read = lambda name: json.loads((tmp_path / name / "summary.json").read_text())
    assert read("w") == read("direct")
    steps = sorted({json.loads(line)["step"] for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()})
    assert steps == [0, 10, 20, 30, 40]
    record = json.loads((tmp_path / "w" / "config.json").read_text())
    assert record["config"]["num_steps"] == 40
    assert record["extended"] == [{"from_num_steps": 20, "to_num_steps": 40}]

    # The legacy workdir resumes (its checkpoint restored into the old layout and upgraded) to
    # byte-identical records: its 20 steps equal today's, and so do the 20 after them.
    import orbax.checkpoint as ocp
    saved = ocp.PyTreeCheckpointer().metadata(LEGACY_WORKDIR / "checkpoints" / "np" / "20" / "default")
    assert saved.item_metadata.tree["opt_state"]["hyperparams_states"] in ({}, None)  # truly the old layout
    shutil.copytree(LEGACY_WORKDIR, tmp_path / "legacy")
    legacy = run("addition", *args, "--config.num_steps=40", f"--workdir={tmp_path / 'legacy'}")
    assert legacy.returncode == 0, legacy.stderr[-3000:]
    assert "resumed at step 20" in legacy.stderr and "warning" not in legacy.stderr
    for name in ("summary.json", "metrics.jsonl", "train_loss.jsonl"):
        assert (tmp_path / "legacy" / name).read_bytes() == (tmp_path / "w" / name).read_bytes(), name


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_jax_distributed_equal_one_process(tmp_path):
    # Two processes on localhost, one CPU device each, CPU collectives over gloo, one shared
    # workdir; against one process with two host devices (the same two-device seed layout).
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "NPRNN_DATA_DIR": str(shared_data_dir())}
    processes = [subprocess.Popen(
        [sys.executable, "-m", "experiments.addition", smoke("addition"), "--distributed",
         f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}",
         f"--workdir={tmp_path / 'two'}"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (out, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "on 2 cpu device(s) in 2 processes" in outputs[0][1] and "| np | 0.01 | 2 |" in outputs[0][0]
    assert "| np |" not in outputs[1][0]  # only process 0 prints the results
    one = run("addition", smoke("addition"), "--config.host_devices=2", f"--workdir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    for name in ("summary.json", "metrics.jsonl"):
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    plan = json.loads((tmp_path / "two" / "config.json").read_text())["plan"]
    assert plan["devices"] == 2 and plan["layout"] == "seeds"


def _events(folder):
    """(tag, step, value) of every scalar in a run's TensorBoard event files (TFRecord framing)."""
    import struct
    from tensorboardX.proto import event_pb2
    out = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
            for v in event.summary.value:  # TensorBoard's HParams plugin: the run's setting
                if v.metadata.plugin_data.plugin_name == "hparams" and v.tag == "_hparams_/session_start_info":
                    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
                    info = HParamsPluginData.FromString(v.metadata.plugin_data.content).session_start_info
                    out.append(("hparams", event.step, {k: (h.string_value or h.number_value)
                                                        for k, h in info.hparams.items()}))
    return out


@pytest.mark.slow
def test_training_loss_at_its_own_interval_and_tensorboard_events(tmp_path):
    result = run("addition", smoke("addition"), "--config.inits=np", "--config.log_every=5",
                 "--config.host_devices=1", "--config.figures=true", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [json.loads(line) for line in (tmp_path / "train_loss.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in losses}) == [5, 10, 15, 20]
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # a segment's mean loss (metrics.jsonl) is the mean of its two 5-step blocks
    for row in (r for r in metrics if r["step"] == 20):
        blocks = [r["train_loss"] for r in losses if r["step"] in (15, 20) and r["seed"] == row["seed"]
                  and r["learning_rate"] == row["learning_rate"]]
        assert row["train_loss"] == pytest.approx(np.mean(blocks), rel=1e-6)
    run_dir = tmp_path / "tensorboard" / "np" / "lr=0.01,dropout=0,seed=1"
    events = _events(run_dir)
    loss_events = sorted((step, value) for tag, step, value in events if tag == "train_loss")
    expected = sorted((r["step"], r["train_loss"]) for r in losses if r["seed"] == 1 and r["learning_rate"] == 0.01)
    assert [s for s, _ in loss_events] == [s for s, _ in expected]
    np.testing.assert_allclose([v for _, v in loss_events], [v for _, v in expected], rtol=1e-6)
    assert sorted(step for tag, step, _ in events if tag == "test_accuracy") == [0, 10, 20]
    assert [v for tag, _, v in events if tag == "hparams"] == [
        {"init": "np", "learning_rate": pytest.approx(0.01), "dropout": 0.0, "seed": 1.0}]
    assert (tmp_path / "train_loss.png").is_file()


@pytest.mark.slow
def test_a_workdir_refuses_other_data(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 20), ("test", 10)):
        np.savez(data / f"{split}.npz", features=rng.normal(size=(n, 6, 3)).astype(np.float32),
                 labels=rng.integers(0, 2, n))
    args = [smoke("action_recognition"), "--config.dataset=npz", f"--config.data_dir={data}", "--config.inits=np",
            "--config.num_steps=20", "--config.eval_every=20", "--config.lr_cut_steps=5,10",
            "--config.dropout_rates=0", f"--workdir={tmp_path / 'w'}"]
    first = run("action_recognition", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = (tmp_path / "w" / "summary.json").read_text()
    test = dict(np.load(data / "test.npz"))
    test["labels"] = 1 - test["labels"]  # other test labels, same shapes
    np.savez(data / "test.npz", **test)
    second = run("action_recognition", *args)
    assert_clean_error(second, "different config", "task.data_sha256")
    assert (tmp_path / "w" / "summary.json").read_text() == summary


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_run_resumes(tmp_path):
    import signal
    import time
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "NPRNN_DATA_DIR": str(shared_data_dir())}
    # A process started in the background (or under some test runners) ignores SIGINT, and an
    # ignored signal stays ignored across exec: a small launcher gives the binary the default
    # disposition back, as when it is started from a terminal (no preexec_fn: no fork of this
    # multithreaded process).
    launcher = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    args = [sys.executable, "-c", launcher, sys.executable, "-m", "experiments.addition", smoke("addition"),
            "--config.num_steps=2000", "--config.eval_every=10", "--config.host_devices=1", f"--workdir={tmp_path}"]
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    hashes = tmp_path / "checkpoint_hashes" / "np"  # written once a checkpoint is complete (not orbax's tmp folder)
    while not hashes.is_dir() or not any(hashes.glob("*.json")):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted: run the same command to resume" in err
    # the same command resumes from the last checkpoint (interrupted again as soon as it says so)
    again = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in again.stderr:
        if "resumed at step" in line:
            again.send_signal(signal.SIGINT)
            break
    again.communicate(timeout=120)
    assert "resumed at step" in line and again.returncode == 130


@pytest.mark.slow
def test_a_damaged_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    args = [smoke("addition"), "--config.inits=np", "--config.host_devices=1"]
    first = run("addition", *args, f"--workdir={tmp_path / 'w'}")
    assert first.returncode == 0, first.stderr[-3000:]
    summary = (tmp_path / "w" / "summary.json").read_text()
    metrics = (tmp_path / "w" / "metrics.jsonl").read_text()
    checkpoints = tmp_path / "w" / "checkpoints" / "np"
    (checkpoints / "20" / "default" / "manifest.ocdbt").unlink()  # the latest checkpoint is damaged
    again = run("addition", *args, f"--workdir={tmp_path / 'w'}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "warning: np: the checkpoint at step 20 is damaged (default/manifest.ocdbt is missing)" in again.stderr
    assert "resumed at step 10" in again.stderr and "Traceback" not in again.stderr
    # trained again from step 10: the same results as before
    assert (tmp_path / "w" / "summary.json").read_text() == summary
    assert (tmp_path / "w" / "metrics.jsonl").read_text() == metrics
    assert (tmp_path / "w" / "damaged_checkpoints" / "np" / "20").is_dir()
    # one flipped byte in a data file of the newest checkpoint: found by its recorded hash, set
    # aside with a warning (no asyncio traceback from orbax), and the run retrains to the same result
    data = sorted((checkpoints / "20" / "default").rglob("d/*"))[0]
    flipped = bytearray(data.read_bytes())
    flipped[len(flipped) // 2] ^= 0x40
    data.write_bytes(bytes(flipped))
    fourth = run("addition", *args, f"--workdir={tmp_path / 'w'}")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert "warning: np: the checkpoint at step 20 is damaged" in fourth.stderr and "has changed since it was saved" \
        in fourth.stderr
    assert "Traceback" not in fourth.stderr and "Event loop is closed" not in fourth.stderr
    assert (tmp_path / "w" / "summary.json").read_text() == summary
    for step in ("10", "20"):  # now every checkpoint is damaged: one error line
        for data in (checkpoints / step / "default" / "d").iterdir():
            data.write_bytes(data.read_bytes()[:10])
    third = run("addition", *args, f"--workdir={tmp_path / 'w'}")
    assert_clean_error(third, "checkpoints/np: no intact checkpoint (step 20: default/d/")
    assert "Event loop is closed" not in third.stderr


def test_config_ergonomics_per_init_any_preset_repeated_lists_and_cut_fractions():
    # any init's per-init setting can be set from the command line, not only declared ones
    result = run("mnist", "--config=experiments/configs/mnist.py:paper", "--config.per_init.irnn_scaled.learning_rates=1e-5",
                 "--config.inits=np,irnn,irnn_scaled", "--config.num_steps=10", "--config.eval_every=5",
                 "--show_config")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "per_init.irnn_scaled.learning_rates" in result.stdout and "1e-05" in result.stdout
    # the paper's cuts are fractions of the run, so they follow num_steps; eval_every names a fix
    result = run("mnist", "--config=experiments/configs/mnist.py:paper", "--config.num_steps=10", "--show_config")
    assert result.returncode == 2 and "--config.eval_every=1" in result.stderr, result.stderr[-2000:]
    from nprnn_jax import config as config_lib
    from experiments.configs import mnist
    config = mnist.get_config("paper")
    config.num_steps, config.eval_every = 1000, 100
    assert config_lib.cut_steps(config_lib.init_settings(config_lib.validate(config), "np"), 1000) == (330, 660)
    # a repeated list override would append: refused
    result = run("addition", smoke("addition"), "--config.learning_rates=0.1", "--config.learning_rates=0.2")
    assert result.returncode == 2 and "error: --config.learning_rates is given twice" in result.stderr
