"""The files of a workdir: config.json, metrics.jsonl, summary.json.

    config.json          the resolved configuration, execution plan and each init's run
                         description (a run with other result-relevant settings is refused)
    metrics.jsonl        one row per run per evaluation
    summary.json         one record per run: its hyperparameters, final metrics, diverged
    validation.json      the same records with the final parameters evaluated on the task's
                         validation set (marked-pair tasks; data sets with validation_size);
                         the best setting is chosen on these, never on the test set

    checkpoints/<init>/  the grid's states, with their files' hashes in checkpoint_hashes/<init>/:
                         `nprnn_jax.checkpoints` (save, hash record, restore the newest intact)

Every write is atomic (a temporary file renamed over the old one) or an fsynced
append, so a crash leaves the previous state readable. How config.json's settings are read
is given by the configuration (`Schema`); this module never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import pathlib
from typing import Callable, Optional

import numpy as np


CONFIG_VERSION = 2  # the version of config.json's record schema


def _unchanged(config_json: dict) -> dict:
    return dict(config_json)


def _fine(config_json: dict) -> Optional[str]:
    return None


@dataclasses.dataclass(frozen=True)
class Schema:
    """How the settings of a config.json record are read. The configuration gives it
    (`nprnn_jax.config.SCHEMA`: defaults for settings added later, which of them results depend
    on, each setting's rule); the workdir never reads the configuration itself. `PLAIN` (the
    default) compares a library caller's record as it is.

    Attributes:
      with_defaults: a record's settings with every one it lacks at its default.
      result_settings: the part of them that results depend on (a resume must match it).
      check: None when every setting is one the command line would accept, else what is wrong.
    """

    with_defaults: Callable[[dict], dict] = _unchanged
    result_settings: Callable[[dict], dict] = _unchanged
    check: Callable[[dict], Optional[str]] = _fine


# Keys a library caller's record (`runner.default_record`) held in each init's "train" before
# the recurrence's speed-only settings left `train.TrainConfig` for `rnn.Execution`: they never
# changed results, so a workdir that has them resumes.
_SPEED_ONLY_TRAIN_KEYS = ("unroll", "backward", "remat_every", "bptt_chunk")


def _library_result_settings(config_json: dict) -> dict:
    return {k: (dict(v, train={kk: vv for kk, vv in v["train"].items() if kk not in _SPEED_ONLY_TRAIN_KEYS})
                if isinstance(v, dict) and isinstance(v.get("train"), dict) else v)
            for k, v in config_json.items()}


PLAIN = Schema(result_settings=_library_result_settings)


class WorkdirConfigError(ValueError):
    """The workdir holds a run of a different configuration."""


def atomic_write(path: pathlib.Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(workdir: pathlib.Path):
    """Holds ``workdir/.lock`` (an exclusive `flock`) while the body runs: a second process on
    the same workdir gets `WorkdirConfigError` at once. The OS releases the lock when the
    holder exits in any way (a crash or kill -9 included), so a stale lock cannot block."""
    workdir.mkdir(parents=True, exist_ok=True)
    try:  # never through a symlink: its target would be overwritten
        fd = os.open(workdir / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise WorkdirConfigError(f"{workdir}/.lock cannot be opened as a plain file ({error.strerror}); "
                                 "remove it if it is a link") from None
    handle = os.fdopen(fd, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise WorkdirConfigError(f"workdir {workdir} is in use by {holder}; one run per workdir") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _differences(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} in workdir vs {new!r} now"]


def _comparable(record: dict, schema: Schema) -> dict:
    """What must match to resume: the task and the result-relevant settings (not the plan).

    A setting added in a later version and missing from an older record compares
    equal to its default (which is what that older version ran with).
    """
    return {"version": record.get("version"), "task": record.get("task"),
            "config": schema.result_settings(schema.with_defaults(record.get("config") or {}))}


def check_or_write_config(workdir: pathlib.Path, record: dict, write: bool = True, schema: Schema = PLAIN):
    """Writes config.json, or checks that an existing one describes the same run.

    ``record``: ``{"version", "task", "config", "plan"}``. Settings that change
    speed only (the execution settings and the plan) may differ on resume (another
    machine); everything else must match. Never damages a workdir. ``write=False``
    (the other processes of a multi-host run) checks without writing. ``schema``: how the
    records' settings are read (`Schema`).
    """
    path = workdir / "config.json"
    if not path.exists() and any((workdir / name).exists() for name in ("checkpoints", "metrics.jsonl",
                                                                         "summary.json")):
        raise WorkdirConfigError(f"workdir {workdir} holds results but no config.json: it cannot be checked "
                                 "against these settings; use a new workdir")
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise WorkdirConfigError(f"{path} is not valid JSON ({error}); use a new workdir") from None
        check_record(old, path, schema)
        diffs = _differences(_comparable(old, schema), _comparable(record, schema))
        if diffs and _extends(schema.with_defaults(old["config"]), record, diffs, workdir, old.get("runs")):
            extended = dict(old, config=dict(old["config"], num_steps=record["config"]["num_steps"]))
            if "runs" in record:  # what each init runs now (its steps and cuts follow num_steps)
                extended["runs"] = record["runs"]
            extended["extended"] = old.get("extended", []) + [
                {"from_num_steps": schema.with_defaults(old["config"])["num_steps"],
                 "to_num_steps": record["config"]["num_steps"]}]
            if write:
                # The shorter run's results go first: a kill after this leaves an unfinished
                # workdir (no summary), never a config of N steps beside results of fewer.
                for name in ("summary.json", "validation.json", "results.md"):
                    (workdir / name).unlink(missing_ok=True)
                atomic_write(path, json.dumps(_with_fingerprint(extended), indent=2, sort_keys=True) + "\n")
            return
        if diffs:
            raise WorkdirConfigError(
                f"workdir {workdir} holds a run with a different config ({'; '.join(diffs)}); "
                "use a new workdir or the same settings to resume")
        return
    if write:
        workdir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(_with_fingerprint(record), indent=2, sort_keys=True) + "\n")


def fingerprint(record: dict) -> str:
    """The SHA-256 (first 16 hex digits) of a config record's contents, its own fingerprint left
    out: written into config.json with it, so a hand edit (a setting deleted, a learning rate
    changed) is refused instead of read as what ran."""
    import hashlib
    body = {k: v for k, v in record.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _with_fingerprint(record: dict) -> dict:
    return {**{k: v for k, v in record.items() if k != "fingerprint"}, "fingerprint": fingerprint(record)}


def check_record(record, path, schema: Schema = PLAIN) -> dict:
    """``record`` (a config.json) if it is one this version can resume, else
    `WorkdirConfigError` naming the file and what is wrong: another version, a part missing or
    of the wrong type, or a setting whose value the command line would refuse."""
    if not isinstance(record, dict):
        raise WorkdirConfigError(f"{path} is not a config record (a JSON object); use a new workdir")
    if record.get("version") != CONFIG_VERSION:
        raise WorkdirConfigError(
            f"{path} was written by another nprnn_jax (config version {record.get('version', 1)!r}, this one "
            f"reads {CONFIG_VERSION}); its checkpoints cannot be resumed: use a new workdir")
    for part, kind in (("config", dict), ("task", dict), ("plan", dict), ("runs", dict)):
        if part in record and not isinstance(record[part], kind) or part == "config" and part not in record:
            raise WorkdirConfigError(f"{path}: its {part!r} is {type(record.get(part)).__name__}, not a "
                                     f"{kind.__name__}; the file was edited or damaged: use a new workdir")
    problem = schema.check(record["config"])
    if problem:
        raise WorkdirConfigError(f"{path}: {problem}; the file was edited or damaged: use a new workdir")
    # (records written before fingerprints have none: read as they are)
    if "fingerprint" in record and record["fingerprint"] != fingerprint(record):
        raise WorkdirConfigError(f"{path} was edited after the run wrote it (its fingerprint "
                                 f"{record['fingerprint']!r} does not match its contents): it no longer says "
                                 "what ran; restore the file as written, or use a new workdir")
    return record


def _extends(old: dict, new: dict, diffs: list, workdir, old_runs: Optional[dict] = None) -> bool:
    """Whether ``new`` (a record) only extends the training of ``old`` (its settings, with
    defaults) by more steps, nothing else changed.

    Raises `WorkdirConfigError` for a shorter run, or for a schedule whose cuts would move. Both
    records' run descriptions (``runs``: each init's resolved cut steps) decide where they hold
    them; an older record without them is read from its settings (cuts at equal intervals or
    fractions of num_steps move, explicit ones do not).
    """
    if len(diffs) != 1 or not diffs[0].startswith("config.num_steps:"):
        return False
    before = old["num_steps"]
    after = new["config"]["num_steps"]
    if after < before:
        raise WorkdirConfigError(f"workdir {workdir} holds a run of num_steps={before}; it cannot be shortened "
                                 f"to {after} (use a new workdir)")
    new_runs = new.get("runs") or {}
    for init in new["config"].get("inits", []):
        if init in (old_runs or {}) and init in new_runs:
            was = old_runs[init].get("train", {}).get("lr_cut_steps")
            now = new_runs[init].get("train", {}).get("lr_cut_steps")
            if was != now:
                raise WorkdirConfigError(
                    f"workdir {workdir}: num_steps cannot be extended from {before} to {after} because {init}'s "
                    f"learning-rate cuts would move from steps {was} to {now}; give explicit lr_cut_steps "
                    "(or use a new workdir)")
            continue
        own = (new["config"].get("per_init") or {}).get(init) or {}  # per-init overrides first
        schedule, cuts = (own.get(k, new["config"].get(k)) for k in ("lr_schedule", "lr_cut_steps"))
        if schedule == "step" and not cuts:
            raise WorkdirConfigError(
                f"workdir {workdir}: num_steps cannot be extended from {before} to {after} because {init}'s "
                "learning-rate cuts are at equal intervals or fractions of num_steps and would move; give "
                "explicit lr_cut_steps (or use a new workdir)")
    return True


def _to_float(x) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def rows(init, combos, seeds, step, train_loss, diverged, test_metrics):
    """One dict per run, hyperparameter-combination major then seed (the [combo, seed] axes).

    ``combos``: the (learning_rate, dropout) of each index of the first axis; ``seeds``:
    the seed of each index of the second.
    """
    diverged = np.asarray(diverged)
    train_loss = None if train_loss is None else np.asarray(train_loss)
    out = []
    for ci, (lr, dropout) in enumerate(combos):
        for si, seed in enumerate(seeds):
            is_diverged = bool(diverged[ci, si])
            row = {"init": init, "learning_rate": float(lr), "dropout": float(dropout), "seed": seed,
                   "step": step,
                   "train_loss": None if train_loss is None or is_diverged else _to_float(train_loss[ci, si])}
            for name, values in sorted(test_metrics.items()):
                value = np.asarray(values)[ci, si]
                row[name] = None if is_diverged else (bool(value) if value.dtype == bool else _to_float(value))
            row["diverged"] = is_diverged
            out.append(row)
    return out


def append_metrics(path: pathlib.Path, new_rows: list):
    with open(path, "a") as f:
        for row in new_rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(path: pathlib.Path, init: str, last_step: int):
    """Drops this init's rows after ``last_step`` (written after the checkpoint we resume from)."""
    if not path.exists():
        return
    kept = []
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise WorkdirConfigError(f"{path}: line {line} is not text (byte {error.start} is not UTF-8); the file is "
                                 "damaged") from None
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue  # the last line, cut short by a crash
            raise WorkdirConfigError(f"{path}: line {number} is not JSON; the file is damaged") from None
        if not isinstance(row, dict) or not isinstance(row.get("init"), str) or not isinstance(row.get("step"), int):
            raise WorkdirConfigError(f"{path}: line {number} is not a metrics row (needs init and step); "
                                     "the file is damaged")
        if row["init"] == init and row["step"] > last_step:
            continue
        kept.append(line)
    atomic_write(path, "".join(line + "\n" for line in kept))


def summary_records(final_rows: list, diverged_steps) -> list:
    """summary.json's records from the rows of the final evaluation (same order)."""
    records = []
    for row, step in zip(final_rows, np.asarray(diverged_steps).reshape(-1)):
        row = dict(row)
        row.pop("step")
        row.pop("train_loss")
        row["diverged_step"] = int(step) if row["diverged"] else None
        records.append(row)
    return records


def write_summary(workdir: pathlib.Path, summary: list, name: str = "summary.json"):
    """summary.json (or validation.json: the same records, the final parameters evaluated on the
    task's validation set; the metric keys keep their names)."""
    atomic_write(workdir / name, json.dumps(summary, indent=2) + "\n")


def read_config(workdir, schema: Schema = PLAIN) -> dict:
    """The config.json of ``workdir`` (`WorkdirConfigError` if missing or unreadable, or a
    setting breaks ``schema``'s rules)."""
    workdir = pathlib.Path(workdir)
    try:
        record = json.loads((workdir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise WorkdirConfigError(f"{workdir}: no readable config.json ({error})") from None
    return check_record(record, workdir / "config.json", schema)
