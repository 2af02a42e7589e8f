"""A workdir's checkpoints, behind one small interface (beside `nprnn_jax.writers`, which writes
its metrics): save a grid's state with a record of its files' hashes, restore the newest intact
one (setting damaged ones aside), drop the ones after a step, read one run's parameters.

    checkpoints/<init>/<step>/         the grid's state (orbax; synchronous saves, renamed
                                       into place, so a crash leaves the previous one whole)
    checkpoint_hashes/<init>/<step>.json  the SHA-256 of each of its files, written after
                                       the save: a damaged checkpoint is recognised before
                                       orbax reads it
    damaged_checkpoints/<init>/<step>/ where a damaged one is moved, with a warning line

    store = Checkpoints(workdir, "np", main=True)
    state, step = store.restore_newest_intact(template)   # (template, 0) when there is none
    store.save(step, state)
    store.close()
"""

from __future__ import annotations

import hashlib
import json
import logging
import pathlib
import shutil
import sys
from typing import Optional

import numpy as np

from nprnn_jax.workdir import WorkdirConfigError, atomic_write


def _files(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hash_record(workdir: pathlib.Path, init: str, step: int) -> pathlib.Path:
    """Where the hashes of the checkpoint of ``init`` at ``step`` are recorded."""
    return workdir / "checkpoint_hashes" / init / f"{step}.json"


def record(workdir: pathlib.Path, init: str, step: int):
    """Writes the SHA-256 of every file of the saved checkpoint ``checkpoints/<init>/<step>`` to
    ``checkpoint_hashes/<init>/<step>.json``."""
    path = hash_record(workdir, init, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = _files(workdir / "checkpoints" / init / str(step))
    atomic_write(path, json.dumps(files, indent=0, sort_keys=True) + "\n")


def looks_like_checkpoint(workdir: pathlib.Path, init: str, step: int) -> bool:
    """Whether ``checkpoints/<init>/<step>`` is a checkpoint orbax finished writing (its
    metadata file) or one whose hashes were recorded (then `damage` judges it)."""
    folder = workdir / "checkpoints" / init / str(step)
    return (folder / "_CHECKPOINT_METADATA").is_file() or hash_record(workdir, init, step).is_file()


def damage(workdir: pathlib.Path, init: str, step: int) -> Optional[str]:
    """What is wrong with a checkpoint's files against their recorded hashes (None: intact,
    or no record, e.g. a kill between the save and the record: then orbax has to tell)."""
    path = hash_record(workdir, init, step)
    if not path.is_file():
        return None
    try:
        expected = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    found = _files(workdir / "checkpoints" / init / str(step))
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            return f"{name} is missing"
        if name not in expected:
            return f"{name} was not part of the saved checkpoint"
        if found[name] != expected[name]:
            return f"{name} has changed since it was saved"
    return None


def step_folders(workdir: pathlib.Path, init: str) -> list:
    """The step folders of ``checkpoints/<init>``, newest first (intact or not)."""
    folder = pathlib.Path(workdir) / "checkpoints" / init
    return sorted((int(p.name) for p in folder.iterdir() if p.name.isdigit()), reverse=True) \
        if folder.is_dir() else []


def problem(workdir: pathlib.Path, init: str, step: int, hashed_only: bool = False) -> Optional[str]:
    """What keeps the checkpoint of ``init`` at ``step`` from being resumed, judged from its files
    without orbax (None: intact as far as files tell): no hash record (with ``hashed_only``),
    not a finished checkpoint, or files that differ from their record."""
    workdir = pathlib.Path(workdir)
    if hashed_only and not hash_record(workdir, init, step).is_file():
        return "no hash record"
    if not looks_like_checkpoint(workdir, init, step):
        return "not a finished checkpoint (no metadata, no hash record)"
    return damage(workdir, init, step)


def newest_intact_step(workdir: pathlib.Path, init: str, hashed_only: bool = False) -> Optional[int]:
    """The newest step of ``init`` with no `problem` (``hashed_only``: and a hash record); None
    when there is none."""
    return next((step for step in step_folders(workdir, init) if problem(workdir, init, step, hashed_only) is None), None)


def _set_aside(workdir: pathlib.Path, init: str, step: int, why: str):
    target = workdir / "damaged_checkpoints" / init / str(step)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(workdir / "checkpoints" / init / str(step)), str(target))
    print(f"warning: {init}: {why}; moved to {target}", file=sys.stderr)


class Checkpoints:
    """The checkpoints of one init's grid in a workdir (an orbax manager with synchronous
    saves, keeping ``max_to_keep``; None keeps all). ``main``: this process writes the files
    (process 0 of a multi-host run: the others save their shards and read)."""

    def __init__(self, workdir, init: str, main: bool = True, max_to_keep: Optional[int] = 2,
                 create: bool = True):
        import orbax.checkpoint as ocp

        self.workdir, self.init, self.main = pathlib.Path(workdir), init, main
        self._ocp = ocp
        # Synchronous saves: the states are small, and a save that returns is on disk (orbax
        # writes to a temporary folder and renames it: a crash mid-write leaves the previous
        # checkpoint as the latest).
        self.manager = ocp.CheckpointManager(
            (self.workdir / "checkpoints" / init).absolute(),
            options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False, max_to_keep=max_to_keep,
                                                 create=create))

    def steps(self) -> list:
        """The steps orbax knows, oldest first."""
        return sorted(self.manager.all_steps())

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def save(self, step: int, state):
        """Saves ``state`` at ``step`` and (the main process) records its files' hashes."""
        self.manager.save(step, args=self._ocp.args.StandardSave(state))
        if self.main:
            record(self.workdir, self.init, step)

    def damage(self, step: int) -> Optional[str]:
        return damage(self.workdir, self.init, step)

    def restore(self, step: int, template, legacy=None):
        """The checkpoint at ``step`` restored into ``template``'s structure. ``legacy``: an
        optional ``(legacy_template, upgrade)`` for checkpoints of an older layout; when the
        checkpoint does not restore into ``template``, it is restored into ``legacy_template``
        and returned as ``upgrade(restored)``. Raises what orbax raises when neither fits."""
        try:
            return self.manager.restore(step, args=self._ocp.args.StandardRestore(template))
        except Exception as error:  # noqa: BLE001  a tree-structure mismatch, or damage
            if legacy is None:
                raise
            first = error
        legacy_template, upgrade = legacy
        try:
            restored = self.manager.restore(step, args=self._ocp.args.StandardRestore(legacy_template))
        except Exception:  # noqa: BLE001
            raise first from None
        return upgrade(restored)

    def restore_newest_intact(self, template, legacy=None) -> tuple:
        """(state, step) from the newest checkpoint that restores, or (template, 0) when there
        is none. A step folder that is no checkpoint, or a damaged newer checkpoint, is moved to
        ``damaged_checkpoints/<init>/<step>`` with a warning line; when every checkpoint is
        damaged, `WorkdirConfigError` names them. ``legacy``: as in `restore`."""
        workdir, init = self.workdir, self.init
        all_steps = sorted(self.manager.all_steps(), reverse=True)
        # A step folder that orbax never finished or that is not a checkpoint at all (no
        # metadata, no recorded hashes, e.g. a stray `mkdir`) is set aside by name, before orbax
        # (whose manager then fails on every step) reads it.
        stray = [step for step in all_steps if not looks_like_checkpoint(workdir, init, step)]
        if stray and self.main:
            for step in stray:
                _set_aside(workdir, init, step, f"checkpoints/{init}/{step} is not a checkpoint (no metadata, "
                                                "no recorded hashes)")
            self.manager.reload()
        damaged = []
        for step in [s for s in all_steps if s not in stray]:
            why = damage(workdir, init, step)
            if why:  # recognised from the recorded hashes, before orbax reads anything
                damaged.append((step, why))
                continue
            try:
                state = self.restore(step, template, legacy)
            except Exception as error:  # noqa: BLE001  orbax/tensorstore raise many kinds for a damaged file
                damaged.append((step, f"{type(error).__name__}: "
                                      f"{str(error).splitlines()[0][:160] if str(error) else ''}"))
                continue
            if damaged and self.main:
                for bad, why in damaged:
                    _set_aside(workdir, init, bad, f"the checkpoint at step {bad} is damaged ({why})")
                print(f"warning: {init}: resuming from step {step}; metrics after it are dropped",
                      file=sys.stderr)
                self.manager.reload()
            logging.getLogger(__name__).info("%s: resumed from the checkpoint at step %d", init, step)
            return state, step
        if damaged:
            raise WorkdirConfigError(
                f"{workdir}/checkpoints/{init}: no intact checkpoint (step {damaged[0][0]}: {damaged[0][1]}); "
                "use a new workdir")
        return template, 0

    def drop_after(self, step: int):
        """Deletes every checkpoint after ``step`` and its hash record (a segment that is
        recomputed)."""
        for later in [s for s in self.manager.all_steps() if s > step]:
            self.manager.delete(later)
            if self.main:
                hash_record(self.workdir, self.init, later).unlink(missing_ok=True)

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.close()


def restore_params(workdir, init: str, step: Optional[int] = None, allow_older: bool = True) -> tuple:
    """``(params, step)``: the network parameters of every run of ``init``'s grid, as
    NumPy arrays ``[combination, seed, ...]``, from its newest intact checkpoint.

    Reads only the parameters, onto this process's first device, whatever devices or
    processes wrote the checkpoint (no data, no compilation). A checkpoint whose files do
    not match their recorded hashes is passed over; `WorkdirConfigError` when none is left.
    ``step``: that checkpoint only (`WorkdirConfigError` if it is missing or damaged). Older
    weights than the newest checkpoint's are never returned silently: with ``allow_older`` a
    warning names the step returned, without it `WorkdirConfigError`.
    """
    import jax
    import orbax.checkpoint as ocp

    workdir = pathlib.Path(workdir)
    folder = workdir / "checkpoints" / init
    found = step_folders(workdir, init)
    if not found:
        raise WorkdirConfigError(f"{workdir}: no checkpoint of {init!r} (not started, or not a workdir)")
    if step is not None:
        if step not in found:
            raise WorkdirConfigError(f"{workdir}: no checkpoint of {init!r} at step {step}; it has steps "
                                     f"{sorted(found)}")
        found = [step]
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    checkpointer = ocp.PyTreeCheckpointer()
    problems = []
    quiet = _Quiet("absl")  # orbax warns of the step folder's metadata, which a parameter read does not need
    for step in found:
        why = damage(workdir, init, step)
        if why:
            problems.append(f"step {step}: {why}")
            continue
        path = (folder / str(step) / "default").absolute()
        try:
            with quiet:
                saved = checkpointer.metadata(path).item_metadata.tree["params"]
            target = {"params": {k: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device) for k, m in saved.items()}}
            restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=device, global_shape=x.shape,
                                                                       dtype=x.dtype), target)
            with quiet:
                state = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
                    item=target, restore_args=restore_args, partial_restore=True))
        except Exception as error:  # noqa: BLE001  orbax/tensorstore raise many kinds for a damaged file
            problems.append(f"step {step}: {type(error).__name__}")
            continue
        if step != found[0]:
            message = f"{workdir}: {init}'s newest checkpoint (step {found[0]}) is damaged"
            if not allow_older:
                raise WorkdirConfigError(f"{message}; the newest intact one is step {step}: pass allow_older=True "
                                         f"(or step={step}) to load those older weights")
            import warnings
            warnings.warn(f"{message}; returning the weights of step {step}", stacklevel=3)
        return {k: np.asarray(v) for k, v in state["params"].items()}, step
    raise WorkdirConfigError(f"{folder}: no intact checkpoint ({'; '.join(problems)})")


class _Quiet:
    """Raises a logger's level to ERROR inside a ``with`` block."""

    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)
