"""nprnn_jax: np-RNN (Talathi & Vartak, arXiv:1511.03771) in JAX and Flax."""

from nprnn_jax import initializers
from nprnn_jax import rnn
from nprnn_jax.rnn import INITS, RNNConfig, apply, init_params

__version__ = "0.1.0"

__all__ = ["initializers", "rnn", "INITS", "RNNConfig", "apply", "init_params"]
