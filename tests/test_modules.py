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
    config = rnn.RNNConfig(input_size=3, hidden_size=16, output_size=16, preset="np")
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


@pytest.mark.parametrize("preset", list(rnn.PRESETS))
def test_linen_module_matches_core(preset):
    config = rnn.RNNConfig(input_size=2, hidden_size=12, output_size=3, preset=preset)
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


@pytest.mark.parametrize("preset", ["np", "irnn", "lstm"])
def test_nnx_module_matches_core(preset):
    config = rnn.RNNConfig(input_size=2, hidden_size=12, output_size=3, preset=preset)
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
