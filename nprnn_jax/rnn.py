"""The recurrent networks of the paper as pure JAX functions.

Parameters are a plain dict (a pytree); ``init_params(key, config)`` makes
them and ``apply(params, xs, config, lengths=None)`` runs the network,
many-to-one::

    h_t = f(x_t W_hx + h_{t-1} W_hh + b_h),   h_0 = 0        (sRNN)
    y   = h_T W_hy + b_y

The input projection ``x_t W_hx + b_h`` for all timesteps is one matmul before
the recurrence; only ``h_{t-1} W_hh`` and the nonlinearity run inside
`jax.lax.scan`. The LSTM baseline follows the same pattern with its four gates.

Shapes: ``xs: [batch, time, input_size]``, ``lengths: [batch]`` (int), output
``[batch, output_size]``. Kernels are ``[fan_in, fan_out]``.

Variable lengths: with ``lengths`` the state stops changing after step
``lengths[b]`` of each example, so a padded sequence gives exactly the result
of the same sequence run alone at its own length (the padding goes at the end).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import jax
import jax.numpy as jnp

from nprnn_jax import bptt
from nprnn_jax import initializers as inits

Params = dict


@dataclasses.dataclass(frozen=True)
class Preset:
    """How one variant of the paper initializes and runs.

    Attributes:
      cell: "relu" or "tanh" (Elman sRNN) or "lstm".
      recurrent_init: initializer of ``W_hh`` (unused for the LSTM).
      input_init: initializer of ``W_hx`` ([input_size, hidden_size]).
      output_init: initializer of ``W_hy`` ([hidden_size, output_size]).
      description: one line for docs and results tables.
    """

    cell: str
    recurrent_init: Optional[inits.Initializer]
    input_init: inits.Initializer
    output_init: inits.Initializer
    description: str


# W_hy of the np variants: Glorot normal, N(0, 2 / (fan_in + fan_out)), not
# truncated (METHOD.md); jax's own variance_scaling builder gives it.
_glorot_normal_untruncated = jax.nn.initializers.variance_scaling(1.0, "fan_avg", "normal")
# Le et al. 2015 (IRNN): weights other than W_hh drawn from N(0, 0.001^2).
_le2015_normal = jax.nn.initializers.normal(0.001)

PRESETS: Mapping[str, Preset] = {
    "np": Preset("relu", inits.np_init(add_identity=True), inits.random_walk_normal(),
                 _glorot_normal_untruncated,
                 "np-RNN: ReLU, W_hh = (R^T R/N + I)/lambda_max (Talathi & Vartak Eq. 9)"),
    "np_no_identity": Preset("relu", inits.np_init(add_identity=False), inits.random_walk_normal(),
                             _glorot_normal_untruncated,
                             "np-RNN without + I: W_hh = (R^T R/N)/lambda_max"),
    "irnn": Preset("relu", inits.identity(1.0), _le2015_normal, _le2015_normal,
                   "IRNN: ReLU, W_hh = I, other weights N(0, 0.001^2) (Le et al.)"),
    "irnn_scaled": Preset("relu", inits.identity(0.01), _le2015_normal, _le2015_normal,
                          "iRNN: ReLU, W_hh = 0.01 I, other weights N(0, 0.001^2)"),
    "np_tanh": Preset("tanh", inits.np_init(add_identity=True), inits.random_walk_normal(),
                      _glorot_normal_untruncated,
                      "np-tanhRNN: tanh with the np initialization"),
    "tanh": Preset("tanh", jax.nn.initializers.orthogonal(), jax.nn.initializers.glorot_uniform(),
                   jax.nn.initializers.glorot_uniform(),
                   "tanh RNN: orthogonal W_hh, Glorot-uniform W_hx (Keras SimpleRNN defaults)"),
    "lstm": Preset("lstm", None, jax.nn.initializers.glorot_uniform(),
                   jax.nn.initializers.glorot_uniform(),
                   "LSTM: Glorot-uniform input, orthogonal recurrent, forget-gate bias 1"),
}



def get_preset(name: str) -> Preset:
    """Returns the preset called ``name``; ``ValueError`` listing the valid names."""
    if name not in PRESETS:
        raise ValueError(
            f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"
        )
    return PRESETS[name]


BACKWARDS = ("custom", "autodiff")


@dataclasses.dataclass(frozen=True)
class RNNConfig:
    """Static description of a network (hashable, so it can be a jit static arg).

    Attributes:
      input_size: features per timestep.
      hidden_size: N, the number of hidden units (100 in the paper).
      output_size: regression outputs or classes.
      preset: one of `PRESETS`.
      unroll: `lax.scan` unroll factor.
      backward: how the sRNN recurrence is differentiated: "custom" (the
        hand-written VJP of `nprnn_jax.bptt`, weight gradients as one matmul
        after the backward scan) or "autodiff" (`jax.grad` of the plain scan).
        The LSTM always uses autodiff.
      remat_every: if > 0, keep only every k-th state for the backward pass
        and recompute the rest, for long sequences in bounded memory; the
        sequence length must be a multiple of k. With backward="custom" the
        input projection is done chunk by chunk too and the hand-written VJP
        runs per chunk (`bptt.final_state_chunked`: no ``[T, B, N]`` array);
        with "autodiff", `jax.checkpoint` of chunked scans
        (`bptt.final_state_remat`). Many-to-one sRNN only.
      bptt_chunk: with backward="custom", many-to-one sRNN and no remat: run
        the forward and backward passes in chunks of k steps (the input
        projection, the weight gradients and all temporaries a chunk long; all
        states kept, nothing recomputed; `bptt.final_state_chunked` with
        ``recompute=False``). -1 (auto): on a CPU backend the divisor of T in
        [25, 200] nearest 100 (none: off), elsewhere off; 0: off; k > 0: k
        (must divide T). On XLA:CPU it is 1.0-1.2x faster on one device and
        1.2-1.3x when several host devices share the CPU (BENCHMARKS.md).
    """

    input_size: int
    hidden_size: int = 100
    output_size: int = 1
    preset: str = "np"
    unroll: int = 1
    backward: str = "custom"
    remat_every: int = 0
    bptt_chunk: int = -1

    def __post_init__(self):
        get_preset(self.preset)
        check_backward_settings(self.backward, self.remat_every, self.bptt_chunk, "RNNConfig.")
        for field in ("input_size", "hidden_size", "output_size", "unroll"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RNNConfig.{field} must be a positive int; got {value!r}")

    @property
    def cell(self) -> str:
        return get_preset(self.preset).cell


def _lstm_recurrent_init(key, shape, dtype=jnp.float32):
    """``W_h [N, 4N]``: one orthogonal N x N block per gate."""
    n = shape[0]
    orthogonal = jax.nn.initializers.orthogonal()
    return jnp.concatenate([orthogonal(k, (n, n), dtype) for k in jax.random.split(key, 4)], axis=1)


def _lstm_bias_init(key, shape, dtype=jnp.float32):
    """``b [4N]``: zeros, except the forget gate's bias, which is 1."""
    del key
    n = shape[0] // 4
    return jnp.zeros(shape, dtype).at[n:2 * n].set(1.0)


def param_specs(config: RNNConfig) -> dict:
    """``{name: (initializer, shape)}`` of every parameter, in a fixed order.

    The one place that says which weight gets which initializer: `init_params`
    and the Flax modules both read it. Keys are folded in per name, so the
    same key gives the same parameters in the pure core and in the modules.

    sRNN: ``W_hx [I, N]``, ``W_hh [N, N]``, ``b_h [N]``, ``W_hy [N, O]``, ``b_y [O]``.
    LSTM: ``W_x [I, 4N]``, ``W_h [N, 4N]``, ``b [4N]`` (gates i, f, g, o; the
    forget-gate bias is 1), ``W_hy``, ``b_y``.
    """
    preset = get_preset(config.preset)
    n, i, o = config.hidden_size, config.input_size, config.output_size
    zeros = jax.nn.initializers.zeros
    if preset.cell == "lstm":
        specs = {"W_x": (preset.input_init, (i, 4 * n)),
                 "W_h": (_lstm_recurrent_init, (n, 4 * n)),
                 "b": (_lstm_bias_init, (4 * n,))}
    else:
        specs = {"W_hx": (preset.input_init, (i, n)),
                 "W_hh": (preset.recurrent_init, (n, n)),
                 "b_h": (zeros, (n,))}
    specs["W_hy"] = (preset.output_init, (n, o))
    specs["b_y"] = (zeros, (o,))
    return specs


PARAM_KEY_IDS = {"W_hx": 0, "W_x": 0, "W_hh": 1, "W_h": 1, "b_h": 2, "b": 2, "W_hy": 3, "b_y": 4}


def init_params(key: jax.Array, config: RNNConfig, dtype=jnp.float32) -> Params:
    """Initial parameters for ``config`` as a dict of arrays (see `param_specs`).

    Each parameter's key is ``jax.random.fold_in(key, PARAM_KEY_IDS[name])``.
    Works under `jit` and `vmap` over ``key`` (many seeds at once).
    """
    return {name: init(jax.random.fold_in(key, PARAM_KEY_IDS[name]), shape, dtype)
            for name, (init, shape) in param_specs(config).items()}


def _check_inputs(params: Params, xs: jax.Array, config: RNNConfig, lengths):
    if xs.ndim != 3:
        raise ValueError(
            f"xs must have shape [batch, time, input_size]; got shape {xs.shape}"
        )
    if xs.shape[-1] != config.input_size:
        raise ValueError(
            f"xs has {xs.shape[-1]} features per step (shape {xs.shape}); the "
            f"config expects input_size={config.input_size}"
        )
    if lengths is not None and (jnp.ndim(lengths) != 1 or jnp.shape(lengths)[0] != xs.shape[0]):
        raise ValueError(
            f"lengths must have shape [batch] = [{xs.shape[0]}]; got shape {jnp.shape(lengths)}"
        )
    expected = {"W_hy", "b_y"} | ({"W_x", "W_h", "b"} if config.cell == "lstm" else {"W_hx", "W_hh", "b_h"})
    if set(params) != expected:
        raise ValueError(
            f"params have keys {sorted(params)}; preset {config.preset!r} needs {sorted(expected)}"
        )


def _step_mask(lengths, num_steps):
    """[time, batch, 1] booleans: True where step t < lengths[b]."""
    if lengths is None:
        return None
    t = jnp.arange(num_steps)[:, None]
    return (t < jnp.asarray(lengths)[None, :])[..., None]


def check_backward_settings(backward: str, remat_every: int, bptt_chunk: int, prefix: str = ""):
    """Validates the backward-pass settings shared by `RNNConfig` and `train.TrainConfig`."""
    if backward not in BACKWARDS:
        raise ValueError(f"unknown backward {backward!r}; valid: {', '.join(BACKWARDS)}")
    if not isinstance(remat_every, int) or remat_every < 0:
        raise ValueError(f"{prefix}remat_every must be an int >= 0; got {remat_every!r}")
    if not isinstance(bptt_chunk, int) or bptt_chunk < -1:
        raise ValueError(f"{prefix}bptt_chunk must be -1 (auto), 0 (off) or a positive int; got {bptt_chunk!r}")


def check_sequence_length(remat_every: int, bptt_chunk: int, num_steps: int):
    """Raises if the chunk length ``remat_every`` or ``bptt_chunk`` does not divide ``num_steps``."""
    if remat_every:
        bptt.check_remat_every(remat_every, num_steps)
    bptt_chunk_length(bptt_chunk, num_steps)


def bptt_chunk_length(bptt_chunk: int, num_steps: int) -> int:
    """The chunk length that ``RNNConfig.bptt_chunk`` means for ``num_steps`` (0: no chunks)."""
    if bptt_chunk == -1:
        if jax.default_backend() != "cpu":
            return 0
        divisors = [k for k in range(25, min(200, num_steps) + 1) if num_steps % k == 0]
        return min(divisors, key=lambda k: (abs(k - 100), -k)) if divisors else 0
    if bptt_chunk and num_steps % bptt_chunk:
        raise ValueError(f"bptt_chunk={bptt_chunk} must divide the sequence length {num_steps} "
                         "(or use -1 for auto, 0 for off)")
    return bptt_chunk


def _run(params: Params, xs: jax.Array, config: RNNConfig, lengths, collect: bool):
    """Scans the recurrence; returns (last hidden state, all states or None), time-major."""
    _check_inputs(params, xs, config, lengths)
    batch, num_steps, _ = xs.shape
    xs_tm = jnp.swapaxes(xs, 0, 1)  # [time, batch, input]
    mask = _step_mask(lengths, num_steps)
    n = config.hidden_size
    is_lstm = config.cell == "lstm"
    w_in, w_rec, bias = (
        (params["W_x"], params["W_h"], params["b"]) if is_lstm
        else (params["W_hx"], params["W_hh"], params["b_h"]))
    if not is_lstm and config.remat_every and not collect:
        if config.backward == "custom":  # chunk by chunk: no [T, B, N] array at all
            return bptt.final_state_chunked(xs_tm, w_in, bias, w_rec, config.cell, mask, config.unroll,
                                            config.remat_every), None
        return bptt.final_state_remat(xs_tm @ w_in + bias, w_rec, config.cell, mask, config.unroll,
                                      config.remat_every), None
    if not is_lstm and not collect and config.backward == "custom":
        chunk = bptt_chunk_length(config.bptt_chunk, num_steps)
        if chunk:
            return bptt.final_state_chunked(xs_tm, w_in, bias, w_rec, config.cell, mask, config.unroll,
                                            chunk, recompute=False), None
    projected = xs_tm @ w_in + bias  # the input projection: one matmul for all steps
    if not is_lstm:
        if not collect:
            if config.backward == "custom":
                return bptt.final_state(projected, w_rec, config.cell, mask, config.unroll), None
            return bptt.final_state_autodiff(projected, w_rec, config.cell, mask, config.unroll), None
        recurrence = bptt.recurrence if config.backward == "custom" else bptt.recurrence_autodiff
        hs = recurrence(projected, w_rec, config.cell, mask, config.unroll)
        return hs[-1], hs

    def step(carry, inputs):
        z, m = inputs
        h, c = carry
        z = z + h @ w_rec
        i_gate = jax.nn.sigmoid(z[..., :n])
        f_gate = jax.nn.sigmoid(z[..., n:2 * n])
        g = jnp.tanh(z[..., 2 * n:3 * n])
        o_gate = jax.nn.sigmoid(z[..., 3 * n:])
        c_new = f_gate * c + i_gate * g
        new = (o_gate * jnp.tanh(c_new), c_new)
        if m is not None:
            new = jax.tree.map(lambda a, b: jnp.where(m, a, b), new, carry)
        return new, (new[0] if collect else None)

    h0 = jnp.zeros_like(projected[0, :, :n])  # zeros_like keeps shard_map's varying axes
    if config.remat_every and not collect:
        raise ValueError("remat_every is implemented for the sRNN presets, not the LSTM")
    (h_last, _), hs = jax.lax.scan(step, (h0, h0), (projected, mask), unroll=config.unroll)
    return h_last, hs


def hidden_states(params: Params, xs: jax.Array, config: RNNConfig, lengths=None) -> jax.Array:
    """All hidden states ``h_1..h_T``, ``[batch, time, hidden]``.

    For an LSTM the hidden state is ``h`` (not the cell). With ``lengths`` the
    state of an example is frozen after its last step.
    """
    _, hs = _run(params, xs, config, lengths, collect=True)
    return jnp.swapaxes(hs, 0, 1)


def final_hidden(params: Params, xs: jax.Array, config: RNNConfig, lengths=None) -> jax.Array:
    """The last hidden state (``h_{lengths[b]}`` per example), ``[batch, hidden]``."""
    h_last, _ = _run(params, xs, config, lengths, collect=False)
    return h_last


def apply(params: Params, xs: jax.Array, config: RNNConfig, lengths=None) -> jax.Array:
    """Runs the network many-to-one: ``y = h_T W_hy + b_y``, ``[batch, output_size]``.

    Args:
      params: from `init_params` (or any dict with the same keys and shapes).
      xs: ``[batch, time, input_size]``.
      config: the `RNNConfig`.
      lengths: optional ``[batch]`` int lengths of padded sequences.
    """
    h_last = final_hidden(params, xs, config, lengths)
    return h_last @ params["W_hy"] + params["b_y"]
