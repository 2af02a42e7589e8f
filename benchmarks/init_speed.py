"""Time a vmapped np_init for many seeds: python -m benchmarks.init_speed [--seeds 64 --size 100]."""

import argparse
import time

import jax
import numpy as np

from nprnn_jax import initializers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
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
    main()
