import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nprnn_jax import analysis, initializers, rnn


def test_two_unit_cases_match_analytic_behaviour():
    starts = np.array([[a, b] for a in np.linspace(0.1, 1, 4) for b in np.linspace(0.1, 1, 4)])
    cases = list(analysis.EIGENVALUE_CASES.values())
    # both < 1: decay to the origin
    end = np.asarray(analysis.zero_input_trajectories(cases[0], starts, 200))[:, -1]
    assert np.abs(end).max() < 1e-6
    # both > 1: divergence (norm grows at least like 1.05^t)
    traj = np.asarray(analysis.zero_input_trajectories(cases[1], starts, 100))
    assert np.all(np.linalg.norm(traj[:, -1], axis=1) > 1.05 ** 100 * 0.1)
    # one = 1, one < 1: convergence onto the top eigenvector, every state kept nonzero
    values, vectors = np.linalg.eigh(cases[2])
    top = vectors[:, np.argmax(values)]
    end = np.asarray(analysis.zero_input_trajectories(cases[2], starts, 200))[:, -1]
    cos = np.abs(end @ top) / np.linalg.norm(end, axis=1)
    assert np.all(cos > 1 - 1e-6)
    np.testing.assert_allclose(end @ top, starts @ top, rtol=1e-4)  # the projection is conserved
    # both = 1: every state is fixed
    traj = np.asarray(analysis.zero_input_trajectories(cases[3], starts, 50))
    np.testing.assert_array_equal(traj[:, -1], starts.astype(np.float32))


def linear_params(w_hh, input_size=3, seed=0):
    n = w_hh.shape[0]
    return {"W_hx": jax.random.normal(jax.random.key(seed), (input_size, n)) / math.sqrt(n),
            "W_hh": jnp.asarray(w_hh, jnp.float32), "b_h": jnp.zeros(n)}


def test_sensitivity_of_linear_identity_rnn_is_norm_of_input_weights():
    params = linear_params(jnp.eye(20))
    xs = jax.random.normal(jax.random.key(1), (4, 30, 3))
    sensitivity = analysis.input_sensitivity(params, xs, activation="linear")
    np.testing.assert_allclose(sensitivity, jnp.linalg.norm(params["W_hx"]), rtol=1e-5)


def test_sensitivity_of_np_init_approaches_projection_on_top_eigenvector():
    w = initializers.np_init()(jax.random.key(2), (20, 20))
    params = linear_params(w)
    xs = jax.random.normal(jax.random.key(3), (2, 400, 3))
    sensitivity = np.asarray(analysis.input_sensitivity(params, xs, activation="linear"))
    values, vectors = np.linalg.eigh(np.asarray(w, np.float64))
    top = vectors[:, -1]
    expected = np.linalg.norm(np.asarray(params["W_hx"], np.float64) @ top)
    # lag 0 sees all of W_hx; long lags only its projection on the top eigenvector
    assert sensitivity[-1] == pytest.approx(float(jnp.linalg.norm(params["W_hx"])), rel=1e-5)
    assert sensitivity[0] == pytest.approx(expected, rel=1e-3)
    gap = values[-2]  # the error decays like lambda_2 ** lag
    lag = 100
    assert abs(sensitivity[-1 - lag] - expected) <= 2 * gap ** lag * sensitivity[-1] + 1e-5
    assert np.all(np.diff(sensitivity) >= -1e-6)  # monotone in the lag for a PD matrix


def test_lyapunov_identity_and_scaled_identity():
    xs = 0.1 * jax.random.normal(jax.random.key(4), (3, 200, 3))
    for scale in (1.0, 0.9, 0.5):
        params = linear_params(scale * jnp.eye(10))
        estimate = float(analysis.lyapunov_exponent(params, xs, activation="linear"))
        assert estimate == pytest.approx(math.log(scale), abs=1e-5)
    # ReLU in its linear regime (positive states): the same
    params = linear_params(0.9 * jnp.eye(10))
    params["b_h"] = jnp.full(10, 5.0)
    relu = float(analysis.lyapunov_exponent(params, jnp.abs(xs), activation="relu"))
    assert relu == pytest.approx(math.log(0.9), abs=1e-5)


def test_np_init_lyapunov_below_identity():
    config = rnn.RNNConfig(input_size=2, hidden_size=50, init="np")
    params = rnn.init_params(jax.random.key(5), config)
    xs = jax.random.uniform(jax.random.key(6), (4, 100, 2))
    exponent = float(analysis.lyapunov_exponent(params, xs))
    assert -1.0 < exponent <= 1e-4  # top eigenvalue 1: no expansion


def test_spectrum_of_np_init_and_identity():
    w = initializers.np_init()(jax.random.key(7), (30, 30))
    values = analysis.spectrum(w)
    assert np.abs(values.imag).max() < 1e-6 and values.real.max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(analysis.spectrum(jnp.eye(4)), np.ones(4))


def test_trailing_zero_input_steps_by_hand():
    import numpy as np

    from nprnn_jax.analysis import trailing_zero_steps
    xs = np.zeros((3, 6, 2))
    xs[0, 2, 1] = 1.0  # last nonzero input at step 2: 3 trailing zero steps
    xs[1, 5, 0] = 0.5  # at the last step: 0
    # example 2 is all zero: 6
    assert trailing_zero_steps(xs) == pytest.approx((3 + 0 + 6) / 3)


def test_figures_are_written(tmp_path):
    analysis.plot_phase_portraits(tmp_path / "p.png", num_steps=5, grid=3)
    analysis.plot_spectra({"np": analysis.spectrum(jnp.eye(3))}, tmp_path / "s.png")
    analysis.plot_sensitivity({"np": np.ones(5)}, tmp_path / "x.png")
    for name in ("p.png", "s.png", "x.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_dynamics_binary_on_init_and_trained_workdir(tmp_path):
    import json

    from conftest import run_binary

    trained = tmp_path / "trained"
    result = run_binary("addition", "--config=experiments/configs/addition.py:smoke", "--config.learning_rates=0.01",
                        f"--workdir={trained}")
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "dyn"
    result = run_binary("dynamics", f"--trained_workdir={trained}", f"--workdir={out}", "--batch_size=4")
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads((out / "dynamics.json").read_text())
    assert set(numbers) == {"np init", "np trained (step 20)", "irnn init", "irnn trained (step 20)"}
    assert numbers["np init"]["max_abs_eigenvalue"] == pytest.approx(1.0, abs=1e-5)
    assert numbers["np init"]["eigenvalues"] != numbers["np trained (step 20)"]["eigenvalues"]
    assert len(numbers["irnn init"]["sensitivity"]) == 10
    for stage in numbers.values():  # what the gradient sees: finite numbers of every parameter
        assert set(stage["gradient_norms"]) == {"W_hx", "W_hh", "b_h", "W_hy", "b_y"}
        assert all(np.isfinite(v) for v in stage["gradient_norms"].values()) and stage["loss"] > 0
        assert stage["final_state_norm"] >= 0 and 0 <= stage["final_state_zero_share"] <= 1
        assert stage["trailing_zero_input_steps"] == 0.0  # addition's value channel is never all zero
    for name in ("phase_portraits.png", "spectra.png", "sensitivity.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    by_rate = run_binary("dynamics", f"--trained_workdir={trained}", f"--workdir={tmp_path / 'by_rate'}",
                         "--batch_size=4", "--learning_rate=0.01", "--seed=1")
    assert by_rate.returncode == 0, by_rate.stderr[-2000:]
    assert json.loads((tmp_path / "by_rate" / "dynamics.json").read_text())["np init"]["eigenvalues"] != \
        numbers["np init"]["eigenvalues"]  # seed 1, not seed 0
    for flag, message in (("--lr_index=99", "--lr_index=99: np has 1 (learning rate, dropout) settings"),
                          ("--seed=99", "--seed=99: the run's seeds are [0, 1]"),
                          ("--learning_rate=0.3", "has no single run at learning_rate=0.3"),
                          ("--hidden_size=0", "--hidden_size=0: must be >= 1")):
        out_of_range = run_binary("dynamics", f"--trained_workdir={trained}", f"--workdir={tmp_path / 'x'}", flag)
        assert out_of_range.returncode == 2 and message in out_of_range.stderr, out_of_range.stderr
        assert not (tmp_path / "x").exists()  # refused before anything was written
    bad = run_binary("dynamics", "--inits=np,lstm", f"--workdir={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "error: init 'lstm'" in bad.stderr


def test_sensitivity_axis_is_not_squashed_by_underflow(tmp_path):
    # iRNN's sensitivity underflows to 1e-31 and 0; the axis spans 1e-12 below the largest value
    low, high = analysis.plot_sensitivity({"np": np.array([1e-4, 0.5, 2.0]), "irnn_scaled": np.array([0.0, 1e-31, 1.0])},
                                          tmp_path / "s.png")
    assert low >= 2.0 * analysis.SENSITIVITY_RANGE / 2 * 0.99 and high >= 2.0


def test_spectra_come_in_rows_of_three_with_readable_labels(tmp_path):
    import struct
    spectra = {f"w{i}": np.linspace(0.1, 1.0, 10).astype(complex) for i in range(6)}
    analysis.plot_spectra(spectra, tmp_path / "spectra.png")
    width, height = struct.unpack(">II", (tmp_path / "spectra.png").read_bytes()[16:24])
    assert 1.0 < width / height < 2.0, (width, height)  # 3 x 2 panels, not one 6-panel row (5.6:1)
    from nprnn_jax import report
    assert report.label("test_accuracy").startswith("test accuracy") and report.label("test_mse") == "test MSE"


def test_memory_horizon_and_eigenvalues_near_one_against_hand_computed_values():
    # sensitivity by lag 0, 1, 2, ... = 1, 0.1, 0.01, 1e-3, 1e-4: below 1e-3 of lag 0 first at lag 4
    by_time = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])  # lag decreases along the array
    assert analysis.memory_horizon(by_time) == 4
    assert analysis.memory_horizon(by_time, fraction=0.05) == 2
    assert analysis.memory_horizon(np.ones(7)) is None  # never falls: beyond T
    w = np.diag([1.0, 0.97, 0.95, 0.9, -1.0])
    assert analysis.eigenvalues_near_one(w) == 3  # 1, 0.97 and 0.95 (|0.95 - 1| = 0.05 counts)
    assert analysis.eigenvalues_near_one(np.eye(4)) == 4


def test_sensitivity_of_any_preset_matches_the_srnn_formula_and_runs_for_lstm():
    from nprnn_jax import rnn

    key = jax.random.PRNGKey(0)
    xs = jax.random.uniform(key, (3, 12, 2))
    config = rnn.RNNConfig(input_size=2, hidden_size=8, init="irnn")
    params = rnn.init_params(key, config)
    np.testing.assert_allclose(np.asarray(analysis.sensitivity_any(params, xs, config)),
                               np.asarray(analysis.input_sensitivity(params, xs, "relu")), rtol=1e-5)
    lstm = rnn.RNNConfig(input_size=2, hidden_size=8, init="lstm")
    curve = np.asarray(analysis.sensitivity_any(rnn.init_params(key, lstm), xs, lstm))
    assert curve.shape == (12,) and np.isfinite(curve).all() and curve[-1] > curve[0]
