r"""Batch 1: three ways to write the recurrence's 100 x 100 matvec, forward and forward + backward.

    python -m benchmarks.matvec_forms

At the paper's batch 1 each timestep of the recurrence is one ``[1, N] @ [N, N]`` product.
XLA:CPU sends a ``dot`` to its matmul kernels, whose per-call overhead dominates at this
size; this probe asks whether another form of the same product is cheaper (issue 19: "if
the step itself can be made faster at batch 1, do it, and record what you tried"):

  dot     ``h @ W`` (what `nprnn_jax.bptt` does)
  matvec  ``W.T @ h[0]`` (a rank-1 operand: XLA's matrix-vector path)
  reduce  ``sum(h[:, :, None] * W[None], axis=1)`` (a broadcast multiply and a reduction that
          XLA can fuse into one loop, no matmul call)

Rows: the bare forward recurrence ``lax.scan`` of ``relu(u_t + h W)`` (us per timestep, best
of ``--repeats``), and ``jax.grad`` of the sum of the last state with respect to W (us per
update, autodiff through the scan), T = ``--seq_len``. Run it on a quiet machine, one
device (``XLA_FLAGS=--xla_force_host_platform_device_count=1 taskset -c 0``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from absl import app, flags

flags.DEFINE_integer("seq_len", 150, "Timesteps T.")
flags.DEFINE_integer("hidden", 100, "Hidden units N.")
flags.DEFINE_integer("repeats", 5, "Timed blocks per row (the best is reported).")
FLAGS = flags.FLAGS

FORMS = {
    "dot": lambda h, w: h @ w,
    "matvec": lambda h, w: (w.T @ h[0])[None],
    "reduce": lambda h, w: jnp.sum(h[:, :, None] * w[None], axis=1),
}


def _best_seconds(fn, args, calls: int, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    steps, n = FLAGS.seq_len, FLAGS.hidden
    key_w, key_u = jax.random.split(jax.random.PRNGKey(0))
    w = jax.random.normal(key_w, (n, n)) * 0.05
    u = jax.random.normal(key_u, (steps, 1, n))
    print(f"T={steps}, N={n}, batch 1, {jax.devices()[0].platform}; best of {FLAGS.repeats}")
    for name, product in FORMS.items():
        def forward(w, u, product=product):
            step = lambda h, u_t: (jax.nn.relu(u_t + product(h, w)),) * 2  # noqa: E731
            return jax.lax.scan(step, jnp.zeros((1, n)), u)[1]

        def last_sum(w, u, product=product):
            step = lambda h, u_t: (jax.nn.relu(u_t + product(h, w)), None)  # noqa: E731
            return jnp.sum(jax.lax.scan(step, jnp.zeros((1, n)), u)[0])

        fwd = _best_seconds(jax.jit(forward), (w, u), 200, FLAGS.repeats)
        grad = _best_seconds(jax.jit(jax.grad(last_sum)), (w, u), 100, FLAGS.repeats)
        print(f"{name:7s} forward {fwd / steps * 1e6:7.2f} us per timestep | "
              f"grad {grad * 1e6:9.1f} us per update")


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
