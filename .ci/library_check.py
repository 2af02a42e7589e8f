"""CI: the library as `pip install <wheel>` gives it (no extras, outside the checkout).

Run by `.ci/run` in a clean venv holding only the built wheel and its dependencies, from an
empty folder: the binaries' packages must be absent, the README's library snippets must run as
written, and `load_params` must read a committed small workdir with the library's own requirements
(orbax-checkpoint among them, no ml_collections).

    python library_check.py <checkout>
"""

import importlib.util
import pathlib
import re
import shutil
import sys

checkout = pathlib.Path(sys.argv[1]).resolve()
here = pathlib.Path.cwd().resolve()
assert checkout not in (here, *here.parents), f"run this outside the checkout, not in {here}"
for extra in ("experiments", "ml_collections", "tensorboardX", "tqdm"):
    assert importlib.util.find_spec(extra) is None, f"{extra} is installed: the wheel must not bring it"

import nprnn_jax  # noqa: E402
from nprnn_jax import experiment  # noqa: E402

assert checkout not in pathlib.Path(nprnn_jax.__file__).resolve().parents, nprnn_jax.__file__

# The README's library examples, as written; a committed small addition workdir stands in for the
# main job's (its seed 0 at learning rate 0.01).
shutil.copytree(checkout / "tests" / "data" / "legacy_workdir_7e5892f", here / "workdirs" / "addition")
text = (checkout / "README.md").read_text()
section = text[text.index("## Using the library"):]
section = section[:section.index("\n## ", 10)]
blocks = re.findall(r"```python\n(.*?)```", section, re.S)
assert len(blocks) >= 4 and any("load_params" in b for b in blocks), "the README lost its library examples"
namespace = {}
for number, block in enumerate(blocks, 1):
    exec(compile(block, f"README.md library example {number}", "exec"), namespace)
    print(f"README library example {number}: ran")

params = experiment.load_params("workdirs/addition", "np", learning_rate=0.01, seed=0)
initial = experiment.load_params("workdirs/addition", "np", learning_rate=0.01, seed=0, initial=True)
assert set(params) == set(initial) == {"W_hh", "W_hx", "W_hy", "b_h", "b_y"}, sorted(params)
import numpy as np  # noqa: E402

top = np.linalg.eigvalsh(initial["W_hh"].astype(np.float64))[-1]
assert abs(top - 1.0) < 1e-5, top
assert not np.allclose(params["W_hh"], initial["W_hh"])
print("load_params (final and initial=True) without the experiments extra: ok")
