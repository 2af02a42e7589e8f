"""Sweep the scan unroll of our training step against plain autodiff (one seed, CPU or GPU).

    python -m benchmarks.unroll_sweep [--lengths=784x1,400x2] [--unrolls=1,2,4,8] [--repeats=15]

Prints ms per `value_and_grad` step (batch 16, hidden 100, float32, median of `--repeats`
calls) of plain autodiff (unroll 1) and of our custom VJP at each unroll of `--unrolls`.
"""

import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from nprnn_jax import rnn

flags.DEFINE_list("lengths", ["784x1", "400x2"], "Sequence length x input size of each row.")
flags.DEFINE_list("unrolls", ["1", "2", "4", "8"], "Scan unrolls of our custom VJP.")
flags.DEFINE_integer("repeats", 15, "Timed calls per cell (the median is reported).")
FLAGS = flags.FLAGS


def step_ms(seq_len, input_size, backward, unroll, repeats=15):
    config = rnn.RNNConfig(input_size=input_size, hidden_size=100, init="np")
    run = rnn.Execution(backward=backward, unroll=unroll)
    params = rnn.init_params(jax.random.key(0), config)
    xs = jax.random.uniform(jax.random.key(1), (16, seq_len, input_size))
    ys = jnp.ones((16, 1))
    step = jax.jit(jax.value_and_grad(lambda p: jnp.mean((rnn.apply(p, xs, config, None, run) - ys) ** 2)))
    jax.block_until_ready(step(params))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(params))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _length(text):
    try:
        seq_len, input_size = (int(v) for v in text.split("x"))
    except ValueError:
        raise app.UsageError(f"--lengths={text}: expected <sequence length>x<input size>, e.g. 784x1")
    return seq_len, input_size


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    rows = [_length(text) for text in FLAGS.lengths]
    unrolls = [int(u) for u in FLAGS.unrolls]
    print(f"device: {jax.devices()[0].device_kind}")
    for seq_len, input_size in rows:
        plain = step_ms(seq_len, input_size, "autodiff", 1, FLAGS.repeats)
        ours = "  ".join(f"unroll {u}: {step_ms(seq_len, input_size, 'custom', u, FLAGS.repeats):.2f}"
                         for u in unrolls)
        print(f"T={seq_len}: plain autodiff {plain:.2f} ms | ours {ours} ms")


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
