"""Back-propagation through time for the Elman recurrence, with a hand-written VJP.

`jax.grad` of a `lax.scan` accumulates ``dW_hh += h_{t-1}^T da_t`` inside the
backward loop: T small matmuls that each read and write the whole N x N
gradient. Here the backward scan carries only what is truly sequential, the
gradient reaching the hidden state::

    dh_t = g_t + c_t                       (g_t: the cotangent of the output h_t)
    da_t = m_t * f'(h_t) * dh_t            (f' from the saved output: ReLU h > 0, tanh 1 - h^2)
    c_{t-1} = da_t W^T + (1 - m_t) * dh_t  (m_t: 1 where step t is inside the sequence)

and the weight gradient is one large matmul after it, over all timesteps and
examples at once: ``dW = sum_t h_{t-1}^T da_t``. The input projection (and so
the gradients of ``W_hx`` and ``b_h``) stays outside, one matmul each way.

Shapes are time-major: ``z [T, B, N]`` (the projected inputs ``x_t W_hx + b``),
``w [N, N]``, ``mask [T, B, 1]`` or None; the result is all states ``[T, B, N]``.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp

ACTIVATIONS = ("relu", "tanh", "linear")  # linear: for analysis and tests


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")


def _varying_axes(x) -> frozenset:
    axis_type = getattr(jax.typeof(x), "manual_axis_type", None)
    return frozenset(axis_type.varying) if axis_type is not None else frozenset()


def _match_varying(*arrays):
    """Inside a `jax.shard_map` (with its default ``check_vma=True``), marks every array
    as varying over the union of the mesh axes the arrays vary over (`lax.pcast`).

    The weights of a data-parallel step are the same on every device while the
    inputs differ; the hand-written VJPs below return per-device weight gradients,
    so their inputs must agree on that; autodiff then sums the weight gradients
    over the devices (the transpose of the cast). Outside shard_map: a no-op."""
    axes = frozenset().union(*(_varying_axes(a) for a in arrays))
    if not axes:
        return arrays
    return tuple(a if _varying_axes(a) >= axes else
                 jax.lax.pcast(a, tuple(sorted(axes - _varying_axes(a))), to="varying") for a in arrays)


def _act(name, a):
    if name == "relu":
        return jax.nn.relu(a)
    return jnp.tanh(a) if name == "tanh" else a


def _act_grad_from_output(name, h):
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "tanh":
        return 1.0 - h * h
    return jnp.ones_like(h)


def _cell(activation, w):
    """One step ``(h, (z_t, m_t)) -> h_t``; where ``m_t`` is False the state is carried."""

    def cell(h, inputs):
        z_t, m_t = inputs
        h_new = _act(activation, z_t + h @ w)
        return h_new if m_t is None else jnp.where(m_t, h_new, h)

    return cell


def _forward(activation, unroll, z, w, mask):
    cell = _cell(activation, w)

    def step(h, inputs):
        h_new = cell(h, inputs)
        return h_new, h_new

    h0 = jnp.zeros_like(z[0])  # zeros_like: the same shard_map varying axes as z
    _, hs = jax.lax.scan(step, h0, (z, mask), unroll=unroll)
    return hs


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _recurrence(activation, unroll, z, w, mask):
    return _forward(activation, unroll, z, w, mask)


def _recurrence_fwd(activation, unroll, z, w, mask):
    hs = _forward(activation, unroll, z, w, mask)
    return hs, (hs, w, mask)


def _recurrence_bwd(activation, unroll, residuals, g):
    hs, w, mask = residuals
    das, dw = _backward(activation, unroll, hs, w, mask, g, None)
    return das, dw, None


def _backward(activation, unroll, hs, w, mask, g, g_last):
    """The backward scan and the weight gradient; returns ``(das, dW)``."""
    _, das = _backward_scan(activation, unroll, hs, w, mask, g, g_last)
    # dW = sum_t h_{t-1}^T da_t (h_0 = 0): one matmul over all T x B rows.
    n = hs.shape[-1]
    dw = hs[:-1].reshape(-1, n).T @ das[1:].reshape(-1, n)
    return das, dw


def _backward_scan(activation, unroll, hs, w, mask, g, g_last):
    """The backward scan; ``g [T, B, N]`` cotangents of every state, or only ``g_last``
    of the last one (then the scan starts from it and reads no per-step cotangents).
    Returns ``(c_0, das)``: the gradient reaching the state before step 1, and ``da_t``."""
    w_t = w.T

    def step(carry, inputs):
        g_t, h_t, m_t = inputs
        dh = carry if g_t is None else g_t + carry
        da = _act_grad_from_output(activation, h_t) * dh  # f' from the saved output, in the loop
        if m_t is not None:
            da = jnp.where(m_t, da, 0.0)
            carry = da @ w_t + jnp.where(m_t, 0.0, dh)
        else:
            carry = da @ w_t
        return carry, da

    c_last = jnp.zeros_like(hs[0]) if g_last is None else g_last
    return jax.lax.scan(step, c_last, (g, hs, mask), reverse=True, unroll=unroll)


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _forward_last(activation, unroll, z, w, mask):
    cell = _cell(activation, w)

    def step(h, inputs):
        return cell(h, inputs), None

    h_last, _ = jax.lax.scan(step, jnp.zeros_like(z[0]), (z, mask), unroll=unroll)
    return h_last


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _final_state(activation, unroll, z, w, mask):
    return _forward_last(activation, unroll, z, w, mask)  # no states kept when not differentiated


def _final_state_fwd(activation, unroll, z, w, mask):
    hs = _forward(activation, unroll, z, w, mask)
    return hs[-1], (hs, w, mask)


def _final_state_bwd(activation, unroll, residuals, g_last):
    hs, w, mask = residuals
    das, dw = _backward(activation, unroll, hs, w, mask, None, g_last)
    return das, dw, None


_final_state.defvjp(_final_state_fwd, _final_state_bwd)


def recurrence(z: jax.Array, w: jax.Array, activation: str = "relu",
               mask: Optional[jax.Array] = None, unroll: int = 1) -> jax.Array:
    """All hidden states of ``h_t = f(z_t + h_{t-1} w)``, ``h_0 = 0``, with the fast VJP.

    Args:
      z: ``[T, B, N]`` projected inputs.
      w: ``[N, N]`` recurrent kernel.
      activation: "relu", "tanh" or "linear".
      mask: optional ``[T, B, 1]`` booleans; where False the state is carried unchanged.
      unroll: scan unroll factor of both the forward and the backward loop.

    Returns:
      ``hs [T, B, N]``.
    """
    _check_activation(activation)
    z, w = _match_varying(z, w)
    return _recurrence(activation, unroll, z, w, mask)


def final_state(z: jax.Array, w: jax.Array, activation: str = "relu",
                mask: Optional[jax.Array] = None, unroll: int = 1) -> jax.Array:
    """The last state ``h_T`` of the recurrence, ``[B, N]``, with the fast VJP.

    Evaluated without differentiation it keeps no intermediate states (an
    evaluation over 10,000 sequences needs ``B x N`` memory, not ``T x B x N``);
    differentiated, it saves the states and runs the backward scan from
    ``dL/dh_T`` alone.
    """
    _check_activation(activation)
    z, w = _match_varying(z, w)
    return _final_state(activation, unroll, z, w, mask)


def recurrence_autodiff(z, w, activation="relu", mask=None, unroll=1):
    """The same recurrence differentiated by `jax.grad` of the plain scan (the reference)."""
    return _forward(activation, unroll, z, w, mask)


def final_state_remat(z, w, activation="relu", mask=None, unroll=1, remat_every: int = 100):
    """The last state ``h_T`` in memory that grows with T / k + k, not T.

    The sequence is split into chunks of ``k = remat_every`` steps; only the
    states at chunk boundaries are kept for the backward pass, and each chunk's
    states are recomputed (`jax.checkpoint`) when its gradient is needed. T must
    be a multiple of k.
    """
    z_c, m_c = _split_chunks(z, mask, remat_every)
    cell = _cell(activation, w)

    def step(h, inputs):
        return cell(h, inputs), None

    @jax.checkpoint
    def chunk(h, inputs):
        h, _ = jax.lax.scan(step, h, inputs, unroll=unroll)
        return h, None

    h_last, _ = jax.lax.scan(chunk, jnp.zeros_like(z[0]), (z_c, m_c))
    return h_last


def final_state_autodiff(z, w, activation="relu", mask=None, unroll=1):
    """``h_T`` of the plain scan (no states collected), differentiated by `jax.grad`."""
    return _forward_last(activation, unroll, z, w, mask)


# --- Long sequences: the fast VJP with the states recomputed chunk by chunk ---------------


# Inputs this narrow are projected inside the loop step, where the projection is a few
# fused multiply-adds, rather than as a [k, B, N] array before it (one write and one
# read of that array less per chunk).
PROJECT_IN_STEP_MAX_INPUTS = 4


def _chunk_forward(activation, unroll, x_c, w_in, bias, w, m_c, h0, collect):
    """One chunk from state ``h0``: the chunk's input projection (one matmul, or inside
    the step for narrow inputs) and its recurrence; returns (last state, the chunk's
    states ``[k, B, N]`` or None)."""
    cell = _cell(activation, w)
    if x_c.shape[-1] <= PROJECT_IN_STEP_MAX_INPUTS:
        def project(x_t):
            z_t = bias
            for i in range(x_t.shape[-1]):
                z_t = z_t + x_t[:, i:i + 1] * w_in[i]
            return z_t
        inputs = x_c
    else:
        project = lambda z_t: z_t
        inputs = x_c @ w_in + bias

    def step(h, xs):
        x_t, m_t = xs
        h_new = cell(h, (project(x_t), m_t))
        return h_new, (h_new if collect else None)

    return jax.lax.scan(step, h0, (inputs, m_c), unroll=unroll)


def check_remat_every(remat_every: int, steps: int):
    """Raises unless the chunk length ``remat_every`` is a positive divisor of ``steps``."""
    if remat_every < 1 or steps % remat_every:
        raise ValueError(f"remat_every={remat_every} must be a positive divisor of the sequence length {steps}")


def _split_chunks(x, mask, chunk):
    steps = x.shape[0]
    check_remat_every(chunk, steps)
    split = lambda a: None if a is None else a.reshape(steps // chunk, chunk, *a.shape[1:])
    return split(x), split(mask)


def _chunked_forward(activation, unroll, chunk, x, w_in, bias, w, mask, keep):
    """``keep``: None (nothing), "starts" (the state entering each chunk) or "states" (all)."""
    x_c, m_c = _split_chunks(x, mask, chunk)
    h0 = jnp.zeros_like(x[0, :, :1] * bias)  # [B, N], with the varying axes of the inputs
    if keep != "starts" and x.shape[-1] <= PROJECT_IN_STEP_MAX_INPUTS:
        # Nothing per chunk to bound (the projection is inside the step): one flat scan,
        # without the per-chunk state buffers and their copies into the stacked result.
        h_last, hs = _chunk_forward(activation, unroll, x, w_in, bias, w, mask, h0, collect=keep == "states")
        return h_last, None if hs is None else hs.reshape(x_c.shape[:2] + hs.shape[1:])

    def body(h, inputs):
        xi, mi = inputs
        h_next, hs = _chunk_forward(activation, unroll, xi, w_in, bias, w, mi, h, collect=keep == "states")
        return h_next, {None: None, "starts": h, "states": hs}[keep]

    return jax.lax.scan(body, h0, (x_c, m_c))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _final_state_chunked(activation, unroll, chunk, recompute, x, w_in, bias, w, mask):
    return _chunked_forward(activation, unroll, chunk, x, w_in, bias, w, mask, None)[0]


def _final_state_chunked_fwd(activation, unroll, chunk, recompute, x, w_in, bias, w, mask):
    h_last, kept = _chunked_forward(activation, unroll, chunk, x, w_in, bias, w, mask,
                                    "starts" if recompute else "states")
    return h_last, (kept, x, w_in, bias, w, mask)


def _final_state_chunked_bwd(activation, unroll, chunk, recompute, residuals, g_last):
    kept, x, w_in, bias, w, mask = residuals
    x_c, m_c = _split_chunks(x, mask, chunk)
    n = w.shape[0]
    if recompute:
        starts, states = kept, None
    else:  # all states kept [C, k, B, N]: chunk c starts from chunk c-1's last state
        states = kept
        starts = jnp.concatenate([jnp.zeros_like(kept[:1, 0]), kept[:-1, -1]], axis=0)

    def body(carry, inputs):
        dh, dw, dw_in, db = carry
        xi, mi, h_start, hs = inputs
        if hs is None:
            _, hs = _chunk_forward(activation, unroll, xi, w_in, bias, w, mi, h_start, collect=True)
        dh, das = _backward_scan(activation, unroll, hs, w, mi, None, dh)
        # The chunk's weight gradients as single matmuls over its k x B rows.
        h_prev = jnp.concatenate([h_start[None], hs[:-1]], axis=0).reshape(-1, n)
        flat_das = das.reshape(-1, n)
        dw = dw + h_prev.T @ flat_das
        dw_in = dw_in + xi.reshape(-1, xi.shape[-1]).T @ flat_das
        db = db + jnp.sum(flat_das, axis=0)
        dx = das @ w_in.T
        return (dh, dw, dw_in, db), dx

    init = (g_last, jnp.zeros_like(w), jnp.zeros_like(w_in), jnp.zeros_like(bias))
    (_, dw, dw_in, db), dx = jax.lax.scan(body, init, (x_c, m_c, starts, states), reverse=True)
    return dx.reshape(x.shape), dw_in, db, dw, None


_final_state_chunked.defvjp(_final_state_chunked_fwd, _final_state_chunked_bwd)


def final_state_chunked(x: jax.Array, w_in: jax.Array, bias: jax.Array, w: jax.Array,
                        activation: str = "relu", mask: Optional[jax.Array] = None, unroll: int = 1,
                        chunk: int = 100, recompute: bool = True) -> jax.Array:
    """``h_T`` of ``h_t = f(x_t w_in + bias + h_{t-1} w)`` in memory bounded by the chunk, with the fast VJP.

    For long sequences (T = 10,000): the sequence is cut into chunks of
    ``k = chunk`` steps, and each chunk's input projection (one matmul of
    its k x B rows) and states are computed where they are needed, so no
    ``[T, B, N]`` array exists: the forward pass keeps the T / k states that
    enter the chunks, and the backward pass walks the chunks in reverse,
    recomputes a chunk's k states from the state entering it, runs the backward
    scan of `recurrence` over them and adds the chunk's gradients of ``w``,
    ``w_in`` and ``bias`` as single matmuls over its k x B rows. Memory:
    ``O(T B I + (T / k + k) B N)``; time: one extra forward pass.

    Args:
      x: ``[T, B, I]`` inputs, time-major.
      w_in: ``[I, N]`` input kernel; bias: ``[N]``; w: ``[N, N]`` recurrent kernel.
      activation, mask, unroll: as in `recurrence`.
      chunk: the chunk length k; it must divide T (`rnn.Execution`'s ``remat_every`` with
        ``recompute``, its ``bptt_chunk`` without).
      recompute: True (the default) keeps only the states entering the chunks and
        recomputes the rest; False keeps every state (``[T, B, N]``, like
        `final_state`) but still works chunk by chunk, so every other array
        (projected inputs, gradients) is a chunk long.
    """
    _check_activation(activation)
    _split_chunks(x, mask, chunk)  # the divisor check, before tracing the VJP
    x, w_in, bias, w = _match_varying(x, w_in, bias, w)
    return _final_state_chunked(activation, unroll, chunk, bool(recompute), x, w_in, bias, w, mask)
