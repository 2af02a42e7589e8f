import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nprnn_jax import initializers as inits

KEY = jax.random.key(0)


@pytest.mark.parametrize("n", [2, 3, 100, 257])
@pytest.mark.parametrize("add_identity", [True, False])
def test_np_init_spectrum(n, add_identity):
    w = inits.np_init(add_identity)(KEY, (n, n), jnp.float32)
    assert w.dtype == jnp.float32 and w.shape == (n, n)
    w64 = np.asarray(w, np.float64)
    np.testing.assert_array_equal(w64, w64.T)
    eig = np.linalg.eigvalsh(w64)
    assert abs(eig[-1] - 1.0) < 1e-5
    assert np.all(eig[:-1] > 0) and np.all(eig[:-1] < 1)
    if add_identity:
        # A = R^T R / N + I has lambda_min(A) >= 1, so lambda_min(W) >= 1 / lambda_max(A).
        a = np.asarray(inits.positive_definite(True)(KEY, (n, n), jnp.float32), np.float64)
        lambda_max_a = np.linalg.eigvalsh(a)[-1]
        assert eig[0] >= 1.0 / lambda_max_a - 1e-6
        np.testing.assert_allclose(w64, a / lambda_max_a, atol=1e-5)


def test_np_init_n100_range_matches_method():
    eig = np.linalg.eigvalsh(np.asarray(inits.np_init()(KEY, (100, 100)), np.float64))
    # METHOD.md: for N = 100 with + I, eigenvalues lie in about [0.2, 1].
    assert 0.15 < eig[0] < 0.3
    no_id = np.linalg.eigvalsh(np.asarray(inits.np_init(False)(KEY, (100, 100)), np.float64))
    assert no_id[0] < 0.01  # without + I, eigenvalues crowd near 0


def test_np_init_deterministic_and_key_dependent():
    init = inits.np_init()
    a = init(jax.random.key(1), (50, 50))
    b = init(jax.random.key(1), (50, 50))
    c = init(jax.random.key(2), (50, 50))
    np.testing.assert_array_equal(a, b)
    assert float(jnp.max(jnp.abs(a - c))) > 1e-3


def test_np_init_float64_precision():
    with jax.enable_x64(True):
        w = inits.np_init()(KEY, (64, 64), jnp.float64)
        assert w.dtype == jnp.float64
        assert abs(np.linalg.eigvalsh(np.asarray(w))[-1] - 1.0) < 1e-12


@pytest.mark.parametrize("builder", [inits.identity, inits.positive_definite, inits.np_init,
                                     lambda: inits.identity(0.01), inits.random_walk_normal])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtype_honoured(builder, dtype):
    w = builder()(KEY, (6, 6), dtype)
    assert w.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(w.astype(jnp.float32))))


def test_bfloat16_np_init_top_eigenvalue_close_to_one():
    w = inits.np_init()(KEY, (32, 32), jnp.bfloat16)
    top = np.linalg.eigvalsh(np.asarray(w.astype(jnp.float32), np.float64))[-1]
    assert abs(top - 1.0) < 1e-2  # bfloat16 has 8 bits of mantissa


@pytest.mark.parametrize("builder,name", [
    (inits.identity, "identity"), (inits.positive_definite, "positive_definite"),
    (inits.np_init, "eigen_normalized")])
@pytest.mark.parametrize("shape", [(3, 4), (3,), (2, 2, 2), ()])
def test_square_builders_reject_bad_shapes(builder, name, shape):
    with pytest.raises(ValueError, match=rf"{name}.*{re.escape(str(tuple(shape)))}"):
        builder()(KEY, shape)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), (0, 4)])
def test_random_walk_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        inits.random_walk_normal()(KEY, shape)


def test_identity_exact():
    np.testing.assert_array_equal(inits.identity()(KEY, (5, 5)), np.eye(5, dtype=np.float32))
    np.testing.assert_array_equal(inits.identity(0.01)(KEY, (3, 3)),
                                  np.float32(0.01) * np.eye(3, dtype=np.float32))


def test_random_walk_gain_and_std():
    assert round(inits.random_walk_gain(100), 4) == 1.4317
    assert inits.random_walk_gain(3) == inits.random_walk_gain(6)  # max(N, 6)
    w = inits.random_walk_normal()(KEY, (1000, 1000))
    expected = inits.random_walk_gain(1000) / math.sqrt(1000)
    assert abs(float(jnp.std(w)) / expected - 1.0) < 0.02
    # N is the output axis: a [2, 100] input kernel uses alpha(100) / sqrt(100).
    w = inits.random_walk_normal()(KEY, (400, 100))
    assert abs(float(jnp.std(w)) / (1.4317 / 10.0) - 1.0) < 0.02


def test_eigen_normalized_rejects_non_symmetric_eagerly():
    base = jax.nn.initializers.normal(1.0)
    with pytest.raises(ValueError, match="non-symmetric"):
        inits.eigen_normalized(base)(KEY, (4, 4))


def test_eigen_normalized_rejects_non_symmetric_under_jit_with_the_documented_value_error():
    init = inits.eigen_normalized(jax.nn.initializers.normal(1.0))
    with pytest.raises(ValueError, match="eigen_normalized: the base initializer returned a non-symmetric"):
        jax.jit(lambda k: init(k, (4, 4)))(KEY).block_until_ready()


def test_np_init_exports_without_host_callbacks():
    # the base is symmetric by construction: no check, no callback in the program
    exported = jax.export.export(jax.jit(lambda k: inits.np_init()(k, (8, 8))))(
        jax.ShapeDtypeStruct((2,), jnp.uint32))
    w = exported.call(jax.random.PRNGKey(3))
    np.testing.assert_allclose(w, inits.np_init()(jax.random.PRNGKey(3), (8, 8)), rtol=1e-6)
    program = jax.jit(lambda k: inits.np_init()(k, (8, 8))).lower(jax.random.PRNGKey(0)).as_text()
    assert not re.search(r"custom_call @\w*callback", program)  # host callbacks cannot be exported
    # a base that does not declare symmetry is checked while tracing, also without a callback
    checked = inits.eigen_normalized(lambda k, s, d=jnp.float32: inits.positive_definite()(k, s, d))
    program = jax.jit(lambda k: checked(k, (4, 4))).lower(jax.random.PRNGKey(0)).as_text()
    assert not re.search(r"custom_call @\w*callback", program)


@pytest.mark.parametrize("builder", ["identity", "positive_definite", "np_init", "nrnn_init", "gaussian",
                                     "random_walk_normal"])
def test_an_uncalled_builder_says_to_call_it(builder):
    with pytest.raises(TypeError, match=f"{builder} is a builder of initializers: call it first, e.g. "
                                        f"kernel_init=initializers.{builder}\\(\\)"):
        getattr(inits, builder)(jax.random.key(0), (4, 4), jnp.float32)
    with pytest.raises(TypeError, match="is a builder"):
        getattr(inits, builder)(jax.random.PRNGKey(0), (4, 4))


def test_eigen_normalized_target_and_composition():
    w = inits.eigen_normalized(inits.positive_definite(), target=0.9)(KEY, (20, 20))
    assert abs(np.linalg.eigvalsh(np.asarray(w, np.float64))[-1] - 0.9) < 1e-5
    np.testing.assert_array_equal(
        inits.np_init()(KEY, (20, 20)),
        inits.eigen_normalized(inits.positive_definite(True))(KEY, (20, 20)))


def test_np_init_jit_and_vmap_match_single_calls():
    init = inits.np_init()
    keys = jax.random.split(KEY, 8)
    batched = jax.jit(jax.vmap(lambda k: init(k, (30, 30))))(keys)
    assert batched.shape == (8, 30, 30)
    for i in range(8):
        np.testing.assert_allclose(batched[i], init(keys[i], (30, 30)), atol=1e-6)
    tops = np.linalg.eigvalsh(np.asarray(batched, np.float64))[:, -1]
    np.testing.assert_allclose(tops, 1.0, atol=1e-5)


def test_flax_default_dtype_signature():
    # jax.nn.initializers call init(key, shape) and init(key, shape, dtype).
    for builder in (inits.identity(), inits.np_init(), inits.random_walk_normal()):
        assert builder(KEY, (4, 4)).dtype == jnp.float32




@pytest.mark.parametrize("n", [2, 3, 50, 100])
@pytest.mark.parametrize("target", [1.0, 0.5])
def test_spectral_normalized_and_nrnn_init(n, target):
    key = jax.random.key(n)
    w = np.asarray(inits.spectral_normalized(inits.gaussian(), target)(key, (n, n)), np.float64)
    assert np.abs(np.linalg.eigvals(w)).max() == pytest.approx(target, rel=1e-5)
    base = np.asarray(inits.gaussian()(key, (n, n)), np.float64)
    # the same draw, rescaled: W / base is one constant
    ratio = w / base
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
    if target == 1.0:
        np.testing.assert_allclose(inits.nrnn_init()(key, (n, n)), w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_new_builders_honour_dtype_and_reject_bad_shapes(dtype):
    for builder in (inits.gaussian(), inits.nrnn_init()):
        assert builder(jax.random.key(0), (4, 4), dtype).dtype == dtype
        with pytest.raises(ValueError, match=r"square 2-D shape \(N, N\); got shape \(3, 4\)"):
            builder(jax.random.key(0), (3, 4))
    with pytest.raises(ValueError, match=r"unknown n_from .fan_avg.; valid: fan_out \(or hidden\), fan_in \(or input\)"):
        inits.random_walk_normal("fan_avg")


def test_random_walk_normal_reads_n_as_fan_out_or_fan_in():
    key = jax.random.key(1)
    out = np.asarray(inits.random_walk_normal()(key, (20, 400)))
    inp = np.asarray(inits.random_walk_normal("fan_in")(key, (20, 400)))
    assert out.std() == pytest.approx(inits.random_walk_gain(400) / np.sqrt(400), rel=0.03)
    assert inp.std() == pytest.approx(inits.random_walk_gain(20) / np.sqrt(20), rel=0.03)


ALL_BUILDERS = {"identity": lambda: inits.identity(), "positive_definite": lambda: inits.positive_definite(),
                "np_init": lambda: inits.np_init(), "nrnn_init": lambda: inits.nrnn_init(),
                "gaussian": lambda: inits.gaussian(), "random_walk_normal": lambda: inits.random_walk_normal()}


@pytest.mark.parametrize("name", sorted(ALL_BUILDERS))
def test_the_jax_initializer_protocol_out_sharding_places_the_result(name):
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("model",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "model"))
    init = ALL_BUILDERS[name]()
    placed = init(jax.random.key(0), (6, 6), jnp.float32, out_sharding=sharding)
    assert placed.sharding == sharding
    np.testing.assert_array_equal(placed, init(jax.random.key(0), (6, 6), jnp.float32))
    # under jit, the constraint travels into the compiled program
    jitted = jax.jit(lambda k: init(k, (6, 6), out_sharding=sharding))(jax.random.key(0))
    assert jitted.sharding.is_equivalent_to(sharding, 2)
    np.testing.assert_allclose(jitted, placed, rtol=1e-5, atol=1e-6)


MESH_SCRIPT = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from nprnn_jax import initializers as inits
names = ("identity", "positive_definite", "np_init", "nrnn_init", "gaussian", "random_walk_normal")
key = jax.random.key(0)
for kind in ("default", "Explicit", "Auto"):
    mesh = jax.make_mesh((2,), ("x",), **({} if kind == "default" else {"axis_types": (getattr(AxisType, kind),)}))
    for name in names + ("jax_normal",):
        init = jax.nn.initializers.normal() if name == "jax_normal" else getattr(inits, name)()
        reference = np.asarray(init(key, (4, 4), jnp.float32))
        for form in ("PartitionSpec", "NamedSharding"):
            for how in ("eager", "jit"):
                with jax.set_mesh(mesh):
                    sharding = P("x") if form == "PartitionSpec" else NamedSharding(mesh, P("x"))
                    call = lambda k: init(k, (4, 4), jnp.float32, out_sharding=sharding)
                    try:
                        out = jax.jit(call)(key) if how == "jit" else call(key)
                    except Exception as error:
                        print(kind, name, form, how, "refused", type(error).__name__)
                        continue
                    ok = (out.sharding.is_equivalent_to(NamedSharding(mesh, P("x")), 2)
                          and np.allclose(np.asarray(out), reference, rtol=1e-5, atol=1e-6))
                    print(kind, name, form, how, "placed" if ok else "WRONG", out.sharding.spec)
"""


@pytest.mark.slow
def test_out_sharding_on_two_device_meshes_of_each_axis_type():
    # jax.make_mesh's default axis type (Explicit) made every initializer of the project raise an
    # AssertionError from with_sharding_constraint where jax.nn.initializers.normal worked; with
    # Auto axes normal refuses a spec (its samplers take Explicit axes only) and ours place it.
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", MESH_SCRIPT], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines()]
    assert len(lines) == 3 * 7 * 4, result.stdout
    for kind, name, form, how, outcome, *_ in lines:
        if name == "jax_normal" and kind == "Auto":
            assert outcome == "refused", (kind, name, form, how, outcome)  # JAX's own behaviour
        else:
            assert outcome == "placed", (kind, name, form, how, outcome)


def test_a_partition_spec_without_a_mesh_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"out_sharding=P\('x',\): a PartitionSpec needs a mesh"):
        inits.np_init()(jax.random.key(0), (4, 4), out_sharding=jax.sharding.PartitionSpec("x"))


@pytest.mark.parametrize("name", sorted(ALL_BUILDERS))
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_non_float_dtypes_are_refused_naming_the_dtype(name, dtype):
    with pytest.raises(ValueError, match=f"dtype {jnp.dtype(dtype).name} is not a float dtype"):
        ALL_BUILDERS[name]()(jax.random.key(0), (3, 3), dtype)


@pytest.mark.parametrize("name", sorted(ALL_BUILDERS))
def test_dtype_none_is_the_default_float_without_warnings(name):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = ALL_BUILDERS[name]()(jax.random.key(0), (4, 4), None)
    assert w.dtype == jnp.float32


def test_the_docstring_examples_run_as_doctests():
    import doctest
    results = doctest.testmod(inits, extraglobs={"jax": jax, "jnp": jnp}, optionflags=doctest.ELLIPSIS,
                              verbose=False)
    assert results.failed == 0 and results.attempted >= 5, results


def test_the_package_declares_its_types():
    import pathlib
    assert (pathlib.Path(inits.__file__).parent / "py.typed").is_file()


def test_every_initializer_shows_the_jax_signature_with_its_defaults():
    import inspect
    for init in (inits.np_init(), inits.identity(), inits.positive_definite(),
                 inits.eigen_normalized(inits.positive_definite())):
        params = inspect.signature(init).parameters
        assert list(params) == ["key", "shape", "dtype", "out_sharding"], init
        assert params["dtype"].default is None and params["out_sharding"].default is None


@pytest.mark.parametrize("target", [float("nan"), float("inf"), 0.0, -1.0, True, "1"])
def test_eigen_normalized_refuses_a_target_that_is_not_a_finite_positive_number(target):
    with pytest.raises(ValueError, match=r"eigen_normalized: target=.*finite number > 0"):
        inits.eigen_normalized(inits.positive_definite(), target=target)
