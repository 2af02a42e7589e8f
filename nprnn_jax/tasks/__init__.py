"""The tasks: one module per task, each declaring itself (`base.TaskSpec`) by name.

    from nprnn_jax import tasks
    tasks.get("addition")            # its settings, data builder, title, metric
    tasks.AdditionTask(seq_len=150)  # its data: batches, test and validation sets

Every module of this package (but `base`) is imported here and registers its task. A new
task is one module (``TASK = tasks.register(tasks.TaskSpec(...))``, here or anywhere one's
own code imports it) and one config file that names it (``config.task``) and imports its
module; ``python -m experiments.main --config=<that file>`` runs it. The paper's side of the
paper's tasks is the study's (`experiments.study.protocols`).
"""

import importlib
import pkgutil

from nprnn_jax.tasks.base import (  # noqa: F401  (the shared machinery, as nprnn_jax.tasks.<name>)
    DEFAULT_DATA_DIRS, MARKER_PLACEMENTS, ORDER_STREAM, POOL_STREAM, TEST_STREAM, TRAIN_STREAM,
    VALIDATION_STREAM, Batch, ClassificationTask, MarkedPairBuild, MarkedPairTask, Task, TaskSpec, best_constant_share,
    data_dir, data_fingerprint, epoch_indices, get, hold_out, marked_pair_spec, names, register)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

from nprnn_jax.tasks.action_recognition import sequence_task  # noqa: E402,F401
from nprnn_jax.tasks.addition import AdditionTask  # noqa: E402,F401
from nprnn_jax.tasks.mnist import mnist_task  # noqa: E402,F401
from nprnn_jax.tasks.multiplication import MultiplicationTask  # noqa: E402,F401
