"""Time a vmapped np_init for many seeds: python -m benchmarks.init_speed [--seeds 64 --size 100]."""

import time

import jax
import numpy as np
from absl import app, flags

from nprnn_jax import initializers

flags.DEFINE_integer("seeds", 64, "Seeds initialized at once (vmapped).", lower_bound=1)
flags.DEFINE_integer("size", 100, "Hidden size N of the N x N matrix.", lower_bound=1)
flags.DEFINE_integer("repeats", 20, "Timed calls after the first.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    args = FLAGS
    init = initializers.np_init()
    fn = jax.jit(jax.vmap(lambda k: init(k, (args.size, args.size))))
    keys = jax.random.split(jax.random.key(0), args.seeds)
    t0 = time.perf_counter()
    fn(keys).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fn(keys).block_until_ready()
        times.append(time.perf_counter() - t0)
    print(f"device={jax.devices()[0].device_kind} seeds={args.seeds} size={args.size}: "
          f"first call (compile+run) {compile_s * 1e3:.0f} ms, median {np.median(times) * 1e3:.1f} ms "
          f"({np.median(times) / args.seeds * 1e3:.2f} ms per seed)")


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
