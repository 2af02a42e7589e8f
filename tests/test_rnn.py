import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nprnn_jax import rnn

KEY = jax.random.key(42)
INIT_NAMES = list(rnn.INITS)


def reference_loop(params, xs, cell, lengths=None):
    """A hand-written per-step loop in float64 NumPy, independent of the scan."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    xs = np.asarray(xs, np.float64)
    batch, steps, _ = xs.shape
    outs = []
    for b in range(batch):
        length = steps if lengths is None else int(lengths[b])
        if cell == "lstm":
            n = p["W_h"].shape[0]
            h, c = np.zeros(n), np.zeros(n)
            sig = lambda z: 1 / (1 + np.exp(-z))
            for t in range(length):
                z = xs[b, t] @ p["W_x"] + h @ p["W_h"] + p["b"]
                i, f, g, o = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
                c = sig(f) * c + sig(i) * np.tanh(g)
                h = sig(o) * np.tanh(c)
        else:
            act = (lambda z: np.maximum(z, 0)) if cell == "relu" else np.tanh
            h = np.zeros(p["W_hh"].shape[0])
            for t in range(length):
                h = act(xs[b, t] @ p["W_hx"] + h @ p["W_hh"] + p["b_h"])
        outs.append(h @ p["W_hy"] + p["b_y"])
    return np.stack(outs)


def make(init_name, input_size=3, hidden_size=16, output_size=2):
    config = rnn.RNNConfig(input_size=input_size, hidden_size=hidden_size,
                           output_size=output_size, init=init_name)
    params = rnn.init_params(KEY, config)
    # Make the small default weights of irnn inits visible in the output.
    params = {k: (v * 300 if init_name.startswith("irnn") and k in ("W_hx", "W_hy") else v)
              for k, v in params.items()}
    params = {k: (v + 0.1 if k.startswith("b") else v) for k, v in params.items()}
    return config, params


@pytest.mark.parametrize("init_name", INIT_NAMES)
@pytest.mark.parametrize("unroll", [1, 4])
def test_scan_equals_python_loop(init_name, unroll):
    config, params = make(init_name)
    xs = jax.random.uniform(jax.random.key(1), (4, 20, 3))
    out = jax.jit(rnn.apply, static_argnums=(2, 4))(params, xs, config, None, rnn.Execution(unroll=unroll))
    ref = reference_loop(params, xs, config.cell)
    assert np.abs(ref).max() > 1e-2  # the comparison is not between zeros
    np.testing.assert_allclose(out, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("init_name", INIT_NAMES)
def test_masked_lengths_equal_single_runs(init_name):
    config, params = make(init_name)
    xs = jax.random.uniform(jax.random.key(2), (5, 12, 3))
    lengths = jnp.array([12, 1, 7, 3, 10])
    padded = rnn.apply(params, xs, config, lengths)
    for b in range(5):
        alone = rnn.apply(params, xs[b:b + 1, :int(lengths[b])], config)
        np.testing.assert_allclose(padded[b], alone[0], atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(padded, reference_loop(params, xs, config.cell, lengths),
                               atol=1e-6, rtol=1e-5)
    # Garbage in the padding changes nothing.
    noisy = xs + 100.0 * (jnp.arange(12)[None, :, None] >= lengths[:, None, None])
    np.testing.assert_array_equal(rnn.apply(params, noisy, config, lengths), padded)


@pytest.mark.parametrize("init_name", INIT_NAMES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_float64_reference(init_name, masked):
    config, params = make(init_name, hidden_size=10)
    xs = jax.random.uniform(jax.random.key(3), (3, 15, 3))
    ys = jax.random.normal(jax.random.key(4), (3, 2))
    lengths = jnp.array([15, 6, 11]) if masked else None

    def loss(p, x):
        return jnp.mean((rnn.apply(p, x, config, lengths) - ys) ** 2)

    grads32 = jax.grad(loss)(params, xs)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        grads64 = jax.grad(loss)(p64, jnp.asarray(xs, jnp.float64))
        # The float64 reference itself agrees with central finite differences.
        direction = jax.tree.map(lambda a: jax.random.normal(jax.random.key(5), a.shape, a.dtype), p64)
        eps = 1e-6
        plus = jax.tree.map(lambda a, d: a + eps * d, p64, direction)
        minus = jax.tree.map(lambda a, d: a - eps * d, p64, direction)
        fd = (loss(plus, xs) - loss(minus, xs)) / (2 * eps)
        analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads64), jax.tree.leaves(direction)))
        np.testing.assert_allclose(float(fd), float(analytic), rtol=1e-6, atol=1e-10)
        grads64 = jax.tree.map(np.asarray, grads64)
    for name in params:
        g32, g64 = np.asarray(grads32[name], np.float64), grads64[name]
        scale = np.abs(g64).max()
        assert np.abs(g32 - g64).max() <= 1e-4 * max(scale, 1e-8), name


def test_vmap_over_seeds_matches_single_inits():
    config = rnn.RNNConfig(input_size=2, hidden_size=8)
    keys = jax.random.split(KEY, 4)
    batched = jax.vmap(lambda k: rnn.init_params(k, config))(keys)
    xs = jnp.ones((2, 5, 2))
    outs = jax.vmap(lambda p: rnn.apply(p, xs, config))(batched)
    for i in range(4):
        single = rnn.init_params(keys[i], config)
        np.testing.assert_allclose(outs[i], rnn.apply(single, xs, config), atol=1e-6)


def test_hidden_states_last_equals_final_hidden():
    config, params = make("np")
    xs = jax.random.uniform(jax.random.key(6), (2, 9, 3))
    hs = rnn.hidden_states(params, xs, config)
    assert hs.shape == (2, 9, 16)
    np.testing.assert_allclose(hs[:, -1], rnn.final_hidden(params, xs, config), atol=1e-7)


def test_presets_use_the_documented_initializers():
    n = 100
    p = rnn.init_params(KEY, rnn.RNNConfig(input_size=2, hidden_size=n, init="np"))
    np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(p["W_hh"], np.float64))[-1], 1, atol=1e-5)
    assert float(jnp.abs(p["b_h"]).max()) == 0.0
    p = rnn.init_params(KEY, rnn.RNNConfig(input_size=2, hidden_size=n, init="irnn"))
    np.testing.assert_array_equal(p["W_hh"], np.eye(n))
    p = rnn.init_params(KEY, rnn.RNNConfig(input_size=2, hidden_size=n, init="irnn_scaled"))
    np.testing.assert_allclose(p["W_hh"], 0.01 * np.eye(n))
    p = rnn.init_params(KEY, rnn.RNNConfig(input_size=2, hidden_size=n, init="lstm"))
    np.testing.assert_array_equal(p["b"][n:2 * n], 1.0)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown init 'bogus'; valid inits: np, irnn, irnn_scaled, nrnn, ornn, grnn, np_tanh, np_no_identity, irnn_le"):
        rnn.RNNConfig(input_size=1, init="bogus")


def test_bad_shapes_are_clear_errors():
    config, params = make("np")
    with pytest.raises(ValueError, match=r"\[batch, time, input_size\].*\(4, 3\)"):
        rnn.apply(params, jnp.ones((4, 3)), config)
    with pytest.raises(ValueError, match="5 features.*input_size=3"):
        rnn.apply(params, jnp.ones((2, 4, 5)), config)
    with pytest.raises(ValueError, match=r"lengths must have shape \[batch\]"):
        rnn.apply(params, jnp.ones((2, 4, 3)), config, jnp.ones((3,), int))
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        rnn.RNNConfig(input_size=1, hidden_size=0)


# --- the paper's variants: independent checks of every init_name's weights -------------------

def _params(init_name, n=100, input_size=2, output_size=1, input_init_n="hidden", key=KEY):
    config = rnn.RNNConfig(input_size=input_size, hidden_size=n, output_size=output_size, init=init_name,
                           input_init_n=input_init_n)
    return {k: np.asarray(v, np.float64) for k, v in rnn.init_params(key, config).items()}


def _alpha(n):  # Sussillo & Abbott's random-walk gain, written out independently
    return np.sqrt(2.0) * np.exp(1.2 / (max(n, 6) - 2.4))


@pytest.mark.parametrize("init_name", rnn.PAPER_VARIANTS)
def test_paper_variants_share_w_hx_w_hy_and_zero_biases(init_name):
    n, inputs, outputs = 100, 50, 40  # enough entries to estimate a std within a few percent
    p = _params(init_name, n, inputs, outputs)
    assert p["W_hx"].std() == pytest.approx(_alpha(n) / np.sqrt(n), rel=0.05)  # 0.143, not 0.001
    assert p["W_hy"].std() == pytest.approx(np.sqrt(2.0 / (n + outputs)), rel=0.05)  # Glorot normal
    assert np.abs(p["W_hy"]).max() > 2.2 * np.sqrt(2.0 / (n + outputs))  # not truncated at 2 std
    assert np.all(p["b_h"] == 0) and np.all(p["b_y"] == 0)
    # The same key gives the same W_hx and W_hy for every variant: only W_hh differs.
    reference = _params("np", n, inputs, outputs)
    np.testing.assert_array_equal(p["W_hx"], reference["W_hx"])
    np.testing.assert_array_equal(p["W_hy"], reference["W_hy"])


def test_input_init_n_reads_n_as_the_input_size():
    p = _params("irnn", n=100, input_size=2)
    q = _params("irnn", n=100, input_size=2, input_init_n="input")
    assert q["W_hx"].std() / p["W_hx"].std() == pytest.approx(
        (_alpha(2) / np.sqrt(2)) / (_alpha(100) / np.sqrt(100)), rel=1e-6)  # same draw, 1.40 vs 0.143
    with pytest.raises(ValueError, match="input_init_n: unknown value 'output'; valid: hidden, input"):
        rnn.RNNConfig(input_size=2, input_init_n="output")


def test_nrnn_has_spectral_radius_one_and_is_not_symmetric():
    w = _params("nrnn")["W_hh"]
    eigenvalues = np.linalg.eigvals(w)
    assert np.abs(eigenvalues).max() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(w - w.T).max() > 0.1  # not symmetric, so not positive definite
    assert np.abs(eigenvalues.imag).max() > 0.1  # complex eigenvalues
    # a rescaled Gaussian: the entries' std is 1 / (sqrt(N) * spectral radius of the base), about 1/sqrt(N)
    assert w.std() * np.sqrt(100) == pytest.approx(1.0, rel=0.15)


def test_ornn_is_orthogonal_and_grnn_has_its_stated_std():
    w = _params("ornn")["W_hh"]
    np.testing.assert_allclose(w.T @ w, np.eye(100), atol=1e-5)
    g = _params("grnn", n=200)["W_hh"]
    assert g.std() == pytest.approx(1 / np.sqrt(200), rel=0.02)
    assert abs(g.mean()) < 3 / 200  # about 0
    assert np.abs(g - g.T).max() > 0.1


def test_np_variants_are_the_paper_eq9():
    for init_name, act in (("np", "relu"), ("np_tanh", "tanh")):
        w = _params(init_name)["W_hh"]
        eigenvalues = np.linalg.eigvalsh(w)
        np.testing.assert_allclose(w, w.T, atol=1e-7)
        assert eigenvalues[-1] == pytest.approx(1.0, abs=1e-5) and eigenvalues[0] > 0.1
        assert rnn.get_init(init_name).cell == act


def test_le_baselines_keep_their_small_weights():
    for init_name, gain in (("irnn_le", 1.0), ("irnn_scaled_le", 0.01)):
        p = _params(init_name, n=100, input_size=50, output_size=40)
        np.testing.assert_allclose(p["W_hh"], gain * np.eye(100), atol=1e-8)
        assert p["W_hx"].std() == pytest.approx(0.001, rel=0.05)
        assert p["W_hy"].std() == pytest.approx(0.001, rel=0.05)
    # their own W_hx and W_hy; the paper's variants share the paper's (no override)
    assert rnn.get_init("irnn_le").input_init is not None and rnn.get_init("irnn_le").output_init is not None
    assert rnn.get_init("irnn").input_init is None and rnn.get_init("irnn").output_init is None


def test_the_public_np_baseline_start_has_its_measured_scales_on_a_large_draw():
    # np_plrnn: W_hx ~ N(0, 0.0033^2), W_hy ~ N(0, 0.049^2), b_y ~ U(-0.158, 0.158), W_hh np's;
    # each initializer drawn at 1,000 x 1,000 (std of U(-a, a): a / sqrt(3)).
    specs = rnn.param_specs(rnn.RNNConfig(input_size=2, hidden_size=40, init="np_plrnn"))
    key = jax.random.key(3)
    w_hx = np.asarray(specs["W_hx"][0](jax.random.fold_in(key, 0), (1000, 1000)))
    w_hy = np.asarray(specs["W_hy"][0](jax.random.fold_in(key, 1), (1000, 1000)))
    b_y = np.asarray(specs["b_y"][0](jax.random.fold_in(key, 2), (1000, 1000)))
    assert w_hx.std() == pytest.approx(0.0033, rel=0.01) and abs(w_hx.mean()) < 1e-5
    assert w_hy.std() == pytest.approx(0.049, rel=0.01) and abs(w_hy.mean()) < 1e-4
    assert b_y.std() == pytest.approx(0.158 / np.sqrt(3), rel=0.01)
    assert b_y.min() >= -0.158 and b_y.max() <= 0.158 and b_y.max() > 0.1579
    # W_hh is np's own, and the other inits keep a zero output bias
    assert specs["W_hh"][0] is not None
    zero = rnn.init_params(key, rnn.RNNConfig(input_size=2, hidden_size=40, init="np"))["b_y"]
    assert not np.any(np.asarray(zero))
