"""Initializers for ReLU recurrent networks, in the style of `jax.nn.initializers`.

Every public function here is a *builder*: it captures its hyperparameters and
returns ``init(key, shape, dtype=None, out_sharding=None) -> Array``, the
signature of `jax.nn.initializers`: ``dtype=None`` is JAX's default float
(float32, float64 under x64), a non-float dtype raises `ValueError`, and
``out_sharding`` (a `jax.sharding.Sharding`, or a `PartitionSpec` under a mesh)
places the result. So the result drops into ``kernel_init=`` or
``recurrent_kernel_init=`` of any Flax layer::

    >>> import flax.linen as nn
    >>> from nprnn_jax import initializers
    >>> cell = nn.SimpleCell(features=100, activation_fn=nn.relu,
    ...                      recurrent_kernel_init=initializers.np_init())

The np initialization of Talathi & Vartak (arXiv:1511.03771, Eq. 9) is the
composition of two builders::

    np_init() == eigen_normalized(positive_definite(add_identity=True))

    R ~ N(0, 1)^(N x N),   A = R^T R / N + I,   W_hh = A / lambda_max(A)

so that W_hh is symmetric positive definite with largest eigenvalue exactly 1
and every other eigenvalue in (0, 1).

Conventions: kernels follow Flax, ``[fan_in, fan_out]`` and ``y = x @ W``; for
an input kernel ``W_hx`` of shape ``[input_size, hidden_size]`` the hidden size
N is ``shape[-1]``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Initializer = Callable[..., jax.Array]

__all__ = [
    "Initializer",
    "identity",
    "positive_definite",
    "eigen_normalized",
    "np_init",
    "spectral_normalized",
    "gaussian",
    "nrnn_init",
    "random_walk_gain",
    "random_walk_normal",
    "glorot_normal",
    "normal",
    "orthogonal",
    "zeros",
]

# Re-exported from jax so that users find every initializer of the paper in
# one place; we do not rewrite what jax already has.
glorot_normal = jax.nn.initializers.glorot_normal
normal = jax.nn.initializers.normal
orthogonal = jax.nn.initializers.orthogonal
zeros = jax.nn.initializers.zeros


def _looks_like_key(value) -> bool:
    if not isinstance(value, (jax.Array, np.ndarray)):
        return False
    dtype = value.dtype
    return jnp.issubdtype(dtype, jax.dtypes.prng_key) or (dtype == np.uint32 and value.shape[-1:] == (2,))


def _builder(fn):
    """Marks a builder: called like an initializer (with a PRNG key), it says to call it first."""
    @functools.wraps(fn)
    def build(*args, **kwargs):
        if args and _looks_like_key(args[0]):
            raise TypeError(
                f"{fn.__name__} is a builder of initializers: call it first, e.g. "
                f"kernel_init=initializers.{fn.__name__}() (it was given a PRNG key, as an initializer is)")
        return fn(*args, **kwargs)
    return build


def _square_size(shape: Sequence[int], name: str) -> int:
    shape = tuple(shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(
            f"{name} needs a square 2-D shape (N, N); got shape {shape}."
        )
    if shape[0] < 1:
        raise ValueError(f"{name} needs N >= 1; got shape {shape}.")
    return shape[0]


def _matrix_shape(shape: Sequence[int], name: str) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"{name} needs a 2-D shape (fan_in, fan_out) with positive sizes; "
            f"got shape {shape}."
        )
    return shape


def _requested_dtype(dtype, name: str) -> jnp.dtype:
    """``dtype``, or JAX's default float for None; `ValueError` for a non-float dtype."""
    dtype = jax.dtypes.canonicalize_dtype(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"{name}: dtype {dtype.name} is not a float dtype; an initializer of real weights "
                         "needs one (float32, bfloat16, float16 or float64)")
    return dtype


def _placed(value: jax.Array, out_sharding) -> jax.Array:
    """``value`` placed by ``out_sharding`` (None: left where it is), as `jax.nn.initializers`
    place theirs: a `PartitionSpec` is read against the mesh set by `jax.set_mesh`; on a mesh
    with Explicit axes (`jax.make_mesh`'s default) the array is resharded (its sharding is part
    of its type); on an Auto mesh it is placed by a sharding constraint (under `jit`) or
    `device_put` (eagerly), where `jax.random.normal(out_sharding=...)` refuses Auto axes."""
    if out_sharding is None:
        return value
    mesh = out_sharding.mesh if isinstance(out_sharding, jax.sharding.NamedSharding) else None
    if isinstance(out_sharding, jax.sharding.PartitionSpec):
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty:
            raise ValueError(f"out_sharding={out_sharding}: a PartitionSpec needs a mesh; call the initializer "
                             "under `with jax.set_mesh(mesh):` or pass a NamedSharding")
    if mesh is not None and mesh.explicit_axes:
        return jax.sharding.reshard(value, out_sharding)
    if isinstance(value, jax.core.Tracer) or isinstance(out_sharding, jax.sharding.PartitionSpec):
        return jax.lax.with_sharding_constraint(value, out_sharding)
    return jax.device_put(value, out_sharding)


def _initializer(name: str):
    """Gives ``fn(key, shape, dtype)`` the `jax.nn.initializers` signature
    ``init(key, shape, dtype=None, out_sharding=None)``: the dtype resolved and checked,
    the result placed by ``out_sharding``."""
    def wrap(fn):
        @functools.wraps(fn)
        def init(key, shape, dtype=None, out_sharding=None):
            return _placed(fn(key, tuple(shape), _requested_dtype(dtype, name)), out_sharding)
        del init.__wrapped__  # inspect.signature shows this signature, not fn's
        return init
    return wrap


def _compute_dtype(dtype) -> jnp.dtype:
    """The dtype used for eigen-decompositions: higher than `dtype` where possible.

    float64 when x64 is enabled; otherwise float32 (the best JAX offers without
    x64), which is still higher than bfloat16/float16 requests.
    """
    if jax.config.jax_enable_x64:
        return jnp.dtype(jnp.float64)
    return jnp.dtype(jnp.float32)


@_builder
def identity(gain: float = 1.0) -> Initializer:
    """The (scaled) identity: ``W = gain * I``.

    ``gain=1`` gives the IRNN of Le et al. (arXiv:1504.00941); a small gain
    (0.01 is the usual reading) gives the "scaled IRNN" (iRNN) baseline.

    Args:
      gain: the scale of the identity.

    Returns:
      ``init(key, shape, dtype)`` returning ``gain * eye(N)`` for shape (N, N).

    Example:
      >>> import jax
      >>> identity(0.5)(jax.random.key(0), (2, 2))
      Array([[0.5, 0. ],
             [0. , 0.5]], dtype=float32)
    """

    @_initializer("identity")
    def init(key, shape, dtype):
        del key
        n = _square_size(shape, "identity")
        return (gain * jnp.eye(n, dtype=jnp.float32)).astype(dtype)

    return init


@_builder
def positive_definite(add_identity: bool = True) -> Initializer:
    """A random symmetric positive (semi-)definite matrix ``R^T R / N (+ I)``.

    ``R`` is N x N with i.i.d. standard normal entries. With ``add_identity``
    every eigenvalue is at least 1; without it the spectrum follows the
    Marchenko-Pastur law on [0, 4] with many eigenvalues near 0.

    Args:
      add_identity: add ``I`` (the paper's choice, and every public
        reimplementation's).

    Returns:
      ``init(key, shape, dtype)`` for square shapes (N, N), marked
      ``init.symmetric = True``: the matrix is exactly symmetric (it is
      symmetrized after the product).
    """

    @_initializer("positive_definite")
    def init(key, shape, dtype):
        n = _square_size(shape, "positive_definite")
        work = jnp.promote_types(dtype, jnp.float32)
        r = jax.random.normal(key, (n, n), work)
        a = (r.T @ r) / n
        a = 0.5 * (a + a.T)
        if add_identity:
            a = a + jnp.eye(n, dtype=work)
        return a.astype(dtype)

    init.symmetric = True  # by construction: eigen_normalized need not check it
    return init


def _raise_if_asymmetric(b, tolerance):
    b = np.asarray(b, np.float64)
    scale = np.abs(b).max()
    asymmetry = np.abs(b - b.T).max() / (scale if scale > 0 else 1.0)
    if asymmetry > tolerance:
        raise ValueError(
            "eigen_normalized: the base initializer returned a non-symmetric "
            f"matrix (max |W - W^T| / max |W| = {float(asymmetry):.3g} > "
            f"{tolerance:g}); eigen_normalized only accepts initializers of "
            "symmetric matrices."
        )


@_builder
def eigen_normalized(base: Initializer, target: float = 1.0) -> Initializer:
    """Rescales a symmetric initializer so that its largest eigenvalue is ``target``.

    ``W = target * B / lambda_max(B)`` with ``B = base(key, shape)``. The
    eigenvalues are computed with `jnp.linalg.eigvalsh` in a higher precision
    than the requested dtype (float64 when x64 is enabled, else float32) and the
    result is cast to the requested dtype at the end.

    Args:
      base: an initializer that returns symmetric matrices.
      target: the largest eigenvalue of the result.

    Returns:
      ``init(key, shape, dtype)``. A non-symmetric output of ``base`` raises
      ``ValueError``: eagerly on the output itself; under `jit` (where the output
      is not known until run time) on ``base``'s output for a fixed probe key,
      computed while tracing. A base that declares itself symmetric by
      construction (``base.symmetric = True``, as `positive_definite` does) is
      not checked, so the traced program holds no host callback (`jax.export`
      works).
    """
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) or target <= 0:
        raise ValueError(f"eigen_normalized: target={target!r}: the largest eigenvalue must be a finite number > 0")
    checked = not getattr(base, "symmetric", False)

    @_initializer("eigen_normalized")
    def init(key, shape, dtype):
        _square_size(shape, "eigen_normalized")
        work = _compute_dtype(dtype)
        b = jnp.asarray(base(key, shape, work), work)
        tolerance = 100 * float(jnp.finfo(work).eps)
        if checked:
            if isinstance(b, jax.core.Tracer):
                with jax.ensure_compile_time_eval():
                    _raise_if_asymmetric(base(jax.random.PRNGKey(0), shape, work), tolerance)
            else:
                _raise_if_asymmetric(b, tolerance)
        b = 0.5 * (b + b.T)
        lambda_max = jnp.linalg.eigvalsh(b)[-1]
        return (b * (target / lambda_max)).astype(dtype)

    init.symmetric = True
    return init


@_builder
def np_init(add_identity: bool = True) -> Initializer:
    """The np initialization (Talathi & Vartak, arXiv:1511.03771, Eq. 9).

    ``W_hh = A / lambda_max(A)`` with ``A = R^T R / N + I``, ``R`` standard
    normal: symmetric positive definite, top eigenvalue 1, the rest in (0, 1).
    With ``add_identity`` the smallest eigenvalue is at least
    ``1 / lambda_max(A)`` (about 0.2 for N = 100).

    Args:
      add_identity: the "+ I" of Eq. 9 (default). Without it the matrix is
        much more contractive (many eigenvalues near 0).

    Returns:
      ``init(key, shape, dtype)`` for square shapes (N, N).

    Example:
      >>> w = np_init()(jax.random.key(0), (100, 100))
      >>> round(float(jnp.linalg.eigvalsh(w)[-1]), 5)
      1.0
    """
    return eigen_normalized(positive_definite(add_identity=add_identity), 1.0)


@_builder
def spectral_normalized(base: Initializer, target: float = 1.0) -> Initializer:
    """Rescales any square initializer so that its spectral radius is ``target``.

    ``W = target * B / max_i |lambda_i(B)|`` with ``B = base(key, shape)``; unlike
    `eigen_normalized` the base need not be symmetric, so the eigenvalues may be
    complex (`jnp.linalg.eigvals`, computed in float32 or float64 as in
    `eigen_normalized`). Nonsymmetric eigenvalues are implemented by JAX on CPU
    and GPU backends (not TPU).

    Args:
      base: an initializer of square matrices.
      target: the largest eigenvalue modulus of the result.

    Returns:
      ``init(key, shape, dtype)`` for square shapes (N, N).
    """

    @_initializer("spectral_normalized")
    def init(key, shape, dtype):
        _square_size(shape, "spectral_normalized")
        work = _compute_dtype(dtype)
        b = jnp.asarray(base(key, shape, work), work)
        radius = jnp.max(jnp.abs(jnp.linalg.eigvals(b)))
        return (b * (target / radius)).astype(dtype)

    return init


@_builder
def gaussian(gain: float = 1.0) -> Initializer:
    """I.i.d. ``N(0, gain^2 / N)`` entries for a square ``(N, N)`` matrix.

    The paper's gRNN (its scale is not stated; ``1/N`` variance is the natural
    reading, METHOD.md), and the base of the nRNN initialization. Not truncated.

    Returns:
      ``init(key, shape, dtype)`` for square shapes (N, N).
    """

    @_initializer("gaussian")
    def init(key, shape, dtype):
        n = _square_size(shape, "gaussian")
        work = jnp.promote_types(dtype, jnp.float32)
        return (gain / math.sqrt(n) * jax.random.normal(key, (n, n), work)).astype(dtype)

    return init


@_builder
def nrnn_init() -> Initializer:
    """The nRNN baseline of Talathi & Vartak (Table 1): a random Gaussian matrix
    normalized so that its largest eigenvalue modulus is 1.

    ``nrnn_init() == spectral_normalized(gaussian())``. Not symmetric, not
    positive definite: most eigenvalues are complex, spread over the unit disc.

    Example:
      >>> w = nrnn_init()(jax.random.key(0), (100, 100))
      >>> round(float(jnp.max(jnp.abs(jnp.linalg.eigvals(w)))), 5)
      1.0
    """
    return spectral_normalized(gaussian(), 1.0)


def random_walk_gain(hidden_size: int) -> float:
    """Sussillo & Abbott's random-walk gain for ReLU layers (arXiv:1412.6558).

    ``alpha = sqrt(2) * exp(1.2 / (max(N, 6) - 2.4))``; 1.4317 for N = 100.
    """
    if hidden_size < 1:
        raise ValueError(f"random_walk_gain needs hidden_size >= 1; got {hidden_size}.")
    return math.sqrt(2.0) * math.exp(1.2 / (max(hidden_size, 6) - 2.4))


@_builder
def random_walk_normal(n_from: str = "fan_out") -> Initializer:
    """Input weights ``N(0, alpha^2 / N)`` with the random-walk gain ``alpha = random_walk_gain(N)``.

    The paper's N is ambiguous (METHOD.md): for a kernel ``W_hx`` of shape
    ``[input_size, hidden_size]`` (Flax convention, ``h = x @ W``),
    ``n_from="fan_out"`` reads N as the hidden size (``shape[-1]``, our default:
    std 0.143 for 100 units) and ``n_from="fan_in"`` as the input size
    (``shape[0]``, Sussillo & Abbott's and TF's convention: std 1.40 for 2 inputs).
    ``"hidden"`` and ``"input"`` (the values of the experiments' ``input_init_n``
    setting) are the same two choices.

    Returns:
      ``init(key, shape, dtype)`` for 2-D shapes.
    """
    n_from = {"hidden": "fan_out", "input": "fan_in"}.get(n_from, n_from)  # the config's input_init_n names
    if n_from not in ("fan_out", "fan_in"):
        raise ValueError(f"random_walk_normal: unknown n_from {n_from!r}; valid: fan_out (or hidden), "
                         "fan_in (or input)")

    @_initializer("random_walk_normal")
    def init(key, shape, dtype):
        fan_in, fan_out = _matrix_shape(shape, "random_walk_normal")
        n = fan_out if n_from == "fan_out" else fan_in
        std = random_walk_gain(n) / math.sqrt(n)
        work = jnp.promote_types(dtype, jnp.float32)
        return (std * jax.random.normal(key, shape, work)).astype(dtype)

    return init
