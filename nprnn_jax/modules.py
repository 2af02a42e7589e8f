"""Thin Flax adapters (Linen and NNX) around the pure core in `nprnn_jax.rnn`.

The many-to-one modules hold exactly the parameters of `rnn.init_params` (same
names, shapes and initializers) and call `rnn.apply`, so for the same parameters
they give the core's outputs; the Linen module takes the input size from its
inputs (``RNNConfig.input_size=0``)::

    module = LinenRNN(RNNConfig(hidden_size=100, init="np"))
    variables = module.init(key, xs)          # {'params': {...same dict...}}
    module.apply(variables, xs) == rnn.apply(variables['params'], xs, config)

For sequence outputs, the cells `ElmanCell` (Linen) and `NNXElmanCell` (NNX) put
an init's recurrence into ``nn.RNN`` / ``nnx.RNN``; their states are the core's
`rnn.hidden_states`::

    states = nn.RNN(ElmanCell(features=100, init_name="np")).apply(variables, xs)   # [B, T, 100]
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from nprnn_jax import bptt, rnn


def _with_input_size(config: rnn.RNNConfig, xs) -> rnn.RNNConfig:
    return config if config.input_size else dataclasses.replace(config, input_size=int(xs.shape[-1]))


def _cell_specs(init: str, input_size: int, features: int, input_init_n: str) -> dict:
    config = rnn.RNNConfig(input_size=input_size, hidden_size=features, init=init, input_init_n=input_init_n)
    if config.cell == "lstm":
        raise ValueError("the Elman cells cover the sRNN inits; for an LSTM use Flax's LSTM cells")
    return {name: spec for name, spec in rnn.param_specs(config).items() if name in ("W_hx", "W_hh", "b_h")}


class ElmanCell(nn.RNNCellBase):
    """An init's Elman cell for ``nn.RNN``: ``h' = f(x W_hx + b_h + h W_hh)``, zero initial state.

    Parameters ``W_hx``, ``W_hh``, ``b_h`` with the init's initializers (the input size
    from the inputs); the output of each step is the new state. The init is the field
    ``init_name`` (a Linen module's field cannot be named ``init``: it would hide ``Module.init``).
    """

    features: int
    init_name: str = "np"  # the init (a Linen field cannot be named init: Module.init)
    input_init_n: str = "hidden"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, carry, inputs):
        specs = _cell_specs(self.init_name, inputs.shape[-1], self.features, self.input_init_n)
        p = {name: self.param(name, init, shape, self.param_dtype) for name, (init, shape) in specs.items()}
        h = bptt._act(rnn.get_init(self.init_name).cell, inputs @ p["W_hx"] + p["b_h"] + carry @ p["W_hh"])
        return h, h

    def initialize_carry(self, rng, input_shape):
        del rng
        return jnp.zeros(tuple(input_shape[:-1]) + (self.features,), self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class NNXElmanCell(nnx.RNNCellBase):
    """`ElmanCell` for ``nnx.RNN``: ``NNXElmanCell(in_features, hidden_features, init, rngs=...)``."""

    def __init__(self, in_features: int, hidden_features: int, init: str = "np", *,
                 input_init_n: str = "hidden", rngs: nnx.Rngs, param_dtype=jnp.float32):
        self.hidden_features, self.param_dtype = hidden_features, param_dtype
        self.activation = rnn.get_init(init).cell
        key = rngs.params()
        for name, (initializer, shape) in _cell_specs(init, in_features, hidden_features, input_init_n).items():
            setattr(self, name, nnx.Param(initializer(jax.random.fold_in(key, rnn.PARAM_KEY_IDS[name]), shape,
                                                      param_dtype)))

    def __call__(self, carry, inputs):
        h = bptt._act(self.activation, inputs @ self.W_hx[...] + self.b_h[...] + carry @ self.W_hh[...])
        return h, h

    def initialize_carry(self, input_shape, rngs=None, carry_init=None):
        del rngs, carry_init
        return jnp.zeros(tuple(input_shape[:-1]) + (self.hidden_features,), self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class LinenRNN(nn.Module):
    """Flax Linen module for the many-to-one RNN of `config`.

    Call: ``module.apply(variables, xs, lengths=None) -> [batch, output_size]``;
    ``execution``: how the recurrence runs (`rnn.Execution`, speed only).
    """

    config: rnn.RNNConfig
    param_dtype: jnp.dtype = jnp.float32
    execution: rnn.Execution = rnn.DEFAULT_EXECUTION

    @nn.compact
    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None) -> jax.Array:
        config = _with_input_size(self.config, xs)
        params = {
            name: self.param(name, init, shape, self.param_dtype)
            for name, (init, shape) in rnn.param_specs(config).items()
        }
        return rnn.apply(params, xs, config, lengths, self.execution)


class NNXRNN(nnx.Module):
    """Flax NNX module for the many-to-one RNN of `config`.

    ``NNXRNN(config, rngs=nnx.Rngs(0))(xs, lengths=None)``. Its parameters are
    the attributes named as in `rnn.param_specs`; `params_dict()` returns them
    as the core's dict; ``execution``: how the recurrence runs (`rnn.Execution`, speed only).
    """

    def __init__(self, config: rnn.RNNConfig, *, rngs: nnx.Rngs, param_dtype=jnp.float32,
                 execution: rnn.Execution = rnn.DEFAULT_EXECUTION):
        self.config, self.execution = config, execution
        key = rngs.params()
        for name, value in rnn.init_params(key, config, param_dtype).items():
            setattr(self, name, nnx.Param(value))

    def params_dict(self) -> rnn.Params:
        return {name: getattr(self, name)[...] for name in rnn.param_specs(self.config)}

    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None) -> jax.Array:
        return rnn.apply(self.params_dict(), xs, self.config, lengths, self.execution)
