"""nprnn_jax: np-RNN (Talathi & Vartak, arXiv:1511.03771) in JAX and Flax.

`pip install .` in a checkout (not on PyPI) installs the library (initializers, the network, the pure training
engine, load_params) with jax, flax, optax, chex, numpy and orbax-checkpoint only. The benchmark binaries under
`experiments/` run from a checkout (`python -m experiments.addition`) and need the
``experiments`` extra; they are not installed as a top-level package (a package named
``experiments`` in site-packages would clash with users' own).
"""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


EXPERIMENTS = [
    "absl-py>=2.5.1",
    # Configs as in the Flax examples: get_config() files, --config=file.py:variant and
    # --config.<field>=value overrides with type checks (ml_collections.config_flags).
    "ml_collections>=1.1.0",
    # Learning curves, heat maps and spectra written to the workdir.
    "matplotlib>=3.11",
    # TensorBoard event files next to metrics.jsonl: a small writer that needs no TensorFlow.
    "tensorboardX>=2.6",
    # The progress bar (maintained, fits the terminal, rates and elapsed time).
    "tqdm>=4.66",
    # Exact tests and intervals of the reproduction study (scipy.stats).
    "scipy>=1.11",
]

setup(
    name="nprnn_jax",
    version="0.1.0",
    description="np-RNN: ReLU RNNs with normalized positive-definite recurrent init, in JAX/Flax",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["nprnn_jax", "nprnn_jax.*"]),
    package_data={"nprnn_jax": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=requirements(),
    extras_require={
        "experiments": EXPERIMENTS,
        # A prepared TFDS MNIST is used when one exists (never downloaded); only that path needs it.
        "tfds": ["tensorflow-datasets>=4.9.10"],
        # `tensorboard --logdir <workdir>/tensorboard` to look at the event files.
        "tensorboard": ["tensorboard>=2.16"],
        # The study as a SLURM job array (`reproduce --launcher=slurm`): submitit submits, requeues after
        # a time-out or preemption and runs the same code locally for the tests.
        "slurm": EXPERIMENTS + ["submitit>=1.5"],
        # pytest-xdist: the suite runs on every core (pytest.ini: -n auto)
        "test": EXPERIMENTS + ["tensorflow-datasets>=4.9.10", "pytest>=8.0", "pytest-xdist>=3.5", "submitit>=1.5"],
        # The speed comparison against PyTorch; not needed for the tests.
        "bench": EXPERIMENTS + ["torch>=2.9"],
    },
    license="Apache-2.0",
)
