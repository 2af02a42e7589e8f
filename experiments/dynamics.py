r"""The paper's dynamical-systems argument, computed and drawn for our models.

    python -m experiments.dynamics --inits=np,irnn,irnn_scaled --workdir=workdirs/dynamics
    python -m experiments.dynamics --trained_workdir=workdirs/addition --workdir=workdirs/dynamics_trained

Writes to --workdir:
  phase_portraits.png  a 2-unit ReLU RNN with zero input, for the four eigenvalue cases
  spectra.png          eigenvalues of W_hh per init (and after training, with --trained_workdir)
  sensitivity.png      ||d h_T / d x_t|| against the lag T - t, per init, before/after training
  dynamics.json        the numbers: spectra, sensitivity curves, finite-time Lyapunov exponents

With --trained_workdir (a workdir of a fixed-length task: addition, multiplication, mnist) the
inits, hidden size and task come from that workdir's config.json, and the trained
parameters of learning-rate index --lr_index and seed --seed from its last checkpoint.
"""

import json
import pathlib
import sys

import jax
import numpy as np
from absl import app, flags, logging

flags.DEFINE_string("inits", "np,irnn,irnn_scaled", "Comma list of sRNN inits (no lstm).")
flags.DEFINE_string("workdir", "workdirs/dynamics", "Where the figures and dynamics.json go.")
flags.DEFINE_string("trained_workdir", None, "A benchmark workdir (addition/multiplication) to analyse.")
flags.DEFINE_float("learning_rate", None, "The trained run's learning rate (as load_params names a run); "
                   "default: the one of --lr_index.")
flags.DEFINE_float("dropout", None, "The trained run's dropout rate (needed when the grid has several).")
flags.DEFINE_integer("lr_index", 0, "Index of the trained run's (learning rate, dropout) combination "
                     "when --learning_rate is not given.")
flags.DEFINE_integer("seed", 0, "Seed of the trained run to analyse.")
flags.DEFINE_integer("hidden_size", 100, "Hidden units (without --trained_workdir).")
flags.DEFINE_integer("seq_len", 100, "Length of the addition sequences used as inputs.")
flags.DEFINE_integer("batch_size", 16, "Sequences averaged over for sensitivity and Lyapunov.")

FLAGS = flags.FLAGS


def _analyse(params, batch, cell, rnn_config, task):
    """The spectrum, input sensitivity and Lyapunov exponent of one network, and what its
    gradient sees at that stage on ``batch``: the last hidden state's size, the share of its
    units at exactly 0 (ReLU), the task's loss and each parameter's gradient norm."""
    import jax.numpy as jnp

    from nprnn_jax import analysis, rnn

    xs = batch["xs"]
    spectrum = analysis.spectrum(params["W_hh"])
    sensitivity = np.asarray(analysis.input_sensitivity(params, xs, cell))
    h_last = rnn.final_hidden(params, xs, rnn_config)
    loss, grads = jax.value_and_grad(lambda p: task.loss(rnn.apply(p, xs, rnn_config), batch))(params)
    return {
        "eigenvalues": sorted(np.real_if_close(spectrum).real.tolist()),
        "max_abs_eigenvalue": float(np.abs(spectrum).max()),
        "median_abs_eigenvalue": float(np.median(np.abs(spectrum))),
        "min_abs_eigenvalue": float(np.abs(spectrum).min()),
        "sensitivity": sensitivity.tolist(),
        "memory_horizon": analysis.memory_horizon(sensitivity),
        "lyapunov": float(analysis.lyapunov_exponent(params, xs, cell)),
        "final_state_norm": float(jnp.mean(jnp.linalg.norm(h_last, axis=-1))),
        "final_state_zero_share": float(jnp.mean(h_last == 0)),
        "loss": float(loss),
        "gradient_norms": {name: float(jnp.linalg.norm(g)) for name, g in sorted(grads.items())},
        "batch_size": int(xs.shape[0]),
        "trailing_zero_input_steps": analysis.trailing_zero_steps(xs),
    }, spectrum


def run():
    from nprnn_jax import analysis, experiment, rnn, tasks

    workdir = pathlib.Path(FLAGS.workdir)
    results, spectra, curves = {}, {}, {}
    # every flag is checked before anything is written
    for name, low in (("hidden_size", 1), ("seq_len", 2), ("batch_size", 1), ("seed", 0)):
        if FLAGS[name].value < low:
            raise ValueError(f"--{name}={FLAGS[name].value}: must be >= {low}")
    if not FLAGS.workdir.strip():
        raise ValueError("--workdir is empty: give the folder for the figures")
    if FLAGS.trained_workdir:
        config, _ = experiment.read_config(FLAGS.trained_workdir)
        if config.task not in tasks.names():
            raise ValueError(f"--trained_workdir holds a {config.task!r} run; known tasks: {', '.join(tasks.names())}")
        task, _ = experiment.build_task(config)
        if "lengths" in task.test_set():
            raise ValueError(f"--trained_workdir holds a {config.task!r} run, whose sequences have lengths of their "
                             "own; dynamics reads the workdirs of fixed-length tasks (addition, multiplication, "
                             "mnist)")
        inits = list(config.inits)
    else:
        task = tasks.AdditionTask(seq_len=FLAGS.seq_len, test_size=FLAGS.batch_size)
        inits = [i.strip() for i in FLAGS.inits.split(",") if i.strip()]
        if not inits:
            raise ValueError(f"--inits={FLAGS.inits!r}: give one or more sRNN inits, e.g. np,irnn,irnn_scaled")
    for init in inits:
        if rnn.get_init(init).cell == "lstm":
            raise ValueError(f"init {init!r}: the analysis covers the sRNN inits; an LSTM has no single W_hh")
    test = task.test_set()
    batch = {"xs": test["xs"][:FLAGS.batch_size], "ys": test["ys"][:FLAGS.batch_size]}
    chosen = {}
    for init in inits:  # the trained run of each init, checked before anything is written
        if FLAGS.trained_workdir:
            from nprnn_jax import config as config_lib
            from nprnn_jax import runner
            own = config_lib.init_settings(config, init)
            grid = runner.Grid(learning_rates=own["learning_rates"], num_seeds=config.num_seeds,
                               dropout_rates=config.dropout_rates, seed_offset=config.seed_offset)
            combos = grid.combos
            if FLAGS.learning_rate is None:
                if not 0 <= FLAGS.lr_index < len(combos):
                    raise ValueError(f"--lr_index={FLAGS.lr_index}: {init} has {len(combos)} (learning rate, "
                                     f"dropout) settings, indices 0..{len(combos) - 1}: {combos}")
                lr, dropout = combos[FLAGS.lr_index]
            else:
                lr, dropout = FLAGS.learning_rate, FLAGS.dropout
            if FLAGS.seed not in grid.seeds:
                raise ValueError(f"--seed={FLAGS.seed}: the run's seeds are {grid.seeds}")
            chosen[init] = (lr, dropout)
            experiment.load_params(FLAGS.trained_workdir, init, lr, FLAGS.seed, dropout)  # refuses a bad run
    workdir.mkdir(parents=True, exist_ok=True)
    analysis.plot_phase_portraits(workdir / "phase_portraits.png")
    for init in inits:
        cell = rnn.get_init(init).cell
        if FLAGS.trained_workdir:
            from nprnn_jax import checkpoints
            lr, dropout = chosen[init]
            load = lambda initial: jax.tree.map(jax.numpy.asarray, experiment.load_params(  # noqa: E731
                FLAGS.trained_workdir, init, lr, FLAGS.seed, dropout, initial=initial))
            step = checkpoints.restore_params(FLAGS.trained_workdir, init)[1]
            stages = {"init": load(True), f"trained (step {step})": load(False)}
            rnn_config = rnn.RNNConfig(input_size=batch["xs"].shape[-1], hidden_size=config.hidden_size,
                                       output_size=stages["init"]["W_hy"].shape[-1], init=init,
                                       input_init_n=config.input_init_n)
        else:
            rnn_config = rnn.RNNConfig(input_size=2, hidden_size=FLAGS.hidden_size, init=init)
            stages = {"init": rnn.init_params(jax.random.PRNGKey(FLAGS.seed), rnn_config)}
        for stage, params in stages.items():
            label = f"{init} {stage}" if len(stages) > 1 else init
            results[label], spectra[label] = _analyse(params, batch, cell, rnn_config, task)
            curves[label] = results[label]["sensitivity"]
    analysis.plot_spectra(spectra, workdir / "spectra.png")
    analysis.plot_sensitivity(curves, workdir / "sensitivity.png",
                              f"input sensitivity, {task.name} inputs, T={task.seq_len}")
    (workdir / "dynamics.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"{label:32s} max|eig| {r['max_abs_eigenvalue']:.3f}  lyapunov {r['lyapunov']:+.4f}  "
             f"sensitivity lag 0 {r['sensitivity'][-1]:.3g}, lag {len(r['sensitivity']) - 1} "
             f"{r['sensitivity'][0]:.3g}  |h_T| {r['final_state_norm']:.3g}  loss {r['loss']:.4g}  "
             f"|dL/dW_hh| {r['gradient_norms']['W_hh']:.3g}" for label, r in results.items()]
    return "\n".join(lines), workdir


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        summary, workdir = run()
    except (ValueError, OSError, KeyError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001  one line, no traceback (NPRNN_TRACEBACK=1 shows it)
        from experiments import common
        common.unexpected(error)
    print(summary)
    print(f"figures and dynamics.json in {workdir}")


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
