"""The benchmarks' shared timer (no flags here: a module that defines absl flags cannot be
imported by another benchmark that defines the same ones)."""

import statistics
import time


def timeit(fn, repeats, warmup=2):
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
