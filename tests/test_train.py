import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import device_flags

from nprnn_jax import config as config_lib
from nprnn_jax import parallel, rnn, runner, tasks, train, workdir as workdir_lib

TASK = tasks.AdditionTask(seq_len=20, test_size=64)
CONFIG = train.TrainConfig(hidden_size=16, batch_size=8, num_steps=40, eval_every=10)


def grid_train(trainer, keys, hp):
    return jax.jit(jax.vmap(jax.vmap(trainer.train, (0, None)), (None, 0)))(keys, hp)


def test_vmapped_seeds_equal_separate_runs():
    # 20 steps: float32 rounding differences of batched and unbatched matmuls grow
    # with the number of steps; over 20 they stay far below the 1e-5 tolerance.
    trainer = train.make_train(train.TrainConfig(hidden_size=16, batch_size=8, num_steps=20,
                                                 eval_every=10), TASK)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(3))
    hp = train.hparams(jnp.array([0.01, 0.05]), jnp.array([1.0, 1.0]))
    state, losses = grid_train(trainer, keys, hp)
    single = jax.jit(trainer.train)
    for li, lr in enumerate([0.01, 0.05]):
        for s in range(3):
            one_state, one_losses = single(keys[s], train.hparams(lr, 1.0))
            np.testing.assert_allclose(losses[li, s], one_losses, rtol=1e-5, atol=1e-6)
            for name in one_state.params:
                np.testing.assert_allclose(state.params[name][li, s], one_state.params[name],
                                           rtol=1e-5, atol=1e-6)
    # Seeds differ from each other, and the training loss falls.
    assert float(jnp.abs(state.params["W_hh"][0, 0] - state.params["W_hh"][0, 1]).max()) > 1e-3
    assert bool(jnp.all(losses[:, :, -1] < losses[:, :, 0]))


def test_train_is_deterministic():
    trainer = train.make_train(CONFIG, TASK)
    key, hp = jax.random.PRNGKey(5), train.hparams(0.01, 1.0)
    a = jax.jit(trainer.train)(key, hp)
    b = jax.jit(trainer.train)(key, hp)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_diverging_run_is_frozen_and_others_untouched():
    trainer = train.make_train(CONFIG, TASK)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(2))
    run = jax.jit(jax.vmap(jax.vmap(trainer.train, (0, None)), (None, 0)))  # one program, both grids
    state_ok, loss_ok = run(keys, train.hparams(jnp.array([0.01, 0.02, 0.03]), jnp.ones(3)))
    lrs = jnp.array([0.01, 1e6, 0.03])
    state, losses = run(keys, train.hparams(lrs, jnp.array([1.0, 1e12, 1.0])))
    assert bool(jnp.all(state.diverged[1])) and not bool(jnp.any(state.diverged[jnp.array([0, 2])]))
    assert not bool(jnp.any(state_ok.diverged))
    assert bool(jnp.all(state.diverged_step[1] >= 0))
    # The frozen run kept finite parameters (those of the step before it diverged).
    assert all(bool(jnp.all(jnp.isfinite(p[1]))) for p in state.params.values())
    # Its neighbours in the grid are untouched: equal to a grid in which nothing diverged.
    kept = jnp.array([0, 2])
    for name in state.params:
        np.testing.assert_array_equal(state.params[name][kept], state_ok.params[name][kept])
    np.testing.assert_array_equal(losses[kept], loss_ok[kept])


@pytest.mark.parametrize("optimizer", train.OPTIMIZERS)
def test_optimizers_by_name_reduce_the_loss(optimizer):
    lr = {"sgd": 0.05, "momentum": 0.01, "rmsprop": 1e-3, "adam": 1e-3}[optimizer]
    config = train.TrainConfig(hidden_size=16, batch_size=16, num_steps=60, eval_every=20,
                               optimizer=optimizer)
    trainer = train.make_train(config, TASK)
    _, losses = jax.jit(trainer.train)(jax.random.PRNGKey(0), train.hparams(lr, 1.0))
    assert float(losses[-1]) < float(losses[0])


def test_learning_rate_is_injected_not_baked_in():
    trainer = train.make_train(CONFIG, TASK)
    state = trainer.init(jax.random.PRNGKey(0), train.hparams(0.123, 4.0))
    assert float(state.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.123)
    assert float(state.opt_state.hyperparams["clip_norm"]) == pytest.approx(4.0)


@pytest.mark.parametrize("clip_by", train.CLIP_BY)
def test_clipping_per_entry_touches_the_huge_entry_alone(clip_by):
    # A gradient with one huge entry: per entry (clip_by="value") only that entry is cut to the
    # threshold; by global norm the whole gradient is scaled down to norm 10.
    grads = {"a": jnp.array([0.5, -2.0, 1000.0]), "b": jnp.array([[3.0, -4.0]])}
    config = train.TrainConfig(hidden_size=8, clip_by=clip_by, optimizer="sgd")
    optimizer = train.make_optimizer(config)(learning_rate=1.0, clip_norm=10.0)
    updates, _ = optimizer.update(grads, optimizer.init(grads))
    if clip_by == "value":
        np.testing.assert_array_equal(updates["a"], [-0.5, 2.0, -10.0])
        np.testing.assert_array_equal(updates["b"], [[-3.0, 4.0]])
    else:
        norm = np.sqrt(0.25 + 4.0 + 1000.0 ** 2 + 9.0 + 16.0)
        np.testing.assert_allclose(updates["a"], -np.array([0.5, -2.0, 1000.0]) * 10.0 / norm, rtol=1e-6)
        np.testing.assert_allclose(updates["b"], -np.array([[3.0, -4.0]]) * 10.0 / norm, rtol=1e-6)


def test_clip_by_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="clip_by.*'norm'.*global_norm.*value"):
        train.TrainConfig(clip_by="norm")


@pytest.mark.parametrize("eval_batch_size", [10, 37, 1000])
def test_predict_in_batches_equals_one_pass(eval_batch_size):
    # 37 examples: batches of 10 need padding; 1000 > 37 is one batch.
    xs = jax.random.normal(jax.random.key(0), (37, 12, 2))
    lengths = jax.random.randint(jax.random.key(1), (37,), 1, 13)
    trainer = train.make_train(train.TrainConfig(hidden_size=8, eval_batch_size=eval_batch_size), TASK)
    params = rnn.init_params(jax.random.key(2), trainer.rnn_config)
    for inputs in ({"xs": xs}, {"xs": xs, "lengths": lengths}):
        got = jax.jit(trainer.predict)(params, inputs)
        expected = rnn.apply(params, inputs["xs"], trainer.rnn_config, inputs.get("lengths"))
        assert got.shape == expected.shape == (37, 1)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_bad_train_config_errors():
    with pytest.raises(ValueError, match="optimizer='nesterov': unknown value; allowed: sgd, momentum, rmsprop, adam"):
        train.TrainConfig(optimizer="nesterov")
    with pytest.raises(ValueError, match="num_steps=45 must be a multiple of eval_every=10"):
        train.TrainConfig(num_steps=45, eval_every=10)
    with pytest.raises(ValueError, match=r"learning_rates=\(0.01, -0.1\): item -0.1 must be a finite number > 0"):
        runner.Grid(learning_rates=(0.01, -0.1))
    with pytest.raises(ValueError, match="unknown init 'foo'"):
        runner.InitRun("foo", CONFIG, runner.Grid())


# --- the runner: segments, checkpoints, resumption, devices -------------------------

def init_runs(inits=("np", "irnn"), learning_rates=(0.01, 0.05), num_seeds=2, clip_norm=1.0, config=CONFIG):
    return [runner.InitRun(init, config, runner.Grid(learning_rates, num_seeds, clip_norm)) for init in inits]


RUNS = init_runs()

CHILD = textwrap.dedent("""
    import os, sys
    from nprnn_jax import parallel, runner, tasks, train
    task = tasks.AdditionTask(seq_len=20, test_size=64)
    config = train.TrainConfig(hidden_size=16, batch_size=8,
                               num_steps=int(os.environ.get("STEPS", "40")), eval_every=10)
    grid = runner.Grid(learning_rates=(0.01, 0.05), num_seeds=int(os.environ.get("SEEDS", "2")), clip_norm=1.0)
    runs = [runner.InitRun(init, config, grid) for init in ("np", "irnn")]
    plan = parallel.execution_plan(num_seeds=grid.num_seeds, batch_size=8, seq_lens=(20, 20), bptt_chunk=0,
                                   group_inits=os.environ.get("GROUP", "off"))
    crash = os.environ.get("CRASH")  # "event:init:step"

    def on_event(event, init, step):
        if crash == f"{event}:{init}:{step}":
            os._exit(17)

    runner.run_experiment(task, runs, sys.argv[1], plan=plan, on_event=on_event)
    import jax
    print("DEVICES", jax.device_count())
""")


def run_child(workdir, **env):
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **env}
    return subprocess.run([sys.executable, "-c", CHILD, str(workdir)], env=full_env,
                          capture_output=True, text=True, timeout=600)


def read_results(workdir):
    summary = json.loads((workdir / "summary.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: (r["init"], r["step"], r["learning_rate"], r["seed"]))
    losses = [json.loads(line) for line in (workdir / "train_loss.jsonl").read_text().splitlines()]
    losses.sort(key=lambda r: (r["init"], r["step"], r["learning_rate"], r["seed"]))
    return summary, rows, losses


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    runner.TRACE_COUNTS.clear()
    summary = runner.run_experiment(TASK, RUNS, workdir)
    return workdir, summary, dict(runner.TRACE_COUNTS)


def test_runner_writes_config_metrics_summary(uninterrupted):
    workdir, summary, _ = uninterrupted
    config = json.loads((workdir / "config.json").read_text())
    assert config["config"]["inits"] == ["np", "irnn"] and config["task"]["seq_len"] == 20
    assert len(summary) == 2 * 2 * 2
    for record in summary:
        assert set(record) >= {"init", "learning_rate", "dropout", "seed", "test_mse", "test_accuracy",
                               "success", "diverged"}
        assert np.isfinite(record["test_mse"]) and record["diverged"] is False
    _, rows, _ = read_results(workdir)
    assert len(rows) == 2 * 5 * 4  # inits x evaluations (step 0 and 4 segments) x runs
    # the final parameters on the validation set: the summary's runs, other sequences, other values
    validation = json.loads((workdir / "validation.json").read_text())
    key = lambda r: (r["init"], r["learning_rate"], r["seed"])  # noqa: E731
    assert [key(r) for r in validation] == [key(r) for r in summary]
    assert [r["test_mse"] for r in validation] != [r["test_mse"] for r in summary]
    assert all(abs(v["test_mse"] / s["test_mse"] - 1) < 0.5 for v, s in zip(validation, summary))
    assert {r["step"] for r in rows} == {0, 10, 20, 30, 40}


def test_a_metric_writer_gets_every_row_the_files_get(tmp_path, uninterrupted):
    from nprnn_jax import writers

    class Recorder(writers.MetricWriter):
        def __init__(self):
            self.calls = []

        def resume(self, init, start):
            self.calls.append(("resume", init, start))

        def write(self, init, rows, loss_rows=None):
            self.calls.append(("write", init, rows, loss_rows))

        def close(self):
            self.calls.append(("close",))

    recorder = Recorder()
    runner.run_experiment(TASK, RUNS, tmp_path, writer=recorder)
    assert recorder.calls[0] == ("resume", "np", 0) and recorder.calls[-1] == ("close",)
    written = [row for call in recorder.calls if call[0] == "write" for row in call[2]]
    assert written == [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [row for call in recorder.calls if call[0] == "write" and call[3] for row in call[3]]
    assert losses == [json.loads(line) for line in (tmp_path / "train_loss.jsonl").read_text().splitlines()]
    assert read_results(tmp_path) == read_results(uninterrupted[0])


def test_grid_traces_once(uninterrupted):
    _, _, counts = uninterrupted
    # Two inits, each a separate program traced once, over four segments each.
    assert counts == {"init": 2, "segment": 2, "evaluate": 2}


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(tmp_path, uninterrupted):
    # a real process killed at once (os._exit: no cleanup, the lock file left behind)
    first = run_child(tmp_path, CRASH="segment_done:np:20")
    assert first.returncode == 17, first.stderr[-2000:]
    assert not (tmp_path / "summary.json").exists()
    second = run_child(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed at step" in second.stderr
    assert read_results(tmp_path) == read_results(uninterrupted[0])


class Crash(Exception):
    """Stands for a kill at one of the runner's events, in process."""


def crash_then_resume(workdir, crash: str, group="off", resume_group="off") -> str:
    """A run stopped by an exception at ``crash`` ("event:init:step"), then resumed in this
    process; returns the resumed run's progress output."""
    import io

    def plan(g):
        return parallel.execution_plan(num_seeds=2, batch_size=8, seq_lens=(20, 20), bptt_chunk=0, group_inits=g)

    def on_event(event, init, step):
        if crash == f"{event}:{init}:{step}":
            raise Crash(crash)

    with pytest.raises(Crash):
        runner.run_experiment(TASK, RUNS, workdir, plan=plan(group), on_event=on_event, progress_stream=io.StringIO())
    assert not (workdir / "summary.json").exists()
    progress = io.StringIO()
    runner.run_experiment(TASK, RUNS, workdir, plan=plan(resume_group), progress_stream=progress)
    return progress.getvalue()


def test_run_stopped_after_a_checkpoint_resumes_to_identical_results(tmp_path, uninterrupted):
    output = crash_then_resume(tmp_path, "checkpoint_started:irnn:30")
    assert "np (1/2): resumed at step 40" in output and "irnn (2/2): resumed at step 30" in output
    assert read_results(tmp_path) == read_results(uninterrupted[0])


@pytest.mark.slow
def test_four_host_devices_give_the_same_results(tmp_path):
    # 20 steps, so that float32 rounding differences between a 4-seed batch on one
    # device and 1-seed batches on four stay below the tolerance. And the two inits as one
    # program on the four devices give each init exactly its records on the same plan.
    four, grouped, one = tmp_path / "four", tmp_path / "grouped", tmp_path / "one"
    for workdir, group in ((four, "off"), (grouped, "on")):
        result = run_child(workdir, SEEDS="4", STEPS="20", GROUP=group,
                           XLA_FLAGS=device_flags(4))
        assert result.returncode == 0, result.stderr[-2000:]
        assert "DEVICES 4" in result.stdout
        assert ("np+irnn (1-2/2)" in result.stderr) == (group == "on"), result.stderr[-2000:]
    assert read_results(grouped) == read_results(four)
    result = run_child(one, SEEDS="4", STEPS="20")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEVICES 1" in result.stdout
    s4, r4, _ = read_results(four)
    s1, r1, _ = read_results(one)
    assert len(s4) == 16 and len(r4) == len(r1) == 2 * 3 * 8
    for a, b in zip(s4 + r4, s1 + r1):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key
            else:
                assert a[key] == b[key], key


# --- inits as an axis of one program (ExecutionPlan.group_inits) ---------------------------

def test_init_groups_share_cell_and_settings():
    mixed = init_runs(("np", "irnn", "np_tanh", "lstm", "nrnn", "tanh"))
    assert [[r.init for r in g] for g in runner.init_groups(mixed)] == [["np", "irnn", "nrnn"], ["np_tanh", "tanh"],
                                                                        ["lstm"]]
    # Learning rates and clip norms may differ; the seeds, the optimizer and the steps may not.
    other_rates = init_runs(("irnn",), learning_rates=(0.1, 0.2, 0.3), clip_norm=5.0)
    assert len(runner.init_groups(RUNS[:1] + other_rates)) == 1
    assert len(runner.init_groups(RUNS[:1] + init_runs(("irnn",), num_seeds=3))) == 2
    adam = dataclasses.replace(CONFIG, optimizer="adam")
    assert len(runner.init_groups(RUNS[:1] + init_runs(("irnn",), config=adam))) == 2


@pytest.mark.slow
def test_grouped_inits_give_each_init_exactly_its_own_records(tmp_path, uninterrupted):
    # The same runs as `uninterrupted` (each init its own program), but np and irnn trained as
    # one program; irnn_scaled with its own learning rates and clip norm joins them. On one
    # device with the CPU's "map" execution every record is equal bit for bit.
    runs = RUNS + init_runs(("irnn_scaled",), learning_rates=(0.02, 0.03, 0.04), clip_norm=3.0)
    plan = parallel.execution_plan(num_seeds=2, batch_size=8, seq_lens=(20, 20), bptt_chunk=0, group_inits="on")
    assert plan.group_inits is True and plan.execution == "map"
    runner.TRACE_COUNTS.clear()
    summary = runner.run_experiment(TASK, runs, tmp_path, plan=plan)
    assert runner.TRACE_COUNTS["segment"] == 1 and runner.TRACE_COUNTS["evaluate"] == 1
    assert [r["init"] for r in summary] == ["np"] * 4 + ["irnn"] * 4 + ["irnn_scaled"] * 6
    alone, _, _ = read_results(uninterrupted[0])
    grouped, rows, losses = read_results(tmp_path)
    assert grouped[:8] == alone == uninterrupted[1]
    _, alone_rows, alone_losses = read_results(uninterrupted[0])
    assert [r for r in rows if r["init"] != "irnn_scaled"] == alone_rows
    assert [r for r in losses if r["init"] != "irnn_scaled"] == alone_losses
    # irnn_scaled's records equal its own single-init grid's.
    single = tmp_path / "single"
    runner.run_experiment(TASK, runs[2:], single, plan=dataclasses.replace(plan, group_inits=False))
    assert grouped[8:] == json.loads((single / "summary.json").read_text())
    # Each init keeps its own checkpoints, so a workdir trained one way resumes the other way.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["irnn", "irnn_scaled", "np"]


@pytest.mark.slow
def test_grouped_run_killed_resumes_to_identical_results(tmp_path, uninterrupted):
    # np saved step 20, irnn did not: the group restarts together at step 10 (np's checkpoint of
    # step 20 dropped and recomputed), so its rows keep the uninterrupted order.
    output = crash_then_resume(tmp_path, "checkpoint_started:np:20", group="on", resume_group="on")
    assert "np+irnn (1-2/2): resumed at step 10" in output and "np (1/2): resumed" not in output
    assert read_results(tmp_path) == read_results(uninterrupted[0])


def test_workdir_of_separate_inits_resumes_grouped(tmp_path, uninterrupted):
    output = crash_then_resume(tmp_path, "segment_done:irnn:30", resume_group="on")  # np finished, irnn at 20
    assert "np (1/2): resumed at step 40" in output and "irnn (2/2): resumed at step 20" in output
    assert read_results(tmp_path) == read_results(uninterrupted[0])


@pytest.mark.slow
def test_sharding_splits_the_seed_axis():
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp
        from nprnn_jax import parallel, runner, tasks, train
        grid = runner.Grid(learning_rates=(0.01,), num_seeds=4)
        plan = parallel.execution_plan(num_seeds=4, batch_size=16, seq_lens=(5, 5))
        run = runner.GridRun(tasks.AdditionTask(seq_len=5, test_size=4),
                             runner.InitRun("np", train.TrainConfig(hidden_size=4, num_steps=2, eval_every=1), grid),
                             plan)
        state = run.initial_state()
        w = state.params["W_hh"]
        print("SHARDS", len(w.sharding.device_set), w.addressable_shards[0].data.shape)
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": device_flags(4)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "SHARDS 4 (1, 1, 4, 4)" in out.stdout, out.stderr[-2000:]


def _record(seq_len=20, runs=False, **settings):
    config = config_lib.base_config("addition")
    for name, value in settings.items():
        config[name] = value
    record = {"version": workdir_lib.CONFIG_VERSION, "task": tasks.AdditionTask(seq_len=seq_len).describe(),
              "config": config_lib.to_json(config_lib.validate(config)), "plan": {"bptt_chunk": 10}}
    if runs:  # the run descriptions today's binaries record
        from nprnn_jax import experiment
        record["runs"] = {run.init: run.to_json() for run in experiment.init_runs(config_lib.validate(config))}
    return record


def test_workdir_with_other_config_is_refused(tmp_path):
    workdir_lib.check_or_write_config(tmp_path, _record(), schema=config_lib.SCHEMA)
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(workdir_lib.WorkdirConfigError, match="task.seq_len: 20 in workdir vs 30 now"):
        workdir_lib.check_or_write_config(tmp_path, _record(seq_len=30), schema=config_lib.SCHEMA)
    with pytest.raises(workdir_lib.WorkdirConfigError, match="config.learning_rates: \\[0.01\\] in workdir vs "
                                                             "\\[0.5\\] now"):
        workdir_lib.check_or_write_config(tmp_path, _record(learning_rates=(0.5,)), schema=config_lib.SCHEMA)
    assert (tmp_path / "config.json").read_text() == before
    # Speed-only settings and the plan may differ (resuming on another machine).
    other_plan = dict(_record(bptt_chunk=0, execution="vmap", host_devices=1), plan={"bptt_chunk": 0})
    workdir_lib.check_or_write_config(tmp_path, other_plan, schema=config_lib.SCHEMA)
    assert (tmp_path / "config.json").read_text() == before


def test_a_setting_added_later_compares_equal_to_its_default(tmp_path):
    older = _record()
    del older["config"]["seed_offset"]  # a record written before the setting existed
    workdir_lib.check_or_write_config(tmp_path, older, schema=config_lib.SCHEMA)
    workdir_lib.check_or_write_config(tmp_path, _record(), schema=config_lib.SCHEMA)  # the same run: accepted
    with pytest.raises(workdir_lib.WorkdirConfigError, match="config.seed_offset: 0 in workdir vs 4 now"):
        workdir_lib.check_or_write_config(tmp_path, _record(seed_offset=4), schema=config_lib.SCHEMA)


def test_workdir_of_an_older_version_is_refused_with_a_clear_message(tmp_path):
    old = {"task": {"name": "addition"}, "train": {"hidden_size": 100}, "grid": {"inits": ["np"]}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(workdir_lib.WorkdirConfigError, match="written by another nprnn_jax .config version 1, "
                                                             "this one reads 2.*use a new workdir"):
        workdir_lib.check_or_write_config(tmp_path, _record(), schema=config_lib.SCHEMA)
    assert json.loads((tmp_path / "config.json").read_text()) == old


@pytest.mark.parametrize("devices", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_map_and_vmap_executions_agree(devices):
    code = textwrap.dedent("""
        import json, jax, numpy as np
        from nprnn_jax import parallel, runner, tasks, train
        grid = runner.Grid(learning_rates=(0.01, 0.05), num_seeds=2, clip_norm=1.0)
        config = train.TrainConfig(hidden_size=16, batch_size=8, num_steps=20, eval_every=10)
        task = tasks.AdditionTask(seq_len=20, test_size=64)
        out = {}
        for execution in ("vmap", "map"):
            plan = parallel.execution_plan(num_seeds=2, batch_size=8, seq_lens=(20, 20), execution=execution)
            run = runner.GridRun(task, runner.InitRun("np", config, grid), plan)
            state = run.initial_state()
            for _ in range(2):
                state, loss = run.segment(state, run.hp, run.data)
            out[execution] = (np.asarray(state.params["W_hh"]), np.asarray(loss), int(state.step[0, 0]))
        print("STEPS", out["map"][2], out["vmap"][2], jax.device_count())
        print("PARAMS", float(np.abs(out["map"][0] - out["vmap"][0]).max() / np.abs(out["vmap"][0]).max()))
        print("LOSS", float(np.abs(out["map"][1] - out["vmap"][1]).max() / np.abs(out["vmap"][1]).max()))
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": device_flags(devices)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert f"STEPS 20 20 {devices}" in out.stdout, out.stderr[-2000:]
    values = dict(line.split() for line in out.stdout.splitlines() if line.startswith(("PARAMS", "LOSS")))
    assert float(values["PARAMS"]) < 1e-5 and float(values["LOSS"]) < 1e-5


@pytest.mark.parametrize("execution", ["vmap", "map"])
@pytest.mark.parametrize("lead", [(1,), (1, 1), (3,), (2, 1)])
def test_over_runs_equals_vmap_and_calls_a_single_run_unbatched(execution, lead):
    seen = []

    def fn(x, y):
        seen.append(x.shape)
        return {"sum": jnp.sum(x * y, axis=-1), "x": x @ x.T}

    x = jax.random.normal(jax.random.key(0), lead + (4, 3))
    y = jax.random.normal(jax.random.key(1), lead + (4, 3))
    out = jax.jit(parallel.over_runs(fn, len(lead), execution))(x, y)
    expected = fn
    for _ in lead:
        expected = jax.vmap(expected)
    expected = expected(x, y)
    assert jax.tree.map(jnp.shape, out) == jax.tree.map(jnp.shape, expected)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    if all(size == 1 for size in lead):  # squeezed: fn traced on one run's [4, 3], no run axis
        assert seen[0] == (4, 3)


def test_pmean_flat_equals_leafwise_pmean_and_keeps_dtypes_and_shapes():
    keys = jax.random.split(jax.random.key(3), 4)
    tree = {"loss": jax.random.normal(keys[0], (4,)),
            "grads": {"w": jax.random.normal(keys[1], (4, 3, 5)), "b": jax.random.normal(keys[2], (4, 5))},
            "half": jax.random.normal(keys[3], (4, 2)).astype(jnp.bfloat16)}
    got = jax.vmap(lambda t: parallel.pmean_flat(t, "i"), axis_name="i")(tree)
    expected = jax.vmap(lambda t: jax.lax.pmean(t, "i"), axis_name="i")(tree)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6)
    assert parallel.pmean_flat({}, "i") == {}


def test_unknown_execution():
    with pytest.raises(ValueError, match="unknown execution 'pmap'; valid: vmap, map, auto"):
        runner.GridRun(TASK, RUNS[0], parallel.ExecutionPlan(execution="pmap"))


def test_runner_reports_diverged_runs(tmp_path):
    summary = runner.run_experiment(TASK, init_runs(("np",), (0.01, 1e6), 2, 1e12), tmp_path)
    by_lr = {lr: [r for r in summary if r["learning_rate"] == lr] for lr in (0.01, 1e6)}
    for record in by_lr[1e6]:
        assert record["diverged"] is True and record["test_mse"] is None
        assert isinstance(record["diverged_step"], int) and 0 <= record["diverged_step"] < 40
    for record in by_lr[0.01]:
        assert record["diverged"] is False and record["diverged_step"] is None
        assert np.isfinite(record["test_mse"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["step"] == 40 and r["learning_rate"] == 1e6]
    assert all(r["diverged"] and r["train_loss"] is None and r["test_mse"] is None for r in final)


# --- data parallelism inside a run (mesh axis "batch") ------------------------------


@pytest.mark.parametrize("shards", [2, 4])
def test_batch_split_step_equals_the_whole_batch_step(shards):
    # The same step with the minibatch split over a named axis of `shards` members
    # (vmap stands in for shard_map: the same axis_index / pmean semantics).
    whole = train.make_train(CONFIG, TASK)
    split = train.make_train(CONFIG, TASK, batch_axis="batch")
    hp = train.hparams(0.05, 1.0)
    state = whole.init(jax.random.PRNGKey(3), hp)
    expected, expected_loss = jax.jit(lambda s: whole.step(s, hp))(state)
    stepped = jax.jit(jax.vmap(lambda s: split.step(s, hp), in_axes=None, axis_size=shards,
                               axis_name="batch"))(state)
    for member in range(shards):
        got, got_loss = jax.tree.map(lambda x: x[member], stepped)
        np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-6)
        for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(expected.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        assert bool(jnp.all(got.key == expected.key)) and int(got.step) == 1
    # The step really used different rows per member: member gradients differ before pmean.
    local = jax.vmap(lambda b: parallel.local_rows(b, "batch"),
                     in_axes=None, axis_size=shards, axis_name="batch")(
        TASK.sample(jax.random.PRNGKey(0), CONFIG.batch_size, None))
    assert local["xs"].shape == (shards, CONFIG.batch_size // shards) + local["xs"].shape[2:]
    assert not np.allclose(local["xs"][0], local["xs"][1])


def test_batch_split_needs_an_even_split():
    batch = {"xs": jnp.zeros((6, 3, 2))}
    with pytest.raises(ValueError, match="a batch of 6 rows cannot be split evenly over the 4 devices "
                                         "of mesh axis 'batch'"):
        jax.vmap(lambda b: parallel.local_rows(b, "batch"), in_axes=None, axis_size=4,
                 axis_name="batch")(batch)


def test_layout_choices_on_one_device_and_bad_values():
    devices = jax.device_count()  # one CPU device in this process
    assert parallel.layout_kind(4, 16, devices) is None and parallel.mesh_sharding(None) is None
    assert parallel.layout_kind(3, 16, devices, "batch") is None
    with pytest.raises(ValueError, match="unknown shard 'model'; valid: auto, seeds, batch, none"):
        parallel.layout_kind(4, 16, devices, "model")


def test_layout_kind_for_device_counts():
    assert parallel.layout_kind(4, 16, 1) is None and parallel.layout_kind(4, 16, 2, "none") is None
    assert parallel.layout_kind(4, 16, 2) == "seeds"
    assert parallel.layout_kind(3, 16, 2) == "batch"
    assert parallel.layout_kind(3, 15, 2) is None
    assert parallel.layout_kind(4, 16, 2, "batch") == "batch"
    with pytest.raises(ValueError, match="shard='batch' needs batch_size to be a multiple of the 4 devices; "
                                         "got batch_size=6"):
        parallel.layout_kind(4, 6, 4, "batch")


def test_execution_plan_resolves_every_speed_setting_once():
    plan = parallel.execution_plan(num_seeds=4, batch_size=16, seq_lens=(784, 784))
    assert plan.to_json() == {"backend": "cpu", "devices": 1, "layout": None, "execution": "map", "bptt_chunk": 98,
                              "group_inits": False,  # auto: off on a CPU
                              "unroll": 1, "backward": "custom", "remat_every": 0}
    assert parallel.execution_plan(num_seeds=4, batch_size=16, seq_lens=(784,), group_inits="on").group_inits
    with pytest.raises(ValueError, match="unknown group_inits 'yes'; valid: auto, on, off"):
        parallel.execution_plan(num_seeds=4, batch_size=16, seq_lens=(784,), group_inits="yes")
    assert parallel.resolve_group_inits("auto", "gpu") and not parallel.resolve_group_inits("auto", "cpu")
    # chunks divide train and test lengths; none in [25, 200] -> off; autodiff -> off
    assert parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(400, 300)).bptt_chunk == 100
    assert parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(361, 324)).bptt_chunk == 0
    assert parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(400, 400),
                                   backward="autodiff").bptt_chunk == 0
    assert parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(50, 50), bptt_chunk=10,
                                   execution="vmap") == parallel.ExecutionPlan(
        backend="cpu", devices=1, layout=None, execution="vmap", bptt_chunk=10, group_inits=False)
    # the recurrence gets the plan's part as one argument
    assert parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(50, 50), bptt_chunk=10, unroll=2,
                                   backward="custom").recurrence == rnn.Execution(unroll=2, bptt_chunk=10)
    with pytest.raises(ValueError, match="bptt_chunk=7 must divide the sequence length 324"):
        parallel.execution_plan(num_seeds=1, batch_size=1, seq_lens=(14, 324), bptt_chunk=7)


@pytest.mark.slow
def test_two_host_devices_split_one_seed_batch_and_match_one_device(tmp_path):
    code = textwrap.dedent("""
        import jax, numpy as np
        from nprnn_jax import parallel, runner, tasks, train
        task = tasks.AdditionTask(seq_len=20, test_size=64)
        config = train.TrainConfig(hidden_size=16, batch_size=8, num_steps=20, eval_every=10)
        grid = runner.Grid(learning_rates=(0.01, 0.05), num_seeds=1, clip_norm=1.0)
        n = jax.device_count()
        print("AUTO", parallel.layout_kind(1, 8, n), parallel.layout_kind(2, 8, n), parallel.layout_kind(3, 5, n))
        try:
            parallel.layout_kind(1, 8, n, "seeds")
        except ValueError as error:
            print("ERROR", error)
        out = {}
        for shard in ("none", "batch"):
            plan = parallel.execution_plan(num_seeds=1, batch_size=8, seq_lens=(20, 20), execution="map",
                                           shard=shard)
            run = runner.GridRun(task, runner.InitRun("np", config, grid), plan)
            state = run.initial_state()
            for _ in range(2):
                state, loss = run.segment(state, run.hp, run.data)
            w = state.params["W_hh"]
            out[shard] = (np.asarray(w), np.asarray(loss))
            print("DEVICES", shard, len(w.sharding.device_set))
        for i, name in enumerate(("PARAMS", "LOSS")):
            a, b = out["batch"][i], out["none"][i]
            print(name, float(np.abs(a - b).max() / np.abs(b).max()), float(np.abs(b).max()))
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": device_flags(2)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "AUTO batch seeds None" in out.stdout, out.stderr[-2000:]
    assert "ERROR shard='seeds' needs num_seeds to be a multiple of the 2 devices; got num_seeds=1" in out.stdout
    assert "DEVICES none 1" in out.stdout and "DEVICES batch 2" in out.stdout
    values = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in out.stdout.splitlines()
              if line.startswith(("PARAMS", "LOSS"))}
    for name in ("PARAMS", "LOSS"):
        assert values[name][0] < 1e-5 and values[name][1] > 0, (name, values)


# --- the paper's protocols: schedules, pools read in epochs, dropout -------------------------


def test_cut_schedule_gives_each_base_rate_its_rates_in_one_compile():
    config = train.TrainConfig(hidden_size=8, batch_size=4, num_steps=9, eval_every=9,
                               lr_cut_steps=(3, 7), lr_cut_factor=0.1)
    trainer = train.make_train(config, tasks.AdditionTask(seq_len=6, test_size=8))
    traces = []

    def rates(key, hp):
        traces.append(1)
        state = trainer.init(key, hp)

        def body(s, _):
            s, _ = trainer.step(s, hp)
            return s, s.opt_state.hyperparams["learning_rate"]  # the rate this step used
        return jax.lax.scan(body, state, None, length=9)[1]

    bases = jnp.array([0.1, 0.02, 0.3])
    got = jax.jit(jax.vmap(rates, (None, 0)))(jax.random.PRNGKey(0), train.hparams(bases, 1.0))
    # Exactly (float32) the base rate times the factor multiplied in at each cut: the values
    # the engine computed by hand before the schedule became an optax schedule.
    cut = np.float32(0.1)
    factors = np.array([1, 1, 1, cut, cut, cut, cut, cut * cut, cut * cut], np.float32)
    want = np.asarray(bases, np.float32)[:, None] * factors[None]
    np.testing.assert_array_equal(got, want)
    assert len(traces) == 1
    for b, row in zip(bases, want):
        np.testing.assert_array_equal([train.learning_rate_at(config, b, s) for s in range(9)], row)


def test_the_scheduled_rate_is_the_one_the_optimizer_applies():
    # After a cut by 1e-30, SGD no longer moves the parameters.
    config = train.TrainConfig(hidden_size=8, batch_size=4, num_steps=6, eval_every=6,
                               lr_cut_steps=(3,), lr_cut_factor=1e-30)
    trainer = train.make_train(config, tasks.AdditionTask(seq_len=6, test_size=8))
    hp = train.hparams(0.1, 10.0)
    state = trainer.init(jax.random.PRNGKey(0), hp)
    history = [state.params["W_hh"]]
    step = jax.jit(lambda s: trainer.step(s, hp)[0])
    for _ in range(6):
        state = step(state)
        history.append(state.params["W_hh"])
    moves = [float(jnp.abs(b - a).max()) for a, b in zip(history, history[1:])]
    assert min(moves[:3]) > 1e-6 and max(moves[3:]) < 1e-12, moves


def test_bad_cut_steps_are_refused():
    with pytest.raises(ValueError, match=r"lr_cut_steps=\(5, 3\): must be increasing steps in \[1, num_steps=10\)"):
        train.TrainConfig(num_steps=10, eval_every=5, lr_cut_steps=(5, 3))
    with pytest.raises(ValueError, match=r"lr_cut_steps=\(10,\): must be increasing"):
        train.TrainConfig(num_steps=10, eval_every=5, lr_cut_steps=(10,))


def _drawn_rows(trainer, data, steps, seed=0):
    order_key = trainer.init(jax.random.PRNGKey(seed), train.hparams(0.01)).order_key
    draw = jax.jit(jax.vmap(lambda s: tasks.epoch_indices(order_key, s, trainer.config.batch_size, data["order"])))
    return np.asarray(draw(jnp.arange(steps, dtype=jnp.int32))).reshape(-1)


@pytest.mark.parametrize("pool,batch", [(48, 16), (40, 16), (7, 3)])
def test_an_epoch_draws_exactly_the_pool(pool, batch):
    task = tasks.AdditionTask(seq_len=6, test_size=32, train_size=pool)
    trainer = train.make_train(train.TrainConfig(hidden_size=4, batch_size=batch), task)
    data = task.train_data()
    epochs = 3
    draws = _drawn_rows(trainer, data, -(-epochs * pool // batch))[:epochs * pool]
    for e in range(epochs):
        assert sorted(draws[e * pool:(e + 1) * pool]) == list(range(pool)), e
    assert not np.array_equal(draws[:pool], draws[pool:2 * pool])  # a new order every epoch
    # another run (seed) reads the same pool in another order
    other = _drawn_rows(trainer, data, -(-pool // batch), seed=1)[:pool]
    assert sorted(other) == list(range(pool)) and not np.array_equal(other, draws[:pool])


def test_the_training_batch_is_made_of_pool_rows():
    task = tasks.AdditionTask(seq_len=6, test_size=32, train_size=32)
    trainer = train.make_train(train.TrainConfig(hidden_size=4, batch_size=8), task)
    data = task.train_data()
    state = trainer.init(jax.random.PRNGKey(0), train.hparams(0.01))
    batch = trainer.batch(state, jax.random.PRNGKey(1), train.hparams(0.01), data)
    rows = tasks.epoch_indices(state.order_key, state.step, 8, data["order"])
    np.testing.assert_array_equal(batch["xs"], data["xs"][rows])
    np.testing.assert_array_equal(batch["ys"], data["ys"][rows])


def test_the_pool_is_reproducible_and_disjoint_from_the_test_set():
    a = tasks.AdditionTask(seq_len=8, test_size=500, train_size=300).train_data()
    b = tasks.AdditionTask(seq_len=8, test_size=500, train_size=300).train_data()
    c = tasks.AdditionTask(seq_len=8, test_size=500, train_size=300, data_seed=1).train_data()
    for name in ("xs", "ys", "order"):
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["xs"], c["xs"])
    assert sorted(np.asarray(a["order"]).tolist()) == list(range(300))
    test = tasks.AdditionTask(seq_len=8, test_size=500, train_size=300).test_set()
    pool_rows = {np.asarray(x).tobytes() for x in a["xs"]}
    assert not pool_rows & {np.asarray(x).tobytes() for x in test["xs"]}
    assert len(pool_rows) == 300
    assert tasks.AdditionTask(seq_len=8, train_size=0).train_data() == {}


def _dropout_trainer(dropout: bool, steps=6):
    config = train.TrainConfig(hidden_size=8, batch_size=4, num_steps=steps, eval_every=steps, dropout=dropout)
    return train.make_train(config, tasks.AdditionTask(seq_len=6, test_size=8))


def test_dropout_rate_zero_is_no_dropout_bit_for_bit_and_evaluation_never_drops():
    key = jax.random.PRNGKey(0)
    with_dropout, without = _dropout_trainer(True), _dropout_trainer(False)
    train_with = jax.jit(with_dropout.train)  # one program for both rates
    state, losses = train_with(key, train.hparams(0.05, 1.0, 0.0))
    plain, plain_losses = jax.jit(without.train)(key, train.hparams(0.05, 1.0, 0.0))
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(plain.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, plain_losses)
    dropped, _ = train_with(key, train.hparams(0.05, 1.0, 0.5))
    assert not np.allclose(dropped.params["W_hh"], plain.params["W_hh"])  # rate 0.5 trains differently
    # The rate is a grid axis of one program: rates (0, 0.5) vmapped equal the single runs.
    grid = jax.jit(jax.vmap(with_dropout.train, (None, 0)))(key, train.hparams(0.05, 1.0, jnp.array([0.0, 0.5])))
    np.testing.assert_allclose(grid[0].params["W_hh"][1], dropped.params["W_hh"], rtol=1e-5, atol=1e-6)
    # Evaluation: the network's own outputs, whatever the dropout rate.
    test = with_dropout.task.test_set()
    np.testing.assert_array_equal(with_dropout.predict(dropped.params, test),
                                  rnn.apply(dropped.params, test["xs"], with_dropout.rnn_config))


def test_dropout_keeps_the_expected_share_and_scales_by_the_inverse():
    config = train.TrainConfig(hidden_size=200, batch_size=64, dropout=True)
    trainer = train.make_train(config, tasks.AdditionTask(seq_len=4, test_size=8))
    hp = train.hparams(0.01, 1.0, 0.7)
    state = trainer.init(jax.random.PRNGKey(0), hp)
    keep = np.asarray(trainer.batch(state, jax.random.PRNGKey(3), hp)["keep"])
    assert sorted(float(v) for v in np.unique(keep)) == pytest.approx([0.0, 1 / 0.3], rel=1e-6)
    assert (keep > 0).mean() == pytest.approx(0.3, abs=0.01)


def test_success_is_a_share_within_the_tolerance_of_at_least_one_half():
    task = tasks.AdditionTask(seq_len=4, test_size=4)
    batch = {"ys": jnp.array([[1.0], [1.0], [1.0], [1.0]])}
    metrics = task.evaluate(jnp.array([[1.03], [0.97], [1.05], [2.0]]), batch)
    assert float(metrics["test_accuracy"]) == 0.5 and bool(metrics["success"])
    metrics = task.evaluate(jnp.array([[1.03], [0.9], [1.05], [2.0]]), batch)
    assert float(metrics["test_accuracy"]) == 0.25 and not bool(metrics["success"])
    assert float(metrics["test_mse"]) == pytest.approx((0.03 ** 2 + 0.1 ** 2 + 0.05 ** 2 + 1) / 4, rel=1e-5)


def test_a_seed_offset_runs_the_same_seeds_as_a_larger_grid():
    config = train.TrainConfig(hidden_size=8, batch_size=4, num_steps=10, eval_every=10)
    both = runner.GridRun(TASK, runner.InitRun("np", config, runner.Grid((0.01,), num_seeds=3)))
    later = runner.GridRun(TASK, runner.InitRun("np", config, runner.Grid((0.01,), num_seeds=2, seed_offset=1)))
    assert later.grid.seeds == [1, 2]
    a, b = both.initial_state(), later.initial_state()
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x[:, 1:], y)
    rows = later.rows(0, None, b, {"test_mse": np.zeros((1, 2))})
    assert [r["seed"] for r in rows] == [1, 2]


def test_num_steps_may_grow_on_resume_but_not_shrink_or_move_the_cuts(tmp_path):
    workdir_lib.check_or_write_config(tmp_path, _record(num_steps=1000, eval_every=100), schema=config_lib.SCHEMA)
    workdir_lib.check_or_write_config(tmp_path, _record(num_steps=2000, eval_every=100), schema=config_lib.SCHEMA)  # extended
    assert json.loads((tmp_path / "config.json").read_text())["config"]["num_steps"] == 2000
    with pytest.raises(workdir_lib.WorkdirConfigError, match="num_steps=2000; it cannot be shortened to 1000"):
        workdir_lib.check_or_write_config(tmp_path, _record(num_steps=1000, eval_every=100), schema=config_lib.SCHEMA)
    with pytest.raises(workdir_lib.WorkdirConfigError, match="different config .config.num_steps: 2000 in workdir "
                                                             "vs 3000 now; task.seq_len: 20 in workdir vs 60 now"):
        workdir_lib.check_or_write_config(tmp_path, _record(num_steps=3000, eval_every=100, seq_len=60), schema=config_lib.SCHEMA)
    other = tmp_path / "cuts"
    workdir_lib.check_or_write_config(other, _record(num_steps=1000, eval_every=100, lr_schedule="step"), schema=config_lib.SCHEMA)
    with pytest.raises(workdir_lib.WorkdirConfigError, match="np's learning-rate cuts are at equal intervals"):
        workdir_lib.check_or_write_config(other, _record(num_steps=2000, eval_every=100, lr_schedule="step"), schema=config_lib.SCHEMA)
    explicit = tmp_path / "explicit"
    workdir_lib.check_or_write_config(explicit, _record(num_steps=1000, eval_every=100, lr_schedule="step",
                                                        lr_cut_steps=(300, 600)), schema=config_lib.SCHEMA)
    workdir_lib.check_or_write_config(explicit, _record(num_steps=2000, eval_every=100, lr_schedule="step",
                                                        lr_cut_steps=(300, 600)), schema=config_lib.SCHEMA)
    # with the run descriptions recorded, the resolved cut steps decide, and the message names them
    moving = tmp_path / "fractions"
    workdir_lib.check_or_write_config(moving, _record(runs=True, num_steps=1000, eval_every=100, lr_schedule="step",
                                                      lr_cut_fractions=(0.5,)), schema=config_lib.SCHEMA)
    with pytest.raises(workdir_lib.WorkdirConfigError, match=r"np's learning-rate cuts would move from steps \[500\] "
                                                             r"to \[1000\]"):
        workdir_lib.check_or_write_config(moving, _record(runs=True, num_steps=2000, eval_every=100,
                                                          lr_schedule="step", lr_cut_fractions=(0.5,)),
                                          schema=config_lib.SCHEMA)
    kept = tmp_path / "kept"
    workdir_lib.check_or_write_config(kept, _record(runs=True, num_steps=1000, eval_every=100, lr_schedule="step",
                                                    lr_cut_steps=(300, 600)), schema=config_lib.SCHEMA)
    workdir_lib.check_or_write_config(kept, _record(runs=True, num_steps=2000, eval_every=100, lr_schedule="step",
                                                    lr_cut_steps=(300, 600)), schema=config_lib.SCHEMA)
    extended = json.loads((kept / "config.json").read_text())
    assert extended["runs"]["np"]["train"]["num_steps"] == 2000  # the record says what runs now


def test_one_writer_per_workdir(tmp_path):
    code = textwrap.dedent("""
        import sys, time, pathlib
        from nprnn_jax import workdir
        with workdir.locked(pathlib.Path(sys.argv[1])):
            print("LOCKED", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(workdir_lib.WorkdirConfigError, match=f"is in use by process {holder.pid}; one run"):
            with workdir_lib.locked(tmp_path):
                pass
    finally:
        holder.kill()  # like kill -9: the OS releases the lock, no stale lock remains
        holder.wait()
    with workdir_lib.locked(tmp_path):
        pass


def test_a_config_json_that_is_not_a_record_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(workdir_lib.WorkdirConfigError, match="is not a config record"):
        workdir_lib.check_or_write_config(tmp_path, _record(), schema=config_lib.SCHEMA)


def test_a_damaged_metrics_file_is_refused_but_a_cut_last_line_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = json.dumps({"init": "np", "step": 10, "seed": 0})
    path.write_text(good + "\n" + '{"init": "np", "st')  # a crash cut the last line
    workdir_lib.truncate_metrics(path, "np", 10)
    assert path.read_text() == good + "\n"
    path.write_text("[1, 2]\n" + good + "\n")
    with pytest.raises(workdir_lib.WorkdirConfigError, match="line 1 is not a metrics row"):
        workdir_lib.truncate_metrics(path, "np", 10)
    path.write_text("{oops\n" + good + "\n")
    with pytest.raises(workdir_lib.WorkdirConfigError, match="line 1 is not JSON"):
        workdir_lib.truncate_metrics(path, "np", 10)


def test_an_optax_factory_or_transformation_is_an_optimizer():
    keys = jax.random.PRNGKey(3)
    by_name = jax.jit(train.make_train(dataclasses_replace(CONFIG, optimizer="adam"), TASK).train)
    factory = jax.jit(train.make_train(dataclasses_replace(CONFIG, optimizer=lambda lr: __import__("optax").adam(lr)),
                                       TASK).train)
    a, _ = by_name(keys, train.hparams(0.01, 1.0))
    b, _ = factory(keys, train.hparams(0.01, 1.0))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    import optax
    given = jax.jit(train.make_train(dataclasses_replace(CONFIG, optimizer=optax.sgd(0.02)), TASK).train)
    sgd = jax.jit(train.make_train(dataclasses_replace(CONFIG, optimizer="sgd"), TASK).train)
    c, _ = given(keys, train.hparams(123.0, 1.0))  # its own rate: the grid's is not used
    d, _ = sgd(keys, train.hparams(0.02, 1.0))
    for name in c.params:
        np.testing.assert_allclose(c.params[name], d.params[name], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="optimizer=3: give one of sgd, momentum, rmsprop, adam, a factory"):
        dataclasses_replace(CONFIG, optimizer=3)


def dataclasses_replace(config, **changes):
    import dataclasses
    return dataclasses.replace(config, **changes)


def test_the_hochreiter_schmidhuber_fixed_pool_is_one_pool_read_in_epochs_reshuffled_by_seed():
    # hs_pool_T60: 100,000 sequences drawn once (from data_seed, not the run's seed), 200 updates of
    # batch 500 an epoch; every epoch is the whole pool, in a new order, and another seed reads the
    # same pool in another order.
    from experiments.configs import addition as addition_configs
    from nprnn_jax import experiment
    config = addition_configs.get_config("hs_pool_T60")
    assert (config.train_size, config.batch_size, config.marker_placement) == (100_000, 500, "first10")
    task = experiment.build_task(config)[0]
    data = task.train_data()
    assert data["xs"].shape == (100_000, 60, 2)
    np.testing.assert_array_equal(data["xs"], experiment.build_task(config)[0].train_data()["xs"])
    trainer = train.make_train(train.TrainConfig(hidden_size=4, batch_size=500, num_steps=400, eval_every=200), task)
    draws = _drawn_rows(trainer, data, 400)
    first, second = draws[:100_000], draws[100_000:]
    assert np.array_equal(np.sort(first), np.arange(100_000)) and np.array_equal(np.sort(second), np.arange(100_000))
    assert not np.array_equal(first, second)
    other = _drawn_rows(trainer, data, 200, seed=1)
    assert np.array_equal(np.sort(other), np.arange(100_000)) and not np.array_equal(other, first)


@pytest.mark.slow
def test_a_library_workdir_recorded_before_rnn_execution_resumes(tmp_path):
    """A library caller's config.json of the earlier layout (the recurrence's speed-only settings in
    each init's "train") still resumes: they never changed results."""
    small = train.TrainConfig(hidden_size=4, batch_size=4, num_steps=10, eval_every=10)
    runs = init_runs(("np",), (0.01,), 1, config=small)
    first = runner.run_experiment(TASK, runs, tmp_path)
    path = tmp_path / "config.json"
    record = json.loads(path.read_text())
    assert "unroll" not in record["config"]["np"]["train"]
    record["config"]["np"]["train"].update(unroll=1, backward="custom", remat_every=0, bptt_chunk=0)
    record = {k: v for k, v in record.items() if k != "fingerprint"}
    path.write_text(json.dumps(dict(record, fingerprint=workdir_lib.fingerprint(record))))
    assert runner.run_experiment(TASK, runs, tmp_path) == first
    # a setting that changes results still differs
    other = init_runs(("np",), (0.02,), 1, config=small)
    with pytest.raises(workdir_lib.WorkdirConfigError, match=r"np.grid.learning_rates: \[0.01\] in workdir vs \[0.02\]"):
        runner.run_experiment(TASK, other, tmp_path)


def test_a_summed_loss_steps_along_the_gradient_of_the_minibatchs_summed_loss():
    config = dataclasses_replace(CONFIG, optimizer="sgd", loss_reduction="sum")
    summed, mean = train.make_train(config, TASK), train.make_train(dataclasses_replace(config, loss_reduction="mean"), TASK)
    hp = train.hparams(0.01, 1e9)  # no clipping
    state = summed.init(jax.random.PRNGKey(2), hp)
    new, loss = jax.jit(lambda s: summed.step(s, hp))(state)
    # the reference, by hand: the gradient of the sum over the minibatch of each example's loss
    batch = summed.batch(state, jax.random.split(state.key)[1], hp)

    def total(params):
        out = rnn.apply(params, batch["xs"], summed.rnn_config)
        return jnp.sum(jnp.mean((out - batch["ys"]) ** 2, -1)), jnp.mean((out - batch["ys"]) ** 2)

    grads, mean_loss = jax.grad(total, has_aux=True)(state.params)
    for name in grads:
        np.testing.assert_allclose(new.params[name], state.params[name] - 0.01 * grads[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, mean_loss, rtol=1e-6)  # the loss logged is the mean either way
    # with SGD, the mean at a rate batch_size times larger takes the same step
    same, _ = jax.jit(lambda s: mean.step(s, train.hparams(0.01 * CONFIG.batch_size, 1e9)))(state)
    for name in grads:
        np.testing.assert_allclose(same.params[name], new.params[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="loss_reduction='max': unknown value; allowed: mean, sum"):
        dataclasses_replace(CONFIG, loss_reduction="max")
