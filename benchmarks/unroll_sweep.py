"""Sweep the scan unroll of our training step against plain autodiff (one seed, CPU or GPU).

    python -m benchmarks.unroll_sweep

Prints ms per `value_and_grad` step (batch 16, hidden 100, float32, median of 15
calls) of plain autodiff (unroll 1) and of our custom VJP at unroll 1, 2, 4, 8.
"""

import statistics
import time

import jax
import jax.numpy as jnp

from nprnn_jax import rnn


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


if __name__ == "__main__":
    print(f"device: {jax.devices()[0].device_kind}")
    for seq_len, input_size in ((784, 1), (400, 2)):
        plain = step_ms(seq_len, input_size, "autodiff", 1)
        ours = "  ".join(f"unroll {u}: {step_ms(seq_len, input_size, 'custom', u):.2f}" for u in (1, 2, 4, 8))
        print(f"T={seq_len}: plain autodiff {plain:.2f} ms | ours {ours} ms")
