"""One experiment from one config: ``train_and_evaluate(config, workdir)``.

The library call behind every binary (as in the Flax examples): it validates the
config (`nprnn_jax.config`), builds the task, resolves the execution plan,
trains every init's grid (`nprnn_jax.runner`) and writes the report
(`nprnn_jax.report`). Tests call it in process.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
from typing import Optional

import numpy as np

from nprnn_jax import config as config_lib
from nprnn_jax import checkpoints, parallel, report, rnn, runner, tasks
from nprnn_jax import workdir as workdir_lib
from nprnn_jax.train import TrainConfig


def build_task(config):
    """The task of ``config`` and the extra files to write into the workdir (the task's
    module builds it: `nprnn_jax.tasks`)."""
    return tasks.get(config.task).build(config)


def available_memory() -> int:
    """Bytes the grid may use: the first device's memory limit on an accelerator, else
    the machine's physical memory."""
    import jax
    try:
        stats = jax.local_devices()[0].memory_stats() or {}  # this process's own device
    except Exception:  # noqa: BLE001  a backend without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def runs_at_once(config, grouped: bool = False) -> int:
    """The runs trained at once: the largest init's grid, or with ``grouped`` (the inits as one
    program, `parallel.resolve_group_inits`) every init's."""
    per_init = [len(config_lib.init_settings(config, i)["learning_rates"]) * len(config.dropout_rates)
                * config.num_seeds for i in config.inits]
    return sum(per_init) if grouped else max(per_init)


def memory_estimate(config, task, devices: int = 1, grouped: bool = False) -> dict:
    """Bytes a run of ``config`` needs at its peak, by the setting that drives each part
    (float32 everywhere): the test set and the training pool (whole, on every device), one
    training step's activations and their gradients for the runs of one device, and one
    evaluation batch, and every run's parameters, gradients and optimizer state. A rough upper
    bound, good to within a small factor. ``grouped``: the inits are trained together
    (`parallel.resolve_group_inits`), so every init's runs are held at once."""
    train_len, test_len = task.seq_lens()
    inputs, hidden = task.input_size, config.hidden_size
    width = 4 * hidden if "lstm" in config.inits else hidden
    runs = runs_at_once(config, grouped)
    runs_per_device = max(1, runs // devices)
    test_examples = config.test_size or getattr(task, "num_test", config.test_size)
    pool = getattr(task, "num_train", 0) or getattr(task, "train_size", 0)
    outputs = getattr(task, "output_size", 1)
    gates = 4 if "lstm" in config.inits else 1
    weights = gates * (hidden * hidden + inputs * hidden + hidden) + hidden * outputs + outputs
    slots = max({"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2}.get(config_lib.init_settings(config, i)["optimizer"], 2)
                for i in config.inits)
    return {
        # every run's parameters, gradients and optimizer slots, held at once
        ("hidden_size" if weights > 10**6 else "num_seeds"): 4 * weights * (2 + slots) * runs_per_device,
        "test_size": 4 * test_examples * test_len * (inputs + 1),
        "train_size": 4 * pool * train_len * (inputs + 1),
        # states, pre-activations, their cotangents and the projected inputs of a step (x4), and
        # the same for the runs one device holds at once
        "batch_size": 4 * 4 * config.batch_size * train_len * width * runs_per_device,
        "eval_batch_size": 4 * 2 * min(config.eval_batch_size, test_examples) * test_len * width * runs_per_device,
    }


def check_memory(config, task, devices: int = 1, available: Optional[int] = None, grouped: bool = False):
    """`ConfigError` naming the setting to lower when the estimate exceeds 80% of the memory."""
    parts = memory_estimate(config, task, devices, grouped)
    available = available or available_memory()
    if sum(parts.values()) > 0.8 * available:
        biggest = max(parts, key=parts.get)
        raise config_lib.ConfigError(
            f"this grid needs about {sum(parts.values()) / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB "
            f"here; most of it ({parts[biggest] / 2**30:.1f} GiB) comes from {biggest}={config[biggest]}: lower it"
            + ("" if biggest in ("hidden_size", "num_seeds") else
               f" (with sequences of {max(task.seq_lens())} steps; or shorten them)"))


def check_open_files(config, grouped: bool = False, limit: Optional[int] = None):
    """`ConfigError` when TensorBoard's event files (one open file per run of the grid being
    trained) would exceed this process's open-file limit, before anything is written."""
    if not config.tensorboard:
        return
    import resource
    limit = limit or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    runs = runs_at_once(config, grouped)
    if runs > limit - 256:  # a margin for the data, checkpoints and JAX's own files
        raise config_lib.ConfigError(
            f"tensorboard=True keeps one event file open per run, and this grid trains {runs} runs at once "
            f"(num_seeds={config.num_seeds}): more than this process's open-file limit ({limit}) allows; set "
            "--config.tensorboard=false, or split the seeds into jobs (--config.seed_offset)")


def plan_for(config, task) -> dict:
    """The execution plan of ``config`` on the visible devices (`parallel.execution_plan`)."""
    plan = parallel.execution_plan(num_seeds=config.num_seeds, batch_size=config.batch_size,
                                   seq_lens=task.seq_lens(), execution=config.execution, shard=config.shard,
                                   bptt_chunk=config.bptt_chunk, backward=config.backward,
                                   group_inits=config.group_inits, unroll=config.unroll,
                                   remat_every=config.remat_every)
    check_memory(config, task, plan.devices if plan.layout == "seeds" else 1, grouped=plan.group_inits)
    check_open_files(config, grouped=plan.group_inits)
    return plan


def init_runs(config) -> list:
    """One `runner.InitRun` per init of ``config``, its per-init settings resolved."""
    runs = []
    for init in config.inits:
        own = config_lib.init_settings(config, init)
        train_config = TrainConfig(
            init=init, hidden_size=config.hidden_size, input_init_n=config.input_init_n,
            batch_size=config.batch_size, num_steps=config.num_steps, eval_every=config.eval_every,
            optimizer=own["optimizer"], momentum=own["momentum"], lr_cut_factor=own["lr_cut_factor"],
            lr_cut_steps=config_lib.cut_steps(own, config.num_steps),
            eval_batch_size=config.eval_batch_size, clip_by=config.clip_by,
            loss_reduction=config.loss_reduction)
        grid = runner.Grid(learning_rates=own["learning_rates"], num_seeds=config.num_seeds,
                           clip_norm=own["clip_norm"], dropout_rates=config.dropout_rates,
                           seed_offset=config.seed_offset)
        runs.append(runner.InitRun(init, train_config, grid, log_every=config.log_every))
    return runs


def title(config) -> str:
    """The experiment in words (the report's title), as its task declares it."""
    return tasks.get(config.task).title(config)


def train_and_evaluate(config, workdir, *, progress_stream=None, on_event=None) -> list:
    """Runs the experiment of ``config`` in ``workdir`` (resuming it) and writes its report.

    Returns the summary records (summary.json). Bad settings raise
    `config.ConfigError`, bad data `datasets.DataError`, a workdir of another
    config `workdir.WorkdirConfigError`, all before the workdir is touched.
    """
    return run_validated(config_lib.validate(config), workdir, progress_stream=progress_stream,
                         on_event=on_event)


# Folders a run writes into its workdir: a file of one of these names would fail the run after
# its first records were written.
_WORKDIR_FOLDERS = ("checkpoints", "checkpoint_hashes", "tensorboard")


def _check_workdir_entries(workdir: pathlib.Path, config):
    """`workdir.WorkdirConfigError` before anything is written when a folder the run needs is a file."""
    if workdir.exists() and not workdir.is_dir():
        raise workdir_lib.WorkdirConfigError(f"--workdir={workdir}: is a file, not a folder")
    for name in _WORKDIR_FOLDERS:
        if name == "tensorboard" and not config.tensorboard:
            continue
        if (workdir / name).exists() and not (workdir / name).is_dir():
            raise workdir_lib.WorkdirConfigError(
                f"{workdir / name}: a file where the run writes its {name} folder; move it away"
                + (" (or set --config.tensorboard=false)" if name == "tensorboard" else ""))


def run_validated(config, workdir, *, progress_stream=None, on_event=None) -> list:
    """`train_and_evaluate` of a config that `config.validate` returned (the binaries validate
    once, at the entry, and call this)."""
    _check_workdir_entries(pathlib.Path(workdir), config)
    task, extra_files = build_task(config)
    num_train = getattr(task, "num_train", None)  # a data set's training examples (validation held out)
    if num_train is not None and config.batch_size > num_train:
        raise config_lib.ConfigError(f"batch_size={config.batch_size}: more than the {num_train} training examples "
                                     f"of {task.name}; at most {num_train}")
    plan = plan_for(config, task)
    runs = init_runs(config)
    record = {"version": workdir_lib.CONFIG_VERSION, "task": task.describe(),
              "config": config_lib.to_json(config), "plan": plan.to_json(),
              # what each init runs, resolved once (its per-init overrides applied)
              "runs": {run.init: run.to_json() for run in runs}}
    summary = runner.run_experiment(task, runs, workdir, record=record, plan=plan, on_event=on_event,
                                    progress_stream=progress_stream, extra_files=extra_files,
                                    tensorboard=config.tensorboard, schema=config_lib.SCHEMA)
    if runner.is_main_process():
        report.write_report(workdir, task.metric, task.higher_is_better, title(config),
                            reference=task.constant_predictor_metric(),
                            metric_label=tasks.get(config.task).metric_text, figures=config.figures)
    return summary


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def read_config(workdir):
    """The validated config of a workdir's config.json (`workdir.WorkdirConfigError` if none)."""
    record = workdir_lib.read_config(workdir, config_lib.SCHEMA)
    settings = config_lib.with_defaults(record["config"])
    return config_lib.validate(_tuples(settings)), record


def load_grid(workdir, init: str):
    """``(initial state, final state, checkpoint step, config, InitRun)`` of ``init``'s grid in a
    finished or interrupted workdir, rebuilt from its config.json; states are
    ``[combination, seed, ...]`` with combinations ordered as ``InitRun.grid.combos``."""
    config, _ = read_config(workdir)
    if init not in config.inits:
        raise workdir_lib.WorkdirConfigError(f"{workdir} has no init {init!r}; it has {list(config.inits)}")
    task, _ = build_task(config)
    run = next(r for r in init_runs(config) if r.init == init)
    initial, final, step = runner.load_grid_states(workdir, task, run)
    return initial, final, step, config, run


def load_params(workdir, init: str, learning_rate: float, seed: int, dropout: Optional[float] = None,
                initial: bool = False, *, step: Optional[int] = None, allow_older: bool = False) -> dict:
    """The parameters of one trained run of a workdir, as plain NumPy arrays.

    The way to take a trained network into one's own code. Reads the run's config.json and
    the parameters of its newest intact checkpoint only: no data, no compilation (well under
    2 s), whatever devices or processes wrote it; on a merged workdir
    (`experiments.merge`) it reads the source workdir that ran ``seed``. ``dropout`` picks
    among the grid's dropout rates (needed only when it has several); ``initial=True``
    returns the run's parameters before training (recomputed from its seed). When the newest
    checkpoint is damaged, older weights are never returned silently: a `ValueError` names it,
    unless ``allow_older=True`` (then a warning names the step returned) or ``step=`` asks for a
    checkpoint by its step. Use them with `rnn.apply`::

        params = load_params("workdirs/addition", "np", learning_rate=0.01, seed=0)
        config, _ = read_config("workdirs/addition")
        rnn_config = rnn.RNNConfig(input_size=2, hidden_size=config.hidden_size, init="np")
        batch = tasks.AdditionTask(seq_len=config.seq_len).sample(jax.random.PRNGKey(1), 256)
        predictions = rnn.apply(params, batch["xs"], rnn_config)   # [256, 1]; targets batch["ys"]
    """
    workdir = pathlib.Path(workdir)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: give the run's seed as an integer")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, np.integer))):
        raise ValueError(f"step={step!r}: give a checkpoint's step as an integer")
    if not (workdir / "config.json").is_file() and (workdir / "sources.json").is_file():
        return _load_from_sources(workdir, init, learning_rate, seed, dropout, initial, step, allow_older)
    config, _ = read_config(workdir)
    if init not in config.inits:
        raise workdir_lib.WorkdirConfigError(f"{workdir} has no init {init!r}; it has {list(config.inits)}")
    own = config_lib.init_settings(config, init)
    grid = runner.Grid(learning_rates=own["learning_rates"], num_seeds=config.num_seeds, clip_norm=own["clip_norm"],
                       dropout_rates=config.dropout_rates, seed_offset=config.seed_offset)
    combos = grid.combos
    matches = [i for i, (lr, d) in enumerate(combos)
               if math.isclose(lr, learning_rate, rel_tol=1e-6) and (dropout is None or math.isclose(d, dropout))]
    if not matches or (dropout is None and len(matches) > 1):
        raise ValueError(f"{workdir}: {init} has no single run at learning_rate={learning_rate:g}"
                         + ("" if dropout is None else f", dropout={dropout:g}")
                         + f"; its (learning rate, dropout) settings: {combos}")
    if seed not in grid.seeds:
        raise ValueError(f"{workdir}: seed={seed!r} is not one of the run's seeds "
                         f"{grid.seeds[0]}..{grid.seeds[-1]}")
    params, _ = checkpoints.restore_params(workdir, init, step=None if step is None else int(step),
                                           allow_older=allow_older)
    one = {name: value[matches[0], grid.seeds.index(seed)] for name, value in params.items()}
    if not initial:
        return one
    import jax

    input_kernel = one["W_x"] if "W_x" in one else one["W_hx"]
    rnn_config = rnn.RNNConfig(input_size=input_kernel.shape[0], hidden_size=config.hidden_size,
                               output_size=one["W_hy"].shape[-1], init=init, input_init_n=config.input_init_n)
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        first = _initial_params(rnn_config)(jax.random.PRNGKey(seed))
    return {name: np.asarray(value) for name, value in first.items()}


@functools.lru_cache(maxsize=16)
def _initial_params(rnn_config: rnn.RNNConfig):
    """`train.initial_params` for ``rnn_config`` as one compiled program (op by op it compiled
    about 30 small programs: seconds), compiled without XLA's backend optimizations: it runs
    once, so compiling fast is what counts (the draws are the same; float32 rounding may differ
    from the engine's compiled grid by an ulp)."""
    import jax
    from nprnn_jax import train

    return jax.jit(functools.partial(train.initial_params, rnn_config=rnn_config),
                   compiler_options={"xla_backend_optimization_level": 0,
                                     "xla_llvm_disable_expensive_passes": True})


def _load_from_sources(workdir: pathlib.Path, init, learning_rate, seed, dropout, initial, step=None,
                       allow_older=False) -> dict:
    sources = json.loads((workdir / "sources.json").read_text())
    for source in sources:
        path = pathlib.Path(source)
        path = path if path.is_absolute() or path.is_dir() else workdir / path
        config, _ = read_config(path)
        if config.seed_offset <= seed < config.seed_offset + config.num_seeds:
            return load_params(path, init, learning_rate, seed, dropout, initial, step=step, allow_older=allow_older)
    raise ValueError(f"{workdir}: seed={seed!r} is in none of the merged workdirs {sources}")
