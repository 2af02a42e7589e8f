r"""The multiplication problem (Hochreiter & Schmidhuber 1997): the product of the two marked values.

    python -m experiments.multiplication --inits=np,irnn,irnn_scaled --num_seeds=4 \
        --workdir=workdirs/multiplication

Same flags and defaults as `experiments.addition` (predicting 0.25 always gives MSE about 0.049).
"""

from absl import app

from experiments.addition import marked_pair_main
from nprnn_jax import tasks

main = marked_pair_main(tasks.MultiplicationTask, "workdirs/multiplication")

if __name__ == "__main__":
    app.run(main)
