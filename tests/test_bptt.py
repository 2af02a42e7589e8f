import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import device_flags
from nprnn_jax import bptt, parallel, rnn


def random_problem(key, steps=30, batch=5, hidden=12, masked=False):
    kz, kw, kg, kl = jax.random.split(key, 4)
    z = 0.5 * jax.random.normal(kz, (steps, batch, hidden))
    w = jax.random.normal(kw, (hidden, hidden)) / np.sqrt(hidden)
    g = jax.random.normal(kg, (steps, batch, hidden))
    mask = None
    if masked:
        lengths = jax.random.randint(kl, (batch,), 1, steps + 1)
        mask = (jnp.arange(steps)[:, None] < lengths[None, :])[..., None]
    return z, w, g, mask


def stacked_problems(key, count, masked):
    """``count`` random problems stacked on a leading (vmapped) axis: z, w, g, mask."""
    problems = [random_problem(k, masked=masked) for k in jax.random.split(key, count)]
    z, w, g = (jnp.stack([p[i] for p in problems]) for i in range(3))
    return z, w, g, (jnp.stack([p[3] for p in problems]) if masked else None)


def rel_err(a, b):
    return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("unroll", [1, 8])
def test_custom_vjp_equals_autodiff(activation, masked, unroll):
    z, w, g, mask = random_problem(jax.random.key(0), masked=masked)

    def loss(fn, z, w):
        return jnp.sum(fn(z, w, activation, mask, unroll) * g)

    custom = jax.grad(lambda z, w: loss(bptt.recurrence, z, w), argnums=(0, 1))(z, w)
    reference = jax.grad(lambda z, w: loss(bptt.recurrence_autodiff, z, w), argnums=(0, 1))(z, w)
    np.testing.assert_allclose(bptt.recurrence(z, w, activation, mask, unroll),
                               bptt.recurrence_autodiff(z, w, activation, mask), atol=1e-6)
    for a, b in zip(custom, reference):
        assert float(jnp.max(jnp.abs(b))) > 1e-3
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("masked", [False, True])
def test_custom_vjp_under_vmap(activation, masked):
    z, w, g, mask = stacked_problems(jax.random.key(1), 4, masked)

    def loss(fn, z, w, g, m):
        return jnp.sum(fn(z, w, activation, m) * g)

    grad = lambda fn: jax.vmap(jax.grad(lambda z, w, g, m: loss(fn, z, w, g, m), argnums=(0, 1)),
                               in_axes=(0, 0, 0, 0 if masked else None))
    custom = jax.jit(grad(bptt.recurrence))(z, w, g, mask)
    reference = jax.jit(grad(bptt.recurrence_autodiff))(z, w, g, mask)
    for a, b in zip(custom, reference):
        assert rel_err(a, b) < 1e-5
    # and each vmapped lane equals its own unbatched gradient
    single = jax.grad(lambda z, w: loss(bptt.recurrence, z, w, g[2], None if mask is None else mask[2]),
                      argnums=(0, 1))(z[2], w[2])
    assert rel_err(custom[1][2], single[1]) < 1e-5


@pytest.mark.parametrize("init_name", ["np", "irnn", "np_tanh"])
@pytest.mark.parametrize("masked", [False, True])
def test_model_gradients_custom_equal_autodiff(init_name, masked):
    xs = jax.random.uniform(jax.random.key(2), (6, 40, 2))
    ys = jax.random.normal(jax.random.key(3), (6, 1))
    lengths = jnp.array([40, 3, 17, 25, 40, 1]) if masked else None
    grads = {}
    for backward in ("custom", "autodiff"):
        config, run = rnn.RNNConfig(input_size=2, hidden_size=20, init=init_name), rnn.Execution(backward=backward)
        params = rnn.init_params(jax.random.key(4), config)
        grads[backward] = jax.grad(
            lambda p: jnp.mean((rnn.apply(p, xs, config, lengths, run) - ys) ** 2))(params)
    for name in grads["custom"]:
        assert rel_err(grads["custom"][name], grads["autodiff"][name]) < 1e-5, name


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("backward", ["custom", "autodiff"])
def test_remat_equals_plain(masked, backward):
    xs = jax.random.uniform(jax.random.key(5), (3, 60, 2))
    lengths = jnp.array([60, 13, 41]) if masked else None
    out = {}
    for remat in (0, 10):
        config, run = rnn.RNNConfig(input_size=2, hidden_size=16), rnn.Execution(remat_every=remat, backward=backward)
        params = rnn.init_params(jax.random.key(6), config)
        out[remat] = jax.value_and_grad(lambda p: jnp.sum(rnn.apply(p, xs, config, lengths, run) ** 2))(params)
    np.testing.assert_allclose(out[0][0], out[10][0], rtol=1e-6)
    for name in out[0][1]:
        assert rel_err(out[10][1][name], out[0][1][name]) < 1e-5


def chunked_problem(key, steps=60, batch=5, inputs=3, hidden=12, masked=False):
    kx, ki, kb, kw, kg, kl = jax.random.split(key, 6)
    x = jax.random.normal(kx, (steps, batch, inputs))
    w_in = jax.random.normal(ki, (inputs, hidden))
    bias = 0.1 * jax.random.normal(kb, (hidden,))
    w = jax.random.normal(kw, (hidden, hidden)) / np.sqrt(hidden)
    g = jax.random.normal(kg, (batch, hidden))
    mask = None
    if masked:
        lengths = jax.random.randint(kl, (batch,), 1, steps + 1)
        mask = (jnp.arange(steps)[:, None] < lengths[None, :])[..., None]
    return x, w_in, bias, w, g, mask


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("chunk", [1, 10, 60])
@pytest.mark.parametrize("recompute", [True, False])
@pytest.mark.parametrize("inputs", [2, 6])  # <= 4: projected inside the loop step
def test_chunked_final_state_equals_autodiff(activation, masked, chunk, recompute, inputs):
    assert (inputs <= bptt.PROJECT_IN_STEP_MAX_INPUTS) == (inputs < 6)
    x, w_in, bias, w, g, mask = chunked_problem(jax.random.key(7), masked=masked, inputs=inputs)
    reference = lambda x, w_in, bias, w: jnp.sum(
        bptt.final_state_autodiff(x @ w_in + bias, w, activation, mask) * g)
    chunked = lambda x, w_in, bias, w: jnp.sum(
        bptt.final_state_chunked(x, w_in, bias, w, activation, mask, chunk=chunk,
                                 recompute=recompute) * g)
    args = (x, w_in, bias, w)
    np.testing.assert_allclose(jax.jit(chunked)(*args), reference(*args), rtol=1e-6)
    got = jax.jit(jax.grad(chunked, argnums=(0, 1, 2, 3)))(*args)
    expected = jax.grad(reference, argnums=(0, 1, 2, 3))(*args)
    for name, a, b in zip(("x", "w_in", "bias", "w"), got, expected):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, name
        assert rel_err(a, b) < 1e-5, name


def test_chunked_final_state_under_vmap():
    problems = [chunked_problem(k, masked=True) for k in jax.random.split(jax.random.key(8), 3)]
    stacked = [jnp.stack([p[i] for p in problems]) for i in range(6)]

    def grads(fn):
        return jax.jit(jax.vmap(jax.grad(lambda x, wi, b, w, g, m: jnp.sum(fn(x, wi, b, w, m) * g),
                                         argnums=(1, 2, 3))))(*stacked)

    got = grads(lambda x, wi, b, w, m: bptt.final_state_chunked(x, wi, b, w, "relu", m, chunk=15))
    expected = grads(lambda x, wi, b, w, m: bptt.final_state_autodiff(x @ wi + b, w, "relu", m))
    for a, b in zip(got, expected):
        assert rel_err(a, b) < 1e-5


def test_chunked_final_state_memory_does_not_grow_with_the_sequence():
    # XLA's buffer assignment of the compiled gradient: the chunked VJP holds no
    # [T, B, N] array, so its temporaries are a small fraction of the full-state VJP's.
    def temp_bytes(fn, steps):
        x, w_in, bias, w, g, _ = chunked_problem(jax.random.key(9), steps=steps, batch=8, inputs=1, hidden=32)
        loss = lambda w_in, bias, w: jnp.sum(fn(x, w_in, bias, w) * g)
        compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(w_in, bias, w).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    chunked = lambda x, wi, b, w: bptt.final_state_chunked(x, wi, b, w, chunk=50)
    full = lambda x, wi, b, w: bptt.final_state(x @ wi + b, w)
    states_bytes = 4000 * 8 * 32 * 4  # one [T, B, N] float32 array
    assert temp_bytes(full, 4000) > 2 * states_bytes
    assert temp_bytes(chunked, 4000) < 0.1 * states_bytes
    assert temp_bytes(chunked, 4000) < 1.2 * temp_bytes(chunked, 1000) + 80 * 8 * 32 * 4


@pytest.mark.parametrize("bptt_chunk", [0, 25, 10])
@pytest.mark.parametrize("masked", [False, True])
def test_model_with_bptt_chunks_equals_autodiff(bptt_chunk, masked):
    xs = jax.random.uniform(jax.random.key(10), (4, 50, 2))
    ys = jax.random.normal(jax.random.key(11), (4, 1))
    lengths = jnp.array([50, 7, 33, 49]) if masked else None
    grads = {}
    for backward, chunk in (("custom", bptt_chunk), ("autodiff", 0)):
        config, run = rnn.RNNConfig(input_size=2, hidden_size=16), rnn.Execution(backward=backward, bptt_chunk=chunk)
        params = rnn.init_params(jax.random.key(12), config)
        grads[backward] = jax.jit(jax.grad(lambda p: jnp.mean((rnn.apply(p, xs, config, lengths, run) - ys) ** 2)))(
            params)
    for name in grads["custom"]:
        assert rel_err(grads["custom"][name], grads["autodiff"][name]) < 1e-5, name


def test_bptt_chunk_length_rule_and_errors():
    # The plan's auto rule on a CPU backend: the divisor of T in [25, 200] nearest 100, else off;
    # elsewhere off. The model itself never decides from the backend.
    assert [parallel.auto_bptt_chunk((t,), "cpu") for t in (784, 400, 150, 50, 10_000, 361, 20)] == \
        [98, 100, 75, 50, 100, 0, 0]
    assert parallel.auto_bptt_chunk((400, 300), "cpu") == 100  # divides train and test lengths
    assert parallel.auto_bptt_chunk((784,), "gpu") == 0
    with pytest.raises(ValueError, match="bptt_chunk=30 must divide the sequence length 784"):
        rnn.Execution(bptt_chunk=30).check_length(784)
    with pytest.raises(ValueError, match="Execution.bptt_chunk must be 0 .off. or a positive int; got -1"):
        rnn.Execution(bptt_chunk=-1)
    config = rnn.RNNConfig(input_size=1, hidden_size=4)
    params = rnn.init_params(jax.random.key(0), config)
    with pytest.raises(ValueError, match="bptt_chunk=7 must divide the sequence length 20"):
        rnn.apply(params, jnp.ones((2, 20, 1)), config, execution=rnn.Execution(bptt_chunk=7))
    # the network's config holds what it is, not how it runs
    with pytest.raises(TypeError, match="bptt_chunk"):
        rnn.RNNConfig(input_size=1, bptt_chunk=7)
    with pytest.raises(TypeError, match="execution must be an rnn.Execution; got dict"):
        rnn.apply(params, jnp.ones((2, 20, 1)), config, execution={"bptt_chunk": 7})


def test_remat_bad_divisor():
    config = rnn.RNNConfig(input_size=1, hidden_size=4)
    params = rnn.init_params(jax.random.key(0), config)
    with pytest.raises(ValueError, match="remat_every=7 must be a positive divisor of the sequence length 20"):
        rnn.apply(params, jnp.ones((2, 20, 1)), config, execution=rnn.Execution(remat_every=7))


def test_unknown_backward():
    with pytest.raises(ValueError, match="Execution.backward: unknown value 'magic'; valid: custom, autodiff"):
        rnn.Execution(backward="magic")


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("masked", [False, True])
def test_final_state_vjp_under_vmap_equals_autodiff(activation, masked):
    z, w, g, mask = stacked_problems(jax.random.key(8), 3, masked)

    def grads(fn):
        loss = lambda z, w, g, m: jnp.sum(fn(z, w, activation, m) * g[-1])
        return jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)),
                                in_axes=(0, 0, 0, 0 if masked else None)))(z, w, g, mask)

    custom, reference = grads(bptt.final_state), grads(bptt.final_state_autodiff)
    for a, b in zip(custom, reference):
        assert float(jnp.max(jnp.abs(b))) > 1e-3
        assert rel_err(a, b) < 1e-5
    np.testing.assert_allclose(jax.vmap(lambda z, w: bptt.final_state(z, w, activation))(z, w),
                               jax.vmap(lambda z, w: bptt.recurrence(z, w, activation)[-1])(z, w), atol=1e-6)


SHARD_MAP_GRADS = """
import sys, jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, PartitionSpec as P
from nprnn_jax import rnn
mesh = Mesh(np.array(jax.devices()), ("data",))
xs = jax.random.uniform(jax.random.key(0), (4, 20, 2))
ys = jax.random.normal(jax.random.key(1), (4, 1))
worst = 0.0
for init_name, backward, remat in (("np", "custom", 0), ("np", "autodiff", 0), ("np", "custom", 5),
                                ("np", "autodiff", 5), ("np_tanh", "custom", 0), ("lstm", "custom", 0)):
    config, run = rnn.RNNConfig(input_size=2, hidden_size=8, init=init_name), rnn.Execution(backward=backward, remat_every=remat)
    params = rnn.init_params(jax.random.key(2), config)
    loss = lambda p, x, y: jnp.sum((rnn.apply(p, x, config, None, run) - y) ** 2)
    # The default shard_map (check_vma=True): replicated params, the batch split over "data".
    sharded = jax.jit(jax.shard_map(jax.grad(loss), mesh=mesh, in_specs=(P(), P("data"), P("data")),
                                    out_specs=P()))(params, xs, ys)
    whole = jax.grad(loss)(params, xs, ys)
    for name in whole:
        err = float(jnp.max(jnp.abs(sharded[name] - whole[name])) / jnp.max(jnp.abs(whole[name])))
        worst = max(worst, err)
print("DEVICES", jax.device_count(), "WORST", worst)
"""


@pytest.mark.slow
@pytest.mark.parametrize("devices", [2])
def test_gradients_inside_shard_map_with_vma_checks(devices):
    # Weights replicated, batch split: every backward mode must type-check under
    # shard_map's default check_vma=True and sum the weight gradients over devices.
    import os
    import subprocess
    import sys
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": device_flags(devices)}
    out = subprocess.run([sys.executable, "-c", SHARD_MAP_GRADS], env=env, capture_output=True, text=True,
                         timeout=300)
    assert f"DEVICES {devices} WORST" in out.stdout, out.stderr[-3000:]
    assert float(out.stdout.split("WORST")[1]) < 1e-5
