"""nprnn_jax: np-RNN (Talathi & Vartak, arXiv:1511.03771) in JAX and Flax."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="nprnn_jax",
    version="0.1.0",
    description="np-RNN: ReLU RNNs with normalized positive-definite recurrent init, in JAX/Flax",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["nprnn_jax", "nprnn_jax.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=requirements(),
    extras_require={
        "test": ["pytest>=8.0"],
        # The speed comparison against PyTorch; not needed for the tests.
        "bench": ["torch>=2.9"],
    },
    license="Apache-2.0",
)
