"""How a grid of independent runs is laid over the hardware: the execution plan.

Everything here changes speed, never results (up to float32 rounding), and is
decided once, at the edge, by `execution_plan`: which devices, how the runs
share them (`layout`), vmap or map (`resolve`), and the BPTT chunk length.
The plan is recorded in the workdir's config.json.

Two ways to run a function of one run over arrays with leading run axes:

- ``"vmap"``: `jax.vmap`, one batched program. Best on accelerators, where the
  batched matmuls fill the device (BENCHMARKS.md).
- ``"map"``: `jax.lax.map`, the runs one after another inside one compiled
  program, each with the unbatched (fastest) kernels. On XLA:CPU a vmapped seed
  axis costs more than running the seeds one by one (batched small matmuls and
  layout copies); this is the CPU default.

Either is combined with sharding the run axis over devices: `shard_runs` wraps
the function in `jax.shard_map`, so each device (a GPU, or one CPU core as an XLA
host device) runs its own slice of the grid.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

EXECUTIONS = ("vmap", "map", "auto")
SHARDS = ("auto", "seeds", "batch", "none")
GROUP_INITS = ("auto", "on", "off")
SEED_SPEC = jax.sharding.PartitionSpec(None, "seeds")
REPLICATED = jax.sharding.PartitionSpec()


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
    arrays (BENCHMARKS.md).
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

    The leaves are raveled into one vector per dtype, averaged, and split back: on
    XLA:CPU host devices each all-reduce is a rendezvous of the device threads whose
    cost hardly depends on its size (BENCHMARKS.md).
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


def barrier(name: str, timeout_s: int = 600):
    """Waits until every process of a multi-host run reaches ``name`` (no-op for one process).

    Uses the coordination service of `jax.distributed`, whose wait can be long: gloo's first
    collective gives up after 30 s, so processes that drift apart during their local work
    (compilation, data loading on a loaded machine) meet here before it.
    """
    if jax.process_count() < 2:
        return
    from jax._src import distributed
    client = getattr(distributed.global_state, "client", None)
    if client is not None:
        client.wait_at_barrier(f"nprnn_jax:{name}", timeout_in_ms=timeout_s * 1000)


def layout_kind(num_seeds: int, batch_size: int, device_count: int, shard: str = "auto"):
    """The layout of a grid on ``device_count`` devices: "seeds", "batch" or None (one device).

    ``shard="auto"`` picks "seeds" when the seeds divide evenly over the devices,
    else "batch" when the minibatch does, else None; an explicit "seeds" or
    "batch" that does not divide evenly raises.
    """
    if shard not in SHARDS:
        raise ValueError(f"unknown shard {shard!r}; valid: {', '.join(SHARDS)}")
    if shard == "none" or device_count < 2:
        return None
    fits = {"seeds": num_seeds % device_count == 0, "batch": batch_size % device_count == 0}
    if shard == "auto":
        return "seeds" if fits["seeds"] else "batch" if fits["batch"] else None
    if not fits[shard]:
        what, value = ("num_seeds", num_seeds) if shard == "seeds" else ("batch_size", batch_size)
        raise ValueError(f"shard={shard!r} needs {what} to be a multiple of the {device_count} devices; "
                         f"got {what}={value}")
    return shard


def mesh_sharding(kind: Optional[str]):
    """The `NamedSharding` of a grid's states for layout ``kind`` (None: one device)."""
    if kind is None:
        return None
    mesh = jax.sharding.Mesh(np.array(jax.devices()), (kind,))
    return jax.sharding.NamedSharding(mesh, SEED_SPEC if kind == "seeds" else REPLICATED)


def auto_bptt_chunk(seq_lens: Sequence[int], backend: str) -> int:
    """The BPTT chunk length for sequences of the given lengths on ``backend``.

    On a CPU backend: the divisor of every length in [25, 200] nearest 100 (0 if
    there is none); chunks keep every array but the kept states a chunk long,
    which is faster on XLA:CPU (BENCHMARKS.md). Elsewhere 0 (not measured there).
    """
    if backend != "cpu":
        return 0
    length = math.gcd(*[int(t) for t in seq_lens])
    divisors = [k for k in range(25, min(200, length) + 1) if length % k == 0]
    return min(divisors, key=lambda k: (abs(k - 100), -k)) if divisors else 0


def resolve_group_inits(group_inits: str, backend: str) -> bool:
    """Whether the inits that can share a program are trained as one grid: "auto" is on
    away from a CPU (an accelerator runs the whole grid at once; on XLA:CPU a grid of k runs
    costs k runs' time, BENCHMARKS.md, so there the inits run one after another)."""
    if group_inits not in GROUP_INITS:
        raise ValueError(f"unknown group_inits {group_inits!r}; valid: {', '.join(GROUP_INITS)}")
    return group_inits == "on" or (group_inits == "auto" and backend != "cpu")


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
    """How a grid is laid over the hardware: values the engine uses as they are (speed only;
    results do not depend on them beyond float rounding). Recorded in config.json
    (`to_json`).

    Attributes:
      backend: the JAX backend ("cpu", "gpu", "tpu").
      devices: the devices of the mesh.
      layout: "seeds" (the seed axis split over the devices), "batch" (each run's minibatch
        split) or None (one device).
      execution: "map" (the runs of a device one after another) or "vmap" (batched); "auto"
        resolves on the backend.
      bptt_chunk: BPTT in chunks of this many steps (0: off).
      group_inits: the inits that share a program train as one grid (`runner.init_groups`).
      unroll, backward, remat_every: how the recurrence is scanned and differentiated (the
        settings of the same names).

    The recurrence gets its part as one argument, `recurrence` (an `rnn.Execution`), never
    inside the network's config.
    """

    backend: str = "cpu"
    devices: int = 1
    layout: Optional[str] = None
    execution: str = "auto"
    bptt_chunk: int = 0
    group_inits: bool = False
    unroll: int = 1
    backward: str = "custom"
    remat_every: int = 0

    @property
    def recurrence(self):
        """How the recurrence runs (`rnn.Execution`): unroll, backward pass, chunks."""
        from nprnn_jax import rnn
        return rnn.Execution(unroll=self.unroll, backward=self.backward, remat_every=self.remat_every,
                             bptt_chunk=self.bptt_chunk)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def execution_plan(*, num_seeds: int, batch_size: int, seq_lens: Sequence[int], execution: str = "auto",
                   shard: str = "auto", bptt_chunk: int = -1, backward: str = "custom",
                   group_inits: str = "auto", unroll: int = 1, remat_every: int = 0) -> ExecutionPlan:
    """Resolves the speed-only settings for the visible devices into an explicit
    `ExecutionPlan`. ``bptt_chunk=-1`` is `auto_bptt_chunk`; an explicit k must divide every
    sequence length, as ``remat_every`` must.
    """
    backend = jax.default_backend()
    grouped = resolve_group_inits(group_inits, backend)
    kind = layout_kind(num_seeds, batch_size, jax.device_count(), shard)
    chunk = (auto_bptt_chunk(seq_lens, backend) if backward == "custom" else 0) if bptt_chunk == -1 else bptt_chunk
    plan = ExecutionPlan(backend=backend, devices=jax.device_count(), layout=kind, execution=resolve(execution),
                         bptt_chunk=chunk, group_inits=grouped, unroll=unroll, backward=backward,
                         remat_every=remat_every)
    for length in seq_lens:
        plan.recurrence.check_length(length)  # the settings' own checks, and the lengths they must divide
    return plan
