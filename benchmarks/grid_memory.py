"""Steps per second and peak memory of a (seeds x learning rates) grid on the addition task.

    python -m benchmarks.grid_memory --num_seeds=8 --learning_rates=1e-3,3e-3,1e-2,3e-2 \
        --seq_len=200 --batch_size=16 --num_steps=200

Reports the compile time, the steady-state grid steps per second (every step
advances all seeds x learning rates), per-run steps per second, and the peak
resident memory of the process (ru_maxrss).
"""

import argparse
import resource
import time

import jax
import jax.numpy as jnp

from nprnn_jax import parallel, runner, tasks, train


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_seeds", type=int, default=8)
    parser.add_argument("--learning_rates", default="1e-3,3e-3,1e-2,3e-2")
    parser.add_argument("--seq_len", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--hidden_size", type=int, default=100)
    parser.add_argument("--num_steps", type=int, default=200)
    parser.add_argument("--preset", default="np")
    parser.add_argument("--execution", default="auto", help="vmap, map or auto")
    parser.add_argument("--bptt_chunk", type=int, default=-1, help="-1 auto, 0 off, or k (parallel.execution_plan)")
    args = parser.parse_args()
    lrs = tuple(float(x) for x in args.learning_rates.split(","))
    task = tasks.AdditionTask(seq_len=args.seq_len, test_size=1000)
    plan = parallel.execution_plan(num_seeds=args.num_seeds, batch_size=args.batch_size,
                                   seq_lens=task.seq_lens(), execution=args.execution, bptt_chunk=args.bptt_chunk)
    config = train.TrainConfig(hidden_size=args.hidden_size, batch_size=args.batch_size,
                               num_steps=args.num_steps, eval_every=args.num_steps,
                               bptt_chunk=plan["bptt_chunk"])
    grid = runner.Grid(learning_rates=lrs, num_seeds=args.num_seeds)
    run = runner.GridRun(task, runner.InitRun(args.preset, config, grid), plan)
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
    main()
