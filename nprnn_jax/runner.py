"""Host-side runner: executes each init's (hyperparameters x seed) grid in segments.

Between segments it evaluates every run on the task's fixed test set, appends
metrics (`nprnn_jax.workdir`), shows progress with an ETA and checkpoints the
whole grid state (parameters, optimizer state, keys, step, divergence flags) with
orbax in ``checkpoints/<init>/``. Started again on the same workdir it resumes
from the last finished checkpoint and ends with the results of an uninterrupted
run.

A grid's first axis is the hyperparameter combinations (learning rate x dropout
rate), its second the seeds. How it is laid over the devices is the execution
plan (`parallel.execution_plan`): the seed axis sharded over a "seeds" mesh, or
each minibatch split over a "batch" mesh, or one device. The grid's results do
not depend on the plan (up to float32 rounding). What runs (each init's settings and grid) is
`nprnn_jax.grid`; this module is how it runs.
"""

from __future__ import annotations

import pathlib
import threading
import warnings
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from nprnn_jax import checkpoints, parallel, train, writers, workdir as workdir_lib
from nprnn_jax.progress import Progress
from nprnn_jax.tasks import Task
from nprnn_jax.grid import Grid, InitRun, group_key, init_groups  # noqa: F401  (what runs; re-exported)
from nprnn_jax.train import TrainState, hparams, make_train
from nprnn_jax.workdir import WorkdirConfigError  # noqa: F401  (re-exported for callers)

# Counts traces of the jitted grid functions; tests read it to check "compiles once".
TRACE_COUNTS: dict = {}


def host(tree):
    """``tree``'s arrays as NumPy arrays on this host, gathered from every process when an
    array spans devices of other processes (multi-host runs)."""
    def gather(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
    return jax.tree.map(gather, tree)


def is_main_process() -> bool:
    """Whether this process writes the workdir's files (process 0 of a multi-host run)."""
    return jax.process_index() == 0


class GridRun:
    """The compiled functions of one init's grid."""

    def __init__(self, task: Task, run: InitRun, plan: Optional[parallel.ExecutionPlan] = None):
        """``plan``: from `parallel.execution_plan` (its ``execution`` and ``layout``);
        None: one device, the backend's default execution."""
        plan = plan or parallel.ExecutionPlan()
        self.execution = parallel.resolve(plan.execution)
        self.layout = plan.layout
        self.sharding = parallel.mesh_sharding(self.layout)
        config, grid = run.train_config, run.grid
        self.trainer = make_train(config, task, "batch" if self.layout == "batch" else None, plan.recurrence)
        self.config, self.grid, self.init = config, grid, run.init
        combos = grid.combos
        self.keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(grid.seeds))
        self.hp = hparams(jnp.asarray([lr for lr, _ in combos], jnp.float32),
                          jnp.full((len(combos),), grid.clip_norm, jnp.float32),
                          jnp.asarray([d for _, d in combos], jnp.float32))
        trainer, eval_every, execution = self.trainer, config.eval_every, self.execution

        def grid_map(fn, seed_axes, hp_axes):
            return jax.vmap(jax.vmap(fn, seed_axes), hp_axes)

        def init(keys, hp):
            TRACE_COUNTS["init"] = TRACE_COUNTS.get("init", 0) + 1
            return grid_map(trainer.init, (0, None), (None, 0))(keys, hp)

        mesh = None if self.sharding is None else self.sharding.mesh

        log_every = run.log_every or eval_every

        def local_segment(state, hp, data):
            """The runs held by one device: [combo, seed] axes, vmapped or mapped; the mean
            training loss of every block of log_every steps."""
            one_run = lambda s, h: trainer.run(s, h, eval_every, data, log_every)
            return parallel.over_runs(one_run, 2, execution)(state, hp)

        def segment(state, hp, data):
            TRACE_COUNTS["segment"] = TRACE_COUNTS.get("segment", 0) + 1
            hp = parallel.broadcast_to_runs(hp, state.step.shape)
            spec = parallel.SEED_SPEC if self.layout == "seeds" else parallel.REPLICATED
            return parallel.shard_runs(local_segment, mesh, spec, replicated_argnums=(2,))(state, hp, data)

        def evaluate(params, test_set):
            TRACE_COUNTS["evaluate"] = TRACE_COUNTS.get("evaluate", 0) + 1
            return grid_map(trainer.evaluate, (0, None), (0, None))(params, test_set)

        self.data = task.train_data()
        self.initialize = jax.jit(init)
        self.segment = jax.jit(segment, donate_argnums=0)
        self.evaluate = jax.jit(evaluate)

    def initial_state(self) -> TrainState:
        """The grid's initial state, computed on one device (so that it does not depend on the
        device count) and then placed: each device's shard of the mesh, which may span every
        process's devices in a multi-host run (each process computes the same state)."""
        state = self.initialize(self.keys, self.hp)
        if self.sharding is None:
            return state
        place = lambda x: jax.make_array_from_callback(x.shape, self.sharding, lambda index: np.asarray(x[index]))
        return jax.tree.map(place, state)

    def rows(self, step, train_loss, state, test_metrics) -> list:
        return workdir_lib.rows(self.init, self.grid.combos, self.grid.seeds, step, host(train_loss),
                                host(state.diverged), host(test_metrics))


def default_record(task: Task, runs: Sequence[InitRun], plan: Optional[parallel.ExecutionPlan] = None) -> dict:
    """A config.json record for library callers that have no `nprnn_jax.config` config."""
    config = {"inits": [r.init for r in runs]}
    for r in runs:
        config[r.init] = {k: v for k, v in r.to_json().items() if k in ("train", "grid")}
    return {"version": workdir_lib.CONFIG_VERSION, "task": task.describe(), "config": config,
            "plan": plan.to_json() if plan is not None else {}}


# A graceful stop (SIGTERM, SIGUSR1, a driver's deadline): the binaries' signal handlers call
# `request_stop`; the host loop then ends at the end of its current segment, once that segment's
# checkpoint is written, and raises `Stopped`. The same command resumes from that checkpoint.
_STOP = threading.Event()


class Stopped(Exception):
    """Training stopped on request at ``step`` of ``num_steps`` of init(s) ``init``."""

    def __init__(self, init: str, step: int, num_steps: int):
        super().__init__(f"stopped on request: {init} at step {step:,} of {num_steps:,}")
        self.init, self.step, self.num_steps = init, step, num_steps


def request_stop():
    """Asks the running experiment to stop after its current segment's checkpoint (safe to call
    from a signal handler)."""
    _STOP.set()


def clear_stop():
    _STOP.clear()


def run_experiment(task: Task, runs: Sequence[InitRun], workdir, *, record: Optional[dict] = None,
                   plan: Optional[parallel.ExecutionPlan] = None, on_event: Optional[Callable[[str, str, int], None]] = None,
                   progress_stream=None, extra_files: Optional[dict] = None, tensorboard: bool = False,
                   writer: Optional[writers.MetricWriter] = None,
                   schema: workdir_lib.Schema = workdir_lib.PLAIN) -> list:
    """Trains every init's grid, resuming from checkpoints in ``workdir``.

    Args:
      task: the task.
      runs: one `InitRun` per init, run in this order.
      workdir: output folder (created; an existing one must hold the same config).
      record: what config.json records and the resume check compares
        (`experiment.train_and_evaluate` passes the validated config); default:
        `default_record`.
      plan: the execution plan (`parallel.execution_plan`); default: one device.
      on_event: optional ``fn(event, init, step)`` called at "segment_done" and
        "checkpoint_started" (fault-injection tests use it).
      progress_stream: where the progress bar goes (stderr by default).
      extra_files: ``{file name: text}`` written into the workdir once its config
        has been checked (e.g. the permutation of permuted MNIST).
      tensorboard: also write TensorBoard event files (``tensorboard/<init>/<run>/``).
      writer: a further `writers.MetricWriter` (e.g. to a tracking service) that gets every
        row the workdir's files get (process 0 only).
      schema: how ``record``'s settings are read and compared on a resume (`workdir.Schema`;
        `experiment.train_and_evaluate` passes the configuration's).

    The training loss of every block of ``InitRun.log_every`` steps goes to
    ``train_loss.jsonl`` (and TensorBoard); metrics.jsonl holds each segment's mean.

    Returns:
      The summary records (also written to ``summary.json``).
    """
    workdir = pathlib.Path(workdir)
    options = dict(record=record, plan=plan, on_event=on_event, progress_stream=progress_stream,
                   extra_files=extra_files, tensorboard=tensorboard, extra_writer=writer, schema=schema)
    if not is_main_process():
        return _run_experiment(task, runs, workdir, **options)
    with workdir_lib.locked(workdir):  # one writer per workdir
        return _run_experiment(task, runs, workdir, **options)


def _run_experiment(task, runs, workdir, *, record, plan, on_event, progress_stream, extra_files, tensorboard,
                    extra_writer, schema):
    test_set = task.test_set()
    validation_set = task.validation_set()
    main = is_main_process()  # in a multi-host run only process 0 writes files and progress
    workdir_lib.check_or_write_config(workdir, record or default_record(task, runs, plan), write=main,
                                      schema=schema)
    for name, text in (extra_files or {}).items() if main else ():
        workdir_lib.atomic_write(workdir / name, text)
    progress = Progress(len(runs), progress_stream, enabled=main)
    writer = writers.create(workdir, tensorboard=tensorboard, main=main)  # metrics.jsonl, train_loss, TensorBoard
    if extra_writer is not None and main:
        writer = writers.MultiWriter([writer, extra_writer])
    groups = init_groups(runs) if plan is not None and plan.group_inits else [[run] for run in runs]
    summary, validation = {}, {}
    try:
        _train_groups(task, groups, workdir, plan, test_set, validation_set, progress, on_event, writer, main,
                      summary, validation)
    finally:
        writer.close()
    summary = [record for run in runs for record in summary[run.init]]
    if main:
        if validation:  # before summary.json: a finished workdir has both
            workdir_lib.write_summary(workdir, [r for run in runs for r in validation[run.init]], "validation.json")
        workdir_lib.write_summary(workdir, summary)
    return summary


def _train_groups(task, groups, workdir, plan, test_set, validation_set, progress, on_event, writer, main,
                  summary, validation):
    for group in groups:
        if _STOP.is_set():
            raise Stopped(group[0].init, 0, group[0].train_config.num_steps)
        members = []
        for run in group:
            grid_run = GridRun(task, run, plan)
            template = grid_run.initial_state()
            parallel.barrier(f"{run.init}:ready")  # before the first collective (orbax's sync)
            store = checkpoints.Checkpoints(workdir, run.init, main, max_to_keep=2)
            state, start = store.restore_newest_intact(template, legacy=_legacy(template))
            if store.latest_step() is None:
                start = 0
            members.append(_Member(run, grid_run, store, state, start, template))
        if len({m.start for m in members}) > 1:
            members = _align_starts(members, workdir, main)
        # Inits restored at different steps (a workdir of runs trained one after another) are
        # trained in sub-groups of equal start, so every member's records equal its own grid's.
        for start in dict.fromkeys(m.start for m in members):
            part = [m for m in members if m.start == start]
            for run, grid_run, state, test_metrics, validation_metrics in _train_group(
                    task, part, start, workdir, test_set, validation_set, progress, on_event, writer, main):
                summary[run.init] = workdir_lib.summary_records(grid_run.rows(None, None, state, test_metrics),
                                                                host(state.diverged_step))
                if validation_metrics is not None:
                    validation[run.init] = workdir_lib.summary_records(
                        grid_run.rows(None, None, state, validation_metrics), host(state.diverged_step))
        for member in members:
            member.store.close()


def _align_starts(members: list, workdir: pathlib.Path, main: bool) -> list:
    """A group whose inits were restored at different steps (a kill between two inits'
    checkpoints of one segment) restarts every init at the earliest of those steps when each
    still has an intact checkpoint there (a manager keeps two), so the group trains on as one
    and its rows land in the uninterrupted run's order; the later checkpoints are dropped (the
    same segment recomputes them). Otherwise the members are left as they are (trained in
    sub-groups of equal start)."""
    import sys
    target = min(m.start for m in members)
    aligned = []
    for m in members:
        if m.start == target:
            aligned.append(m)
            continue
        if target == 0:
            state = m.template
        elif target in m.store.steps() and m.store.damage(target) is None:
            try:
                state = m.store.restore(target, m.template, _legacy(m.template))
            except Exception:  # noqa: BLE001  not restorable: keep the members as they are
                return members
        else:
            return members
        aligned.append(m._replace(state=state, start=target))
    for m, new in zip(members, aligned):
        if new.start != m.start:
            m.store.drop_after(target)
            if main:
                print(f"{m.run.init}: resumes at step {target} with the other inits of its group (its checkpoint "
                      f"at step {m.start} was written after theirs; the group recomputes it)", file=sys.stderr)
    return aligned


class _Member(NamedTuple):
    """One init of a group, restored: its run, compiled grid, checkpoints, state and step, and its
    initial state (the restore's template)."""

    run: InitRun
    grid_run: "GridRun"
    store: "checkpoints.Checkpoints"
    state: TrainState
    start: int
    template: TrainState


class _Stack:
    """Several inits' [combo, seed] grids as one [combo, seed] grid: their combos one after
    another, in the members' order."""

    def __init__(self, grid_runs):
        self.sizes = [len(g.grid.combos) for g in grid_runs]
        self.offsets = np.cumsum([0] + self.sizes)

    def join(self, trees, sharding):
        if len(trees) == 1:
            return trees[0]
        joined = jax.tree.map(lambda *xs: np.concatenate(xs, 0), *[host(t) for t in trees])
        if sharding is None:
            return jax.tree.map(jnp.asarray, joined)
        return jax.tree.map(lambda x: jax.make_array_from_callback(
            x.shape, sharding, lambda index: np.asarray(x[index])), joined)

    def split(self, tree) -> list:
        if len(self.sizes) == 1:
            return [tree]
        return [jax.tree.map(lambda x: x[a:b], tree) for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def _train_group(task, members, start, workdir, test_set, validation_set, progress, on_event, writer, main):
    """Trains the grids of ``members`` (inits of one `init_groups` group, all at step
    ``start``) as one program: their states joined along the combination axis, stepped by the
    first member's compiled segment, evaluated together, then split again to append each
    init's metrics rows and save its own checkpoint (``checkpoints/<init>/``, as when it is
    trained alone). Yields ``(run, grid_run, final state, its test metrics, its validation
    metrics or None)`` per member."""
    runs = [m.run for m in members]
    grid_runs = [m.grid_run for m in members]
    stores = [m.store for m in members]
    lead = grid_runs[0]
    config = runs[0].train_config
    stack = _Stack(grid_runs)
    state = stack.join([m.state for m in members], lead.sharding)
    hp = stack.join([g.hp for g in grid_runs], None)
    for run in runs:
        writer.resume(run.init, start)
    progress.start("+".join(run.init for run in runs), config.num_steps, start, count=len(runs))

    def record(step, losses, state, test_metrics, blocks=None):
        """Each member's rows of this evaluation, written; its loss rows too (``blocks``)."""
        rows_all = []
        none = [None] * len(runs)
        parts = zip(runs, grid_runs, stack.split(state), stack.split(test_metrics),
                    none if losses is None else stack.split(losses), none if blocks is None else stack.split(blocks))
        for run, grid_run, part_state, part_metrics, part_losses, part_blocks in parts:
            rows = grid_run.rows(step, part_losses, part_state, part_metrics)
            rows_all.extend(rows)
            loss_rows = None if part_blocks is None else [row for b in range(part_blocks.shape[-1]) for row in grid_run.rows(
                step - config.eval_every + (b + 1) * log_every, part_blocks[..., b], part_state, {})]
            writer.write(run.init, rows, loss_rows)
        return rows_all

    test_metrics = None  # of the current state, once evaluated
    if start == 0:
        test_metrics = lead.evaluate(state.params, test_set)
        record(0, None, state, test_metrics)
    log_every = runs[0].log_every or config.eval_every
    for index in range(start // config.eval_every, config.num_steps // config.eval_every):
        state, block_losses = lead.segment(state, hp, lead.data)
        step = (index + 1) * config.eval_every
        block_losses = host(block_losses)  # [combo, seed, blocks]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a diverged run's all-NaN blocks: NaN, said below
            segment_loss = np.nanmean(np.where(np.isfinite(block_losses), block_losses, np.nan), -1)
        test_metrics = lead.evaluate(state.params, test_set)
        rows = record(step, segment_loss, state, test_metrics, block_losses)
        parts = stack.split(state)
        if on_event:
            for run in runs:
                on_event("segment_done", run.init, step)
        for run, store, part in zip(runs, stores, parts):
            store.save(step, part)
            if on_event:
                on_event("checkpoint_started", run.init, step)
        progress.update(config.eval_every, _progress_message(rows, task))
        if _STOP.is_set() and step < config.num_steps:
            progress.close()
            for store in stores:
                store.wait()
                store.close()
            raise Stopped("+".join(run.init for run in runs), step, config.num_steps)
    progress.close()
    for store in stores:
        store.wait()
    for run in runs:
        writer.finish(run.init)
    if test_metrics is None:  # resumed from the final checkpoint: nothing was evaluated yet
        test_metrics = lead.evaluate(state.params, test_set)
    validation_metrics = None if validation_set is None else lead.evaluate(state.params, validation_set)
    parts = zip(runs, grid_runs, stack.split(state), stack.split(test_metrics),
                stack.split(validation_metrics) if validation_metrics is not None else [None] * len(runs))
    for run, grid_run, part, part_metrics, part_validation in parts:
        yield run, grid_run, part, part_metrics, part_validation


def _progress_message(rows, task):
    """The grid's median headline metric first, then its median training loss (diverged runs
    apart): one unstable learning rate does not dominate the line as it would a mean."""
    live = [r for r in rows if not r["diverged"]]
    diverged = len(rows) - len(live)
    metric = [r[task.metric] for r in live if r[task.metric] is not None]
    losses = [r["train_loss"] for r in live if r["train_loss"] is not None]
    parts = []
    if metric:  # test_accuracy -> "accuracy": the bar must fit 80 columns
        parts.append(f"{'median ' if len(live) > 1 else ''}{task.metric.removeprefix('test_')} {np.median(metric):.3g}")
    if losses:
        parts.append(f"loss {np.median(losses):.3g}")
    if diverged:
        parts.append(f"{diverged} diverged")
    return ", ".join(parts)


def _legacy(template: TrainState):
    """Checkpoints of the layout before the optax schedule (see `train.legacy_layout`) resume."""
    return train.legacy_layout(template), lambda restored: train.from_legacy_layout(restored, template)


def load_grid_states(workdir, task: Task, run: InitRun):
    """(initial state, final state, checkpoint step) of ``run``'s grid in ``workdir``
    (states are [combo, seed, ...], on one device)."""
    workdir = pathlib.Path(workdir)
    grid_run = GridRun(task, run)
    initial = grid_run.initial_state()
    store = checkpoints.Checkpoints(workdir, run.init, main=False, max_to_keep=None, create=False)
    step = store.latest_step()
    if step is None:
        store.close()
        raise WorkdirConfigError(f"{workdir}: no checkpoint of {run.init!r}")
    final = store.restore(step, initial, _legacy(initial))
    store.close()
    return initial, final, step
