import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nprnn_jax import initializers, modules, rnn

KEY = jax.random.key(0)


def test_linen_simple_cell_accepts_np_init():
    layer = nn.RNN(nn.SimpleCell(features=16, activation_fn=nn.relu,
                                 kernel_init=initializers.random_walk_normal(),
                                 recurrent_kernel_init=initializers.np_init()))
    xs = jnp.ones((2, 7, 3))
    variables = layer.init(KEY, xs)
    w_hh = variables["params"]["cell"]["h"]["kernel"]
    eig = np.linalg.eigvalsh(np.asarray(w_hh, np.float64))
    assert abs(eig[-1] - 1) < 1e-5 and eig[0] > 0
    # The Flax cell computes the same recurrence as our core with these weights.
    cell = variables["params"]["cell"]
    params = {"W_hx": cell["i"]["kernel"], "W_hh": w_hh,
              "b_h": cell["i"]["bias"] + cell["h"].get("bias", 0.0),
              "W_hy": jnp.eye(16), "b_y": jnp.zeros(16)}
    config = rnn.RNNConfig(input_size=3, hidden_size=16, output_size=16, init="np")
    np.testing.assert_allclose(layer.apply(variables, xs)[:, -1], rnn.apply(params, xs, config),
                               atol=1e-5)


def test_nnx_simple_cell_accepts_np_init():
    cell = nnx.SimpleCell(3, 16, activation_fn=nnx.relu, rngs=nnx.Rngs(0),
                          recurrent_kernel_init=initializers.np_init(),
                          kernel_init=initializers.random_walk_normal())
    layer = nnx.RNN(cell)
    out = layer(jnp.ones((2, 7, 3)))
    assert out.shape == (2, 7, 16)
    w_hh = np.asarray(cell.dense_h.kernel[...], np.float64)
    np.testing.assert_allclose(w_hh, w_hh.T)
    assert abs(np.linalg.eigvalsh(w_hh)[-1] - 1) < 1e-5


@pytest.mark.parametrize("init_name", list(rnn.INITS))
def test_linen_module_matches_core(init_name):
    config = rnn.RNNConfig(input_size=2, hidden_size=12, output_size=3, init=init_name)
    xs = jax.random.uniform(jax.random.key(1), (4, 9, 2))
    lengths = jnp.array([9, 2, 5, 9])
    module = modules.LinenRNN(config)
    variables = module.init(KEY, xs)
    assert set(variables["params"]) == set(rnn.param_specs(config))
    np.testing.assert_array_equal(module.apply(variables, xs, lengths),
                                  rnn.apply(variables["params"], xs, config, lengths))
    # Same parameters from the core's init_params: same outputs.
    core_params = rnn.init_params(jax.random.key(7), config)
    np.testing.assert_array_equal(module.apply({"params": core_params}, xs),
                                  rnn.apply(core_params, xs, config))


@pytest.mark.parametrize("init_name", ["np", "irnn", "lstm"])
def test_nnx_module_matches_core(init_name):
    config = rnn.RNNConfig(input_size=2, hidden_size=12, output_size=3, init=init_name)
    xs = jax.random.uniform(jax.random.key(1), (4, 9, 2))
    module = modules.NNXRNN(config, rngs=nnx.Rngs(params=3))
    params = module.params_dict()
    np.testing.assert_array_equal(module(xs), rnn.apply(params, xs, config))
    # Its initial parameters are the core's for the same key.
    core = rnn.init_params(nnx.Rngs(params=3).params(), config)
    for name in core:
        np.testing.assert_array_equal(params[name], core[name])
    # Gradients flow through the NNX module like through the core.
    grads = nnx.grad(lambda m: jnp.sum(m(xs) ** 2))(module)
    core_grads = jax.grad(lambda p: jnp.sum(rnn.apply(p, xs, config) ** 2))(params)
    for name in core_grads:
        np.testing.assert_allclose(getattr(grads, name)[...], core_grads[name], atol=1e-6)


def test_linen_module_takes_the_input_size_from_its_inputs():
    module = modules.LinenRNN(rnn.RNNConfig(hidden_size=12, output_size=2, init="np"))
    xs = jax.random.uniform(jax.random.key(1), (3, 5, 4))
    variables = module.init(KEY, xs)
    assert variables["params"]["W_hx"].shape == (4, 12)
    config = rnn.RNNConfig(input_size=4, hidden_size=12, output_size=2, init="np")
    np.testing.assert_array_equal(module.apply(variables, xs), rnn.apply(variables["params"], xs, config))
    with pytest.raises(ValueError, match="input_size=0: give the input size"):
        rnn.init_params(KEY, rnn.RNNConfig(hidden_size=12))


@pytest.mark.parametrize("init_name", ["np", "irnn", "nrnn", "np_tanh"])
def test_elman_cells_in_flax_rnn_layers_reproduce_the_core(init_name):
    xs = jax.random.uniform(jax.random.key(2), (3, 9, 2))
    config = rnn.RNNConfig(input_size=2, hidden_size=10, output_size=1, init=init_name)
    readout = {"W_hy": jnp.zeros((10, 1)), "b_y": jnp.zeros(1)}
    layer = nn.RNN(modules.ElmanCell(features=10, init_name=init_name))
    variables = layer.init(KEY, xs)
    cell = variables["params"]["cell"]
    assert set(cell) == {"W_hx", "W_hh", "b_h"}
    np.testing.assert_allclose(layer.apply(variables, xs), rnn.hidden_states({**cell, **readout}, xs, config),
                               rtol=1e-5, atol=1e-6)
    nnx_cell = modules.NNXElmanCell(2, 10, init_name, rngs=nnx.Rngs(0))
    params = {"W_hx": nnx_cell.W_hx[...], "W_hh": nnx_cell.W_hh[...], "b_h": nnx_cell.b_h[...], **readout}
    np.testing.assert_allclose(nnx.RNN(nnx_cell)(xs), rnn.hidden_states(params, xs, config), rtol=1e-5, atol=1e-6)
    # the init_name's initializers: the NNX cell's weights equal the core's for the same key
    core = rnn.init_params(nnx.Rngs(0).params(), config)
    np.testing.assert_array_equal(nnx_cell.W_hh[...], core["W_hh"])
    with pytest.raises(ValueError, match="the Elman cells cover the sRNN inits"):
        modules.NNXElmanCell(2, 10, "lstm", rngs=nnx.Rngs(0))


def test_which_modules_draw_the_cores_values_for_a_key():
    config = rnn.RNNConfig(input_size=2, hidden_size=6, init="np")
    core = rnn.init_params(nnx.Rngs(params=KEY).params(), config)  # the key NNX's rngs hand out
    nnx_module = modules.NNXRNN(config, rngs=nnx.Rngs(params=KEY))
    for name, value in core.items():
        np.testing.assert_array_equal(nnx_module.params_dict()[name], value)
    linen = modules.LinenRNN(config).init(nnx.Rngs(params=KEY).params(), jnp.ones((1, 3, 2)))["params"]
    assert not np.allclose(linen["W_hh"], core["W_hh"])  # same initializer, other draw (documented)
    np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(linen["W_hh"], np.float64))[-1], 1.0, atol=1e-5)
