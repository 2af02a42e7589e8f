r"""The addition problem (Hochreiter & Schmidhuber 1997; Le et al. 2015).

    python -m experiments.addition --inits=np,irnn,irnn_scaled --num_seeds=4 \
        --workdir=workdirs/addition

Defaults are a small comparison that finishes in a few minutes on 2 CPU cores;
the paper's setting is --seq_len in {150, 200, 300, 400}, 100,000+ steps.
"""

from absl import app, flags

from experiments import common
from nprnn_jax import tasks

flags.DEFINE_integer("seq_len", 50, "Sequence length T (the paper: 150 to 400).")
flags.DEFINE_string("marker_placement", "halves", "halves (first marker in the first half, second in "
                    "the second) or uniform (two distinct positions anywhere).")
flags.DEFINE_integer("test_seed", 0, "Seed of the fixed test set (kept apart from training keys).")

# A comparison that finishes in about 4 minutes on 2 CPU cores; see README for the paper's setting.
DEFAULTS = dict(inits="np,irnn,irnn_scaled", learning_rates="0.003,0.01,0.03", num_seeds=4,
                num_steps=10000, eval_every=2000, clip_norm=10.0)


def marked_pair_main(task_type, workdir: str):
    """The ``main`` of a marked-pair binary (addition, multiplication): same flags and defaults."""

    def build_task():
        F = flags.FLAGS
        task = task_type(seq_len=F.seq_len, marker_placement=F.marker_placement,
                         test_size=F.test_size or 10_000, test_seed=F.test_seed)
        return task, {}

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        common.main(build_task, dict(DEFAULTS, workdir=workdir),
                    f"{task_type.name} (T={flags.FLAGS.seq_len})")

    return main


main = marked_pair_main(tasks.AdditionTask, "workdirs/addition")

if __name__ == "__main__":
    app.run(main)
