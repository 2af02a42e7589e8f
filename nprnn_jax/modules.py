"""Thin Flax adapters (Linen and NNX) around the pure core in `nprnn_jax.rnn`.

Both modules hold exactly the parameters of `rnn.init_params` (same names,
shapes and initializers) and call `rnn.apply`, so for the same parameters they
give the core's outputs::

    module = LinenRNN(RNNConfig(input_size=2))
    variables = module.init(key, xs)          # {'params': {...same dict...}}
    module.apply(variables, xs) == rnn.apply(variables['params'], xs, config)
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from nprnn_jax import rnn


class LinenRNN(nn.Module):
    """Flax Linen module for the many-to-one RNN of `config`.

    Call: ``module.apply(variables, xs, lengths=None) -> [batch, output_size]``.
    """

    config: rnn.RNNConfig
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None) -> jax.Array:
        params = {
            name: self.param(name, init, shape, self.param_dtype)
            for name, (init, shape) in rnn.param_specs(self.config).items()
        }
        return rnn.apply(params, xs, self.config, lengths)


class NNXRNN(nnx.Module):
    """Flax NNX module for the many-to-one RNN of `config`.

    ``NNXRNN(config, rngs=nnx.Rngs(0))(xs, lengths=None)``. Its parameters are
    the attributes named as in `rnn.param_specs`; `params_dict()` returns them
    as the core's dict.
    """

    def __init__(self, config: rnn.RNNConfig, *, rngs: nnx.Rngs, param_dtype=jnp.float32):
        self.config = config
        key = rngs.params()
        for name, value in rnn.init_params(key, config, param_dtype).items():
            setattr(self, name, nnx.Param(value))

    def params_dict(self) -> rnn.Params:
        return {name: getattr(self, name)[...] for name in rnn.param_specs(self.config)}

    def __call__(self, xs: jax.Array, lengths: Optional[jax.Array] = None) -> jax.Array:
        return rnn.apply(self.params_dict(), xs, self.config, lengths)
