r"""The paper's batch-1 protocol: cost of one training update, one run and seven variants together.

    python -m benchmarks.batch1 --json=benchmarks/results/batch1_cpu.json

Hidden 100, batch 1, SGD, the addition task with its 100,000-sequence pool (the
`paper_T*` configs), T = 150 and 500 (``--seq_lens``). Each row is the engine's own
`Trainer.run` (the scan of training steps the runner calls between evaluations),
compiled once and timed over ``--steps`` updates, median of ``--repeats``:

  one run, bptt_chunk=k  one run on one device, the BPTT chunk the execution plan's auto
                         rule picks (k = 75 at T = 150, 100 at 500) and 0 (no chunks)
  7 variants, map        the seven paper variants as runs of one program, one after another
                         (``lax.map``, the CPU execution): per run-update
  7 variants, vmap       the same, ``vmap``ped (the accelerator execution): per run-update
  bare recurrence        a probe: ``lax.scan`` of ``h = relu(W h + u_t)`` alone, forward only,
                         per time step (what XLA costs for the sequential part, no training)
  FLOP floor             the update's FLOPs (forward 2 H^2 T, backward 4 H^2 T) at the matmul
                         peak measured in the same run (a 100 x 100 matvec cannot reach it:
                         a floor, not a target)

Run it on a quiet machine (nothing else on the cores): the rows are compared as
ratios within one run.
"""

from __future__ import annotations

import json
import platform

from absl import app, flags

flags.DEFINE_list("seq_lens", ["150", "500"], "Sequence lengths.")
flags.DEFINE_integer("steps", 2000, "Updates per timed call.")
flags.DEFINE_integer("repeats", 5, "Timed calls per row (the median is reported).")
flags.DEFINE_string("json", "", "Also write the rows to this JSON file.")
FLAGS = flags.FLAGS

HIDDEN = 100
VARIANTS = ("np", "irnn", "irnn_scaled", "nrnn", "ornn", "grnn", "np_tanh")


def _median_seconds(fn, repeats):
    """Median seconds of ``fn`` after one warm-up (compile) call: rnn_throughput's timer."""
    from benchmarks.timing import timeit
    return timeit(fn, repeats, warmup=1)


def _matmul_peak_gflops():
    import jax
    import jax.numpy as jnp
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    seconds = _median_seconds(lambda: f(a).block_until_ready(), 5)
    return 2 * 2048 ** 3 / seconds / 1e9


def measure(seq_len: int, steps: int, repeats: int) -> list:
    import jax
    import jax.numpy as jnp
    from nprnn_jax import parallel, rnn, tasks, train

    task = tasks.AdditionTask(seq_len=seq_len, train_size=100_000, test_size=16)
    data = task.train_data()
    hp = train.hparams(1e-3, 10.0)
    rows = []

    def trainer(init, chunk):
        config = train.TrainConfig(init=init, hidden_size=HIDDEN, batch_size=1, num_steps=steps,
                                   eval_every=steps)
        return train.make_train(config, task, execution=rnn.Execution(bptt_chunk=chunk))

    key = jax.random.PRNGKey(0)
    auto = parallel.auto_bptt_chunk([seq_len], "cpu")
    for chunk in dict.fromkeys([auto, 0]):
        t = trainer("np", chunk)
        state = jax.jit(t.init)(key, hp)
        run = jax.jit(lambda s: t.run(s, hp, steps, data))
        seconds = _median_seconds(lambda: jax.block_until_ready(run(state)), repeats)
        rows.append({"T": seq_len, "row": f"one run, bptt_chunk={chunk}", "us_per_update": 1e6 * seconds / steps})
    # the seven variants as runs of one program (all ReLU but np_tanh, so tanh joins its own program)
    relu = [v for v in VARIANTS if v != "np_tanh"]
    chunk = 0
    trainers = [trainer(v, chunk) for v in relu]
    states = jax.tree.map(lambda *x: jnp.stack(x), *[jax.jit(t.init)(key, hp) for t in trainers])
    one = trainers[0]  # the step is the same function for every ReLU init: only the initial weights differ
    for execution in ("map", "vmap"):
        grid = jax.jit(lambda s: parallel.over_runs(lambda x: one.run(x, hp, steps, data), 1, execution)(s))
        seconds = _median_seconds(lambda: jax.block_until_ready(grid(states)), repeats)
        rows.append({"T": seq_len, "row": f"{len(relu)} ReLU variants, {execution}",
                     "us_per_update": 1e6 * seconds / steps / len(relu)})
    # the bare recurrence, forward only
    w = jnp.eye(HIDDEN) * 0.5
    u = jax.random.normal(key, (seq_len, HIDDEN))

    def bare(h0):
        return jax.lax.scan(lambda h, x: (jax.nn.relu(w @ h + x), None), h0, u)[0]

    bare_jit = jax.jit(bare)
    h0 = jnp.zeros(HIDDEN)
    seconds = _median_seconds(lambda: [bare_jit(h0).block_until_ready() for _ in range(200)], repeats) / 200
    rows.append({"T": seq_len, "row": "bare recurrence (forward only)", "us_per_update": 1e6 * seconds,
                 "us_per_step": 1e6 * seconds / seq_len})
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import jax
    peak = _matmul_peak_gflops()
    out = {"machine": f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
                      f"jax {jax.__version__}", "matmul_peak_gflops": peak, "rows": []}
    for seq_len in (int(t) for t in FLAGS.seq_lens):
        rows = measure(seq_len, FLAGS.steps, FLAGS.repeats)
        floor_us = 6 * HIDDEN ** 2 * seq_len / (peak * 1e9) * 1e6
        base = rows[0]["us_per_update"]
        for row in rows:
            row["x_one_run_auto_chunk"] = row["us_per_update"] / base
            row["x_flop_floor"] = row["us_per_update"] / floor_us
        out["rows"] += rows
        for row in rows:
            print(f"T={row['T']:4d}  {row['row']:34s} {row['us_per_update']:9.1f} us/update"
                  f"  {row['x_one_run_auto_chunk']:5.2f}x one run  {row['x_flop_floor']:7.1f}x FLOP floor", flush=True)
        if FLAGS.json:  # after every length, so that a cut run keeps what it measured
            with open(FLAGS.json, "w") as f:
                json.dump(out, f, indent=1)
    print(f"matmul peak {peak:.0f} GFLOP/s on {out['machine']}")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
