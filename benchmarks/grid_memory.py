"""Steps per second and peak memory of a (seeds x learning rates) grid on the addition task.

    python -m benchmarks.grid_memory --num_seeds=8 --learning_rates=1e-3,3e-3,1e-2,3e-2 \
        --seq_len=200 --batch_size=16 --num_steps=200

Reports the compile time, the steady-state grid steps per second (every step
advances all seeds x learning rates), per-run steps per second, and the peak
resident memory of the process (ru_maxrss).
"""

import resource
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from nprnn_jax import parallel, runner, tasks, train

flags.DEFINE_integer("num_seeds", 8, "Seeds of the grid.", lower_bound=1)
flags.DEFINE_string("learning_rates", "1e-3,3e-3,1e-2,3e-2", "Comma list of learning rates.")
flags.DEFINE_integer("seq_len", 200, "Sequence length T.", lower_bound=2)
flags.DEFINE_integer("batch_size", 16, "Minibatch size.", lower_bound=1)
flags.DEFINE_integer("hidden_size", 100, "Hidden units.", lower_bound=1)
flags.DEFINE_integer("num_steps", 200, "Steps per timed segment.", lower_bound=1)
flags.DEFINE_string("init", "np", "The init (rnn.INITS).")
flags.DEFINE_enum("execution", "auto", ["vmap", "map", "auto"], "Runs of one device: vmap, map or auto.")
flags.DEFINE_integer("bptt_chunk", -1, "-1 auto, 0 off, or k (parallel.execution_plan).", lower_bound=-1)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    args = FLAGS
    lrs = tuple(float(x) for x in args.learning_rates.split(","))
    task = tasks.AdditionTask(seq_len=args.seq_len, test_size=1000)
    plan = parallel.execution_plan(num_seeds=args.num_seeds, batch_size=args.batch_size,
                                   seq_lens=task.seq_lens(), execution=args.execution, bptt_chunk=args.bptt_chunk)
    config = train.TrainConfig(hidden_size=args.hidden_size, batch_size=args.batch_size,
                               num_steps=args.num_steps, eval_every=args.num_steps)
    grid = runner.Grid(learning_rates=lrs, num_seeds=args.num_seeds)
    run = runner.GridRun(task, runner.InitRun(args.init, config, grid), plan)
    state = run.initial_state()
    t0 = time.perf_counter()
    state, loss = run.segment(state, run.hp, run.data)
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, loss = run.segment(state, run.hp, run.data)
    jax.block_until_ready(loss)
    steady = time.perf_counter() - t0
    runs = len(lrs) * args.num_seeds
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"execution={run.execution} devices={jax.device_count()} ({jax.devices()[0].device_kind}) grid={len(lrs)} lr x "
          f"{args.num_seeds} seeds, T={args.seq_len}, batch={args.batch_size}, hidden={args.hidden_size}")
    print(f"first segment (compile + {args.num_steps} steps): {first:.1f} s")
    print(f"steady: {args.num_steps / steady:.2f} grid steps/s = {runs * args.num_steps / steady:.1f} "
          f"run-steps/s ({steady / args.num_steps * 1e3:.1f} ms per grid step)")
    print(f"peak resident memory: {peak_mib:.0f} MiB; final mean loss {float(jnp.nanmean(loss)):.4f}")


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
