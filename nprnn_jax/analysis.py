"""The paper's dynamical-systems argument, computed: phase portraits, spectra,
input sensitivity and Lyapunov exponents of Elman RNNs.

With zero input and zero bias a ReLU RNN with positive definite ``W_hh`` evolves
as ``h_{t+1} = W_hh h_t`` inside the positive orthant, so the eigenvalues of
``W_hh`` decide everything (Talathi & Vartak, Sec. 3). Everything here works on
any parameter dict of `nprnn_jax.rnn` (sRNN inits), initial or trained.

Convention: row vectors, ``h_t = f(x_t W_hx + h_{t-1} W_hh + b_h)``.
"""

from __future__ import annotations

import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from nprnn_jax import bptt


def symmetric_2x2(eigenvalues, angle: float = math.pi / 6) -> np.ndarray:
    """A symmetric 2 x 2 matrix with the given eigenvalues and eigenvectors rotated by ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return rotation @ np.diag(eigenvalues) @ rotation.T


#: The four cases of the paper's argument, as 2 x 2 recurrent matrices.
EIGENVALUE_CASES = {
    "both < 1 (decay to 0)": symmetric_2x2([0.9, 0.6]),
    "both > 1 (divergence)": symmetric_2x2([1.1, 1.05]),
    "one = 1, one < 1 (line attractor)": symmetric_2x2([1.0, 0.6]),
    "both = 1 (identity: all fixed)": np.eye(2),
}


def zero_input_trajectories(w_hh, initial_states, num_steps: int, activation: str = "relu"):
    """States of ``h_{t+1} = f(h_t W_hh)`` from each initial state.

    Args:
      w_hh: ``[N, N]``.
      initial_states: ``[K, N]``.
      num_steps: steps to take.

    Returns:
      ``[K, num_steps + 1, N]``, the initial states first.
    """
    w_hh = jnp.asarray(w_hh, jnp.float32)
    h0 = jnp.asarray(initial_states, jnp.float32)

    def step(h, _):
        h = bptt._act(activation, h @ w_hh)
        return h, h

    _, hs = jax.lax.scan(step, h0, None, length=num_steps)
    return jnp.concatenate([h0[:, None], jnp.swapaxes(hs, 0, 1)], axis=1)


def _final_state(params, xs, activation, lengths=None):
    """``h_T`` of one sequence ``xs [T, I]`` (for Jacobians)."""
    z = xs @ params["W_hx"] + params["b_h"]
    mask = None if lengths is None else (jnp.arange(xs.shape[0]) < lengths)[:, None, None]
    return bptt.recurrence_autodiff(z[:, None], params["W_hh"], activation, mask)[-1, 0]


def input_sensitivity(params: Mapping, xs, activation: str = "relu") -> jax.Array:
    """``||d h_T / d x_t||`` (Frobenius) for t = 1..T, averaged over the batch.

    Args:
      params: an sRNN parameter dict (``W_hx``, ``W_hh``, ``b_h``).
      xs: ``[batch, T, input_size]``.
      activation: "relu", "tanh" or "linear".

    Returns:
      ``[T]``; entry ``t`` is the sensitivity to the input at step t + 1, so
      the lag ``T - t`` decreases along the array.
    """
    jac = jax.vmap(jax.jacrev(lambda x: _final_state(params, x, activation)))(xs)  # [B, N, T, I]
    return jnp.mean(jnp.sqrt(jnp.sum(jac ** 2, axis=(1, 3))), axis=0)


def lyapunov_exponent(params: Mapping, xs, activation: str = "relu", key=None) -> jax.Array:
    """A finite-time estimate of the largest Lyapunov exponent along data trajectories.

    Propagates a unit tangent vector ``q`` with the step Jacobians
    ``J_t = d h_t / d h_{t-1}`` (``q <- q J_t``, renormalized every step) and
    returns the batch mean of ``(1/T) sum_t log ||q J_t||``.
    """
    w_hh, w_hx, b = params["W_hh"], params["W_hx"], params["b_h"]
    batch, steps, _ = xs.shape
    n = w_hh.shape[0]
    key = jax.random.key(0) if key is None else key
    q0 = jax.random.normal(key, (batch, n))
    q0 = q0 / jnp.linalg.norm(q0, axis=-1, keepdims=True)
    z = jnp.swapaxes(xs @ w_hx + b, 0, 1)  # [T, B, N]

    def step(carry, z_t):
        h, q = carry

        def f(h_prev):
            return bptt._act(activation, z_t + h_prev @ w_hh)

        h_new, q_new = jax.jvp(f, (h,), (q,))
        growth = jnp.linalg.norm(q_new, axis=-1)
        q_new = q_new / jnp.maximum(growth, 1e-30)[:, None]
        return (h_new, q_new), jnp.log(jnp.maximum(growth, 1e-30))

    _, logs = jax.lax.scan(step, (jnp.zeros((batch, n)), q0), z)
    return jnp.mean(jnp.sum(logs, axis=0) / steps)


def trailing_zero_steps(xs) -> float:
    """The mean over the batch ``xs [B, T, I]`` of the number of final steps whose input is all
    zero (pixel MNIST: the background rows below the digit)."""
    nonzero = np.any(np.asarray(xs) != 0, axis=-1)  # [B, T]
    steps = xs.shape[1]
    last = np.where(nonzero.any(axis=1), steps - 1 - np.argmax(nonzero[:, ::-1], axis=1), -1)
    return float(np.mean(steps - 1 - last))


def spectrum(w_hh) -> np.ndarray:
    """Eigenvalues of ``W_hh`` (complex in general; real for the symmetric inits)."""
    return np.linalg.eigvals(np.asarray(w_hh, np.float64))


def eigenvalues_near_one(w_hh, within: float = 0.05) -> int:
    """How many eigenvalues of ``W_hh`` lie within ``within`` of 1 (complex distance): the
    directions along which a (near-)linear recurrence keeps a signal over long lags."""
    return int(np.sum(np.abs(spectrum(w_hh) - 1.0) <= within + 1e-12))  # 0.95 is within 0.05 of 1


def sensitivity_any(params: Mapping, xs, config) -> jax.Array:
    """`input_sensitivity` for any init of `nprnn_jax.rnn` (sRNN or LSTM; ``config`` an
    `rnn.RNNConfig`): ``||d h_T / d x_t||`` for t = 1..T, averaged over the batch ``xs``."""
    from nprnn_jax import rnn

    final = lambda x: rnn.final_hidden(params, x[None], config)[0]  # noqa: E731
    jac = jax.vmap(jax.jacrev(final))(xs)  # [B, N, T, I]
    return jnp.mean(jnp.sqrt(jnp.sum(jac ** 2, axis=(1, 3))), axis=0)


def memory_horizon(sensitivity, fraction: float = 1e-3):
    """The smallest lag k (steps back from the last input) at which the sensitivity
    ``||d h_T / d x_{T-k}||`` (as `input_sensitivity` returns it, lag decreasing along the
    array) is below ``fraction`` times its lag-0 value; None when no lag within the sequence
    falls that low (the horizon is beyond T)."""
    by_lag = np.asarray(sensitivity, np.float64)[::-1]
    if not by_lag[0] > 0:
        return 0
    below = np.nonzero(by_lag < fraction * by_lag[0])[0]
    return int(below[0]) if below.size else None


# --- figures --------------------------------------------------------------------------

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_phase_portraits(path, num_steps: int = 30, grid: int = 7):
    """One PNG, four panels: trajectories of a 2-unit ReLU RNN with zero input for the four cases."""
    plt = _pyplot()
    axis = np.linspace(0.05, 1.0, grid)
    starts = np.array([[a, b] for a in axis for b in axis])
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for ax, (title, w) in zip(axes, EIGENVALUE_CASES.items()):
        traj = np.asarray(zero_input_trajectories(w, starts, num_steps))
        for path_k in traj:
            ax.plot(path_k[:, 0], path_k[:, 1], lw=0.8, color="tab:blue", alpha=0.7)
            ax.plot(path_k[-1, 0], path_k[-1, 1], "o", ms=2.5, color="tab:red")
        values, vectors = np.linalg.eigh(w)
        for value, vector in zip(values, vectors.T):
            vector = vector * np.sign(vector.sum() or 1)
            ax.arrow(0, 0, 0.6 * vector[0], 0.6 * vector[1], color="k", width=0.004)
            ax.annotate(f"{value:.2f}", 0.65 * vector, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.05, 1.6)
        ax.set_ylim(-0.05, 1.6)
        ax.set_aspect("equal")
        ax.set_xlabel("h1")
    axes[0].set_ylabel("h2")
    fig.suptitle(f"2-unit ReLU RNN, zero input: {num_steps} steps from a grid of states (red: end)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_spectra(spectra: Mapping[str, np.ndarray], path, columns: int = 3):
    """Eigenvalues of each named ``W_hh`` in the complex plane, with the unit circle; the
    panels in rows of ``columns``."""
    plt = _pyplot()
    columns = min(columns, len(spectra))
    rows = -(-len(spectra) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.6 * rows), squeeze=False)
    theta = np.linspace(0, 2 * np.pi, 200)
    for ax, (name, values) in zip(axes.flat, spectra.items()):
        ax.plot(np.cos(theta), np.sin(theta), color="0.7", lw=0.8, label="unit circle")
        ax.scatter(values.real, values.imag, s=8)
        near_one = int(np.sum(np.abs(values - 1) < 0.05))
        ax.set_title(f"{name}: largest |eigenvalue| {np.abs(values).max():.3f}\n"
                     f"{near_one} of {len(values)} within 0.05 of 1", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlabel("real part")
        ax.set_ylabel("imaginary part")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(spectra):]:
        ax.axis("off")
    fig.suptitle("eigenvalues of W_hh (grey: the unit circle)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


SENSITIVITY_RANGE = 1e-12  # the y axis spans this factor below the largest value


def plot_sensitivity(curves: Mapping[str, np.ndarray], path, title: str = ""):
    """``||d h_T / d x_t||`` against the lag ``T - t`` (log scale), one line per name.

    The y axis spans `SENSITIVITY_RANGE` below the largest value; smaller values
    (down to exact zeros, e.g. iRNN's underflow) are drawn on that floor, so that
    they do not squash the other curves. Returns the y-axis limits.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    top = max([float(np.max(v)) for v in curves.values() if np.size(v)] + [1e-30])
    floor = top * SENSITIVITY_RANGE
    for name, values in curves.items():
        values = np.asarray(values)
        lags = np.arange(len(values))[::-1]
        ax.plot(lags, np.maximum(values, floor), label=name)
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, top * 2)
    ax.set_xlabel("lag T - t (steps between the input and the last state)")
    ax.set_ylabel(f"input sensitivity ||d h_T / d x_t||\n(log; floor {SENSITIVITY_RANGE:g} x max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "input sensitivity", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    limits = ax.get_ylim()
    plt.close(fig)
    return limits
