r"""RNN training-step throughput: ours against plain autodiff, Flax and PyTorch, in one run.

    python -m benchmarks.rnn_throughput --json=benchmarks/results_cpu.json

Measures, for hidden 100, batch 16, float32, on the paper's shapes (T=784 with
input 1, pixel MNIST; T=400 with input 2, addition), one training step
(forward, backward and an SGD update on a fixed batch):

  ours        nprnn_jax.rnn with the hand-written BPTT VJP (backward="custom")
  plain_scan  the same model, jax.grad of the plain lax.scan (backward="autodiff")
  flax_rnn    flax.linen nn.RNN(nn.SimpleCell(relu)) + Dense readout
  torch_rnn   torch.nn.RNN(nonlinearity="relu") + Linear (cuDNN on a GPU); needs
              the `bench` extra (pip install -e ".[bench]")

and for 1, 8 and 64 seeds vmapped (ours, plain_scan), plus 8 seeds run one
after another (ours_sequential). It measures the machine's matmul peak itself
(a 2048 x 2048 float32 matmul) and reports ms per step, sequences per second,
GFLOP/s, the ratio to the FLOP floor (FLOPs / peak) and XLA's peak buffer
memory of the compiled step; then the T=10,000 case with and without
rematerialization. The implementations compared with each other (one shape and
seed count) are compiled first and then timed in turn, --repeats rounds over, in
steady-state blocks (see `time_interleaved`), and each one's median block is
reported: a load burst of the shared machine then hits all of them, not one. Speeds on shared
machines still move by 10-20% between runs: compare the ratios within one run.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time

from benchmarks.timing import timeit

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # Two or more host devices on a CPU, so that the vmapped seed axis can be sharded
    # over the cores as the training engine does; single runs stay on device 0.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count="
                               + str(os.cpu_count() or 1)).strip()

import jax
import jax.numpy as jnp
import numpy as np

from nprnn_jax import parallel, rnn

HIDDEN, BATCH, LR = 100, 16, 1e-3


def matmul_peak(size=2048, repeats=10):
    a = jnp.ones((size, size), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    seconds = timeit(lambda: f(a).block_until_ready(), repeats)
    return 2 * size ** 3 / seconds / 1e9


def step_flops(seq_len, input_size, seeds=1):
    # forward: input projection + recurrent matmul per step; backward: twice the forward.
    return 3 * seeds * seq_len * BATCH * (2 * input_size * HIDDEN + 2 * HIDDEN * HIDDEN)


def jax_memory_mib(compiled):
    try:
        analysis = compiled.memory_analysis()
        total = (analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
                 + analysis.output_size_in_bytes - analysis.alias_size_in_bytes)
        return total / 2 ** 20
    except Exception:  # not every backend reports it
        return float("nan")


def ours_step(seq_len, input_size, seeds, backward, remat_every=0, shard=False, execution="vmap",
              split_batch=False):
    """A jitted SGD step of our model for `seeds` seeds; returns (fn, args).

    ``execution``: "vmap" (batched) or "map" (one seed after another in one
    program), as `nprnn_jax.parallel.over_runs`. With ``shard`` the seed axis is
    split over all devices (`parallel.shard_runs`), as the training engine does. With
    ``split_batch`` (one seed) every device takes an equal share of the minibatch and
    the gradients are averaged over the devices (`parallel.local_rows` +
    `parallel.pmean_flat`), the engine's layout for one seed on several devices (`parallel.layout`)."""
    # the engine's chunk length (the execution plan's rule for this backend)
    chunk = parallel.auto_bptt_chunk((seq_len,), jax.default_backend()) if backward == "custom" else 0
    config = rnn.RNNConfig(input_size=input_size, hidden_size=HIDDEN, output_size=1, init="np")
    run = rnn.Execution(backward=backward, remat_every=remat_every, bptt_chunk=0 if remat_every else chunk)
    keys = jax.random.split(jax.random.key(0), seeds)
    params = jax.vmap(lambda k: rnn.init_params(k, config))(keys)
    xs = jax.random.uniform(jax.random.key(1), (seeds, BATCH, seq_len, input_size))
    ys = jax.random.uniform(jax.random.key(2), (seeds, BATCH, 1))

    def step(params, xs, ys):
        if split_batch:  # this device's rows; the gradients averaged over the devices below
            xs, ys = parallel.local_rows((xs, ys), "batch")
        loss_fn = lambda p: jnp.mean((rnn.apply(p, xs, config, None, run) - ys) ** 2)
        loss, grads = jax.value_and_grad(loss_fn)(params)
        if split_batch:
            loss, grads = parallel.pmean_flat((loss, grads), "batch")
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss

    if split_batch:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
        replicated = jax.sharding.PartitionSpec()
        fn = jax.jit(parallel.shard_runs(parallel.over_runs(step, 1, execution), mesh, replicated))
        args = jax.device_put((params, xs, ys), jax.sharding.NamedSharding(mesh, replicated))
        return fn, args
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("seeds",)) if shard else None
    spec = jax.sharding.PartitionSpec("seeds")
    fn = jax.jit(parallel.shard_runs(parallel.over_runs(step, 1, execution), mesh, spec))
    if shard:
        params, xs, ys = jax.device_put((params, xs, ys), jax.sharding.NamedSharding(mesh, spec))
    else:
        params, xs, ys = jax.device_put((params, xs, ys), jax.devices()[0])
    return fn, (params, xs, ys)


def flax_step(seq_len, input_size):
    import flax.linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, xs):
            hs = nn.RNN(nn.SimpleCell(HIDDEN, activation_fn=nn.relu))(xs)
            return nn.Dense(1)(hs[:, -1])

    model = Model()
    xs = jax.random.uniform(jax.random.key(1), (BATCH, seq_len, input_size))
    ys = jax.random.uniform(jax.random.key(2), (BATCH, 1))
    params = model.init(jax.random.key(0), xs)

    def step(params, xs, ys):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((model.apply(p, xs) - ys) ** 2))(params)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss

    return jax.jit(step), (params, xs, ys)


def jax_candidate(name, fn, args, seq_len, input_size, seeds):
    """A compiled step ready to be timed: ``call()`` runs one step and waits for it."""
    compiled = fn.lower(*args).compile()
    state = {"params": args[0]}

    def call():
        state["params"], loss = compiled(state["params"], *args[1:])
        loss.block_until_ready()

    return {"impl": name, "call": call, "seq_len": seq_len, "input_size": input_size, "seeds": seeds,
            "memory_mib": jax_memory_mib(compiled)}


def time_interleaved(candidates, rounds, peak, calls_per_round=5, warmup_s=0.05, block_s=0.1):
    """Times the candidates in turn, ``rounds`` times over (after two warm-up calls
    each), and reports each one's median block mean. A block is at least
    ``calls_per_round`` back-to-back calls and at least ``block_s`` seconds of them (the
    steady state of a training loop, with its working set in cache), after untimed
    calls for at least ``warmup_s`` seconds. Interleaving spreads the load bursts of a
    shared machine over all candidates instead of one, so their ratios are steadier
    than those of one block of calls per candidate.

    The untimed lead-in absorbs what the previous candidate leaves behind (PyTorch's
    OpenMP threads spin on after a call returns: a JAX step timed right after a torch
    step ran up to 19% slower). It is not an idle pause: after even 50 ms of idling,
    this shared machine runs the next 5 calls 15-30% slower (the batch-split step at
    T=400: 4.87 ms after a 0.2 s pause, 4.16 ms without), which would penalize the
    candidates with short calls most."""
    for candidate in candidates:
        candidate["call"]()
        candidate["call"]()
    times = {id(c): [] for c in candidates}

    def calls_for(candidate, min_calls, min_seconds):
        start, calls = time.perf_counter(), 0
        while calls < min_calls or time.perf_counter() - start < min_seconds:
            candidate["call"]()
            calls += 1
        return (time.perf_counter() - start) / calls

    for _ in range(rounds):
        for candidate in candidates:
            calls_for(candidate, 1, warmup_s)
            times[id(candidate)].append(calls_for(candidate, calls_per_round, block_s))
    return [result(c["impl"], c["seq_len"], c["input_size"], c["seeds"], statistics.median(times[id(c)]),
                   peak, c["memory_mib"]) for c in candidates]


def result(name, seq_len, input_size, seeds, seconds, peak, memory_mib):
    flops = step_flops(seq_len, input_size, seeds)
    floor = flops / (peak * 1e9)
    return {"impl": name, "seq_len": seq_len, "input_size": input_size, "seeds": seeds,
            "ms_per_step": seconds * 1e3, "sequences_per_s": seeds * BATCH / seconds,
            "gflops": flops / seconds / 1e9, "x_floor": seconds / floor, "memory_mib": memory_mib}


def torch_candidate(seq_len, input_size):
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    rnn_layer = torch.nn.RNN(input_size, HIDDEN, nonlinearity="relu", batch_first=True).to(device)
    readout = torch.nn.Linear(HIDDEN, 1).to(device)
    optimizer = torch.optim.SGD(list(rnn_layer.parameters()) + list(readout.parameters()), lr=LR)
    xs = torch.rand(BATCH, seq_len, input_size, device=device)
    ys = torch.rand(BATCH, 1, device=device)

    def call():
        optimizer.zero_grad()
        hs, _ = rnn_layer(xs)
        loss = torch.mean((readout(hs[:, -1]) - ys) ** 2)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    memory = float("nan")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        call()
        memory = torch.cuda.max_memory_allocated() / 2 ** 20
    return {"impl": f"torch_rnn ({device}, torch {torch.__version__}, {torch.get_num_threads()} threads)",
            "call": call, "seq_len": seq_len, "input_size": input_size, "seeds": 1, "memory_mib": memory}


def table(rows):
    header = f"| {'impl':46s} | {'T':>5s} | {'in':>2s} | {'seeds':>5s} | {'ms/step':>9s} | {'seq/s':>9s} | " \
             f"{'GFLOP/s':>7s} | {'x floor':>7s} | {'mem MiB':>8s} |"
    lines = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(f"| {r['impl']:46s} | {r['seq_len']:5d} | {r['input_size']:2d} | {r['seeds']:5d} | "
                     f"{r['ms_per_step']:9.2f} | {r['sequences_per_s']:9.0f} | {r['gflops']:7.1f} | "
                     f"{r['x_floor']:7.2f} | {r['memory_mib']:8.1f} |")
    return "\n".join(lines)


from absl import app, flags  # noqa: E402  (after the device split above)

flags.DEFINE_integer("repeats", 10, "Timed rounds per candidate (fewer for big seed counts).", lower_bound=1)
flags.DEFINE_string("seeds", "1,8,64", "Comma list of seed counts (vmapped runs).")
flags.DEFINE_string("shapes", "784x1,400x2", "Comma list of TxINPUT shapes.")
flags.DEFINE_integer("long_seq_len", 10_000, "0 skips the remat comparison.", lower_bound=0)
flags.DEFINE_integer("remat_every", 100, "The remat interval of the long-sequence comparison.", lower_bound=1)
flags.DEFINE_string("json", None, "Write the results here.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    args = FLAGS

    started = time.perf_counter()
    device = jax.devices()[0]
    peak = matmul_peak()
    machine = {"platform": device.platform, "device_kind": device.device_kind,
               "device_count": jax.device_count(), "jax": jax.__version__,
               "processor": platform.processor() or platform.machine(),
               "matmul_peak_gflops": peak}
    print(f"# {machine}", flush=True)
    rows = []
    seed_counts = [int(s) for s in args.seeds.split(",")]
    devices = jax.device_count()

    def measure(candidates, rounds):
        group = time_interleaved([c for c in candidates if c], rounds, peak)
        rows.extend(group)
        print(table(group), flush=True)

    for shape in args.shapes.split(","):
        seq_len, input_size = (int(v) for v in shape.split("x"))
        for seeds in seed_counts:
            rounds = max(3, args.repeats // max(1, seeds // 8))
            group = []

            def add(name, seeds_, **kwargs):
                fn, fn_args = ours_step(seq_len, input_size, seeds_, **kwargs)
                group.append(jax_candidate(name, fn, fn_args, seq_len, input_size, seeds_))

            add("ours", seeds, backward="custom")
            add("plain_scan", seeds, backward="autodiff")
            if seeds == 1 and devices > 1 and BATCH % devices == 0:
                # One run's minibatch split over the devices (the engine's layout for one seed).
                add(f"ours_batch_split ({devices} devices)", 1, backward="custom", split_batch=True)
                add(f"plain_scan_batch_split ({devices} devices)", 1, backward="autodiff", split_batch=True)
            if seeds == 1:
                fn, fn_args = flax_step(seq_len, input_size)
                group.append(jax_candidate("flax_rnn", fn, fn_args, seq_len, input_size, 1))
                group.append(torch_candidate(seq_len, input_size))
                if group[-1] is None:
                    print("# torch not installed: torch_rnn skipped (pip install -e '.[bench]')", flush=True)
            if seeds > 1:
                add("ours_map", seeds, backward="custom", execution="map")
            if seeds > 1 and devices > 1 and seeds % devices == 0:
                add(f"ours_sharded ({devices} devices)", seeds, backward="custom", shard=True)
                add(f"ours_map_sharded ({devices} devices)", seeds, backward="custom", shard=True,
                    execution="map")
            if seeds > 1:
                single = jax_candidate("ours_sequential", *ours_step(seq_len, input_size, 1, "custom"),
                                       seq_len, input_size, 1)
                one_step = single["call"]

                def sequential(one_step=one_step, seeds=seeds):
                    for _ in range(seeds):  # one seed's compiled step, run once per seed
                        one_step()

                group.append({**single, "call": sequential, "seeds": seeds})
            measure(group, rounds)
    if args.long_seq_len:
        group = []
        for name, backward, remat in (("ours", "custom", 0), ("plain_scan", "autodiff", 0),
                                      (f"ours remat_every={args.remat_every}", "custom", args.remat_every),
                                      (f"plain_scan remat_every={args.remat_every}", "autodiff",
                                       args.remat_every)):
            fn, fn_args = ours_step(args.long_seq_len, 1, 1, backward, remat)
            group.append(jax_candidate(name, fn, fn_args, args.long_seq_len, 1, 1))
        measure(group, 3)

    print("\n" + table(rows))

    def ratio(impl, other, seq_len, seeds=1):
        pick = lambda name: next(r for r in rows if (r["impl"] == name or r["impl"].startswith(name + " ("))
                                 and r["seq_len"] == seq_len
                                 and r["seeds"] == seeds)
        try:
            return pick(other)["ms_per_step"] / pick(impl)["ms_per_step"]
        except StopIteration:
            return None

    ratios = {}
    for shape in args.shapes.split(","):
        seq_len = int(shape.split("x")[0])
        ratios[f"T={seq_len}"] = {
            "plain_scan / ours": ratio("ours", "plain_scan", seq_len),
            "plain_scan / ours_batch_split": ratio("ours_batch_split", "plain_scan", seq_len),
            "plain_scan_batch_split / ours_batch_split": ratio("ours_batch_split", "plain_scan_batch_split",
                                                               seq_len),
            "torch_rnn / ours_batch_split": ratio("ours_batch_split", "torch_rnn", seq_len),
            "ours_batch_split x floor": next((r["x_floor"] for r in rows if r["impl"].startswith("ours_batch_split")
                                              and r["seq_len"] == seq_len), None),
            "flax_rnn / ours": ratio("ours", "flax_rnn", seq_len),
            "torch_rnn / ours": ratio("ours", "torch_rnn", seq_len),
            "ours x floor": next(r["x_floor"] for r in rows if r["impl"] == "ours" and r["seq_len"] == seq_len
                                 and r["seeds"] == 1),
            **{f"sequential / vmapped, {s} seeds": ratio("ours", "ours_sequential", seq_len, s)
               for s in seed_counts if s > 1},
            **{f"sequential / vmapped+sharded, {s} seeds": ratio("ours_sharded", "ours_sequential", seq_len, s)
               for s in seed_counts if s > 1},
            **{f"sequential / map, {s} seeds": ratio("ours_map", "ours_sequential", seq_len, s)
               for s in seed_counts if s > 1},
            **{f"sequential / map+sharded, {s} seeds": ratio("ours_map_sharded", "ours_sequential", seq_len, s)
               for s in seed_counts if s > 1},
        }
    print("\nratios (> 1: ours is faster):")
    print(json.dumps(ratios, indent=2))
    elapsed = time.perf_counter() - started
    print(f"\nsuite took {elapsed:.0f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "rows": rows, "ratios": ratios, "seconds": elapsed}, f, indent=2)


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
