"""How a grid of independent runs is laid over the hardware.

Two ways to run a function of one run over arrays with leading run axes:

- ``"vmap"``: `jax.vmap`, one batched program. Best on accelerators, where the
  batched matmuls fill the device (64 seeds cost less than 1x one seed's time on
  an H100, see BENCHMARKS.md).
- ``"map"``: `jax.lax.map`, the runs one after another inside one compiled
  program, each with the unbatched (fastest) kernels. On XLA:CPU a vmapped seed
  axis costs more than running the seeds one by one (batched small matmuls and
  layout copies); this is the CPU default.

Either is combined with sharding the run axis over devices: `shard_runs` wraps
the function in `jax.shard_map`, so each device (a GPU, or one CPU core as an XLA
host device) runs its own slice of the grid.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

EXECUTIONS = ("vmap", "map", "auto")


def resolve(execution: str) -> str:
    """"auto" is "map" on a CPU backend and "vmap" elsewhere."""
    if execution not in EXECUTIONS:
        raise ValueError(f"unknown execution {execution!r}; valid: {', '.join(EXECUTIONS)}")
    if execution == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return execution


def over_runs(fn: Callable, num_run_axes: int, execution: str) -> Callable:
    """``fn`` of one run, applied over ``num_run_axes`` leading run axes of every argument.

    Every argument must carry the run axes (broadcast shared values beforehand);
    the outputs carry them too. A single run (every run axis of size 1) is
    called directly on the squeezed arguments, whatever ``execution`` says: on
    XLA:CPU a size-1 vmapped axis costs layout copies of the whole-sequence
    arrays (8-9% of a one-seed training step at T=784, BENCHMARKS.md).
    """
    execution = resolve(execution)
    if execution == "vmap":
        mapped = fn
        for _ in range(num_run_axes):
            mapped = jax.vmap(mapped)
    else:
        def mapped(*args):
            lead = jax.tree.leaves(args)[0].shape[:num_run_axes]
            flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[num_run_axes:]), args)
            out = jax.lax.map(lambda a: fn(*a), flat)
            return jax.tree.map(lambda x: x.reshape(lead + x.shape[1:]), out)

    def over(*args):
        lead = jax.tree.leaves(args)[0].shape[:num_run_axes]
        if num_run_axes and all(size == 1 for size in lead):
            index = (0,) * num_run_axes
            out = fn(*jax.tree.map(lambda x: x[index], args))
            return jax.tree.map(lambda x: x.reshape((1,) * num_run_axes + x.shape), out)
        return mapped(*args)

    return over


def shard_runs(fn: Callable, mesh: Optional[jax.sharding.Mesh], run_spec, replicated_argnums=()) -> Callable:
    """Runs ``fn`` per device on its shard of the run axes (`jax.shard_map`); no-op without a mesh.

    Args:
      fn: a function whose arguments and outputs carry the run axes.
      mesh: a 1-D mesh, or None.
      run_spec: the `PartitionSpec` of the run axes, e.g. ``P(None, "seeds")``.
      replicated_argnums: arguments that are the same on every device (a data set).
    """
    if mesh is None:
        return fn

    def wrapped(*args):
        specs = tuple(jax.sharding.PartitionSpec() if i in replicated_argnums else run_spec
                      for i in range(len(args)))
        return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=run_spec, check_vma=False)(*args)

    return wrapped


def local_rows(batch, axis_name: str):
    """This device's equal share of the rows (leading axis) of every leaf of ``batch``.

    Called inside a `jax.shard_map` (or `vmap`) over ``axis_name``: device ``i`` of
    ``n`` gets rows ``[i * B / n, (i + 1) * B / n)``. B must be a multiple of n.
    """
    shards = jax.lax.axis_size(axis_name)
    index = jax.lax.axis_index(axis_name)

    def take(x):
        rows = x.shape[0]
        if rows % shards:
            raise ValueError(f"a batch of {rows} rows cannot be split evenly over the {shards} "
                             f"devices of mesh axis {axis_name!r}; use a batch size that is a "
                             f"multiple of {shards}")
        size = rows // shards
        return jax.lax.dynamic_slice_in_dim(x, index * size, size, axis=0)

    return jax.tree.map(take, batch)


def pmean_flat(tree, axis_name: str):
    """`lax.pmean` of every leaf of ``tree`` over ``axis_name``, as ONE all-reduce per dtype.

    The leaves are raveled into one vector per dtype, averaged, and split back. On
    XLA:CPU host devices each all-reduce is a rendezvous of the device threads that
    costs 70-90 us whatever its size; a model's gradients (5 leaves) averaged leaf by
    leaf cost 0.43 ms per step, raveled into one vector 0.19 ms (BENCHMARKS.md).
    """
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        return tree
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    out = [None] * len(leaves)
    for dtype in dict.fromkeys(leaf.dtype for leaf in leaves):
        idx = [i for i, leaf in enumerate(leaves) if leaf.dtype == dtype]
        flat = jnp.concatenate([leaves[i].reshape(-1) for i in idx])
        flat = jax.lax.pmean(flat, axis_name)
        offset = 0
        for i in idx:
            size = leaves[i].size
            out[i] = flat[offset:offset + size].reshape(leaves[i].shape)
            offset += size
    return jax.tree.unflatten(treedef, out)


def broadcast_to_runs(tree, run_shape):
    """Broadcasts leaves with fewer leading run axes (e.g. [L] hyperparameters) to ``run_shape``."""
    def grow(x):
        x = jnp.asarray(x)
        extra = len(run_shape) - x.ndim
        return jnp.broadcast_to(x.reshape(x.shape + (1,) * extra) if extra > 0 else x, run_shape)
    return jax.tree.map(grow, tree)
