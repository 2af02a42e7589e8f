"""The study's records: reading a job's kept files, keeping a finished job's records, merging
the cost records (jobs.jsonl).
"""

from __future__ import annotations

import json
import pathlib
from typing import Optional

from experiments.study.plan import jobs_binary


class JobRecordsError(ValueError):
    """A job folder whose records cannot be read as a finished job of this study."""


def read_rows(workdir: pathlib.Path) -> tuple:
    """``(config.json's record, metrics.jsonl's rows)`` of a job's folder."""
    record = json.loads((workdir / "config.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return record, rows


def _load(workdir: pathlib.Path, binary: Optional[str] = None) -> Optional[dict]:
    """A finished job's records (None when it has not finished); `JobRecordsError` naming the
    file when they are damaged or belong to another experiment than ``binary``."""
    if not (workdir / "summary.json").is_file():
        return None
    try:
        config, rows = read_rows(workdir)
        summary = json.loads((workdir / "summary.json").read_text())
        validation = json.loads((workdir / "validation.json").read_text()) \
            if (workdir / "validation.json").is_file() else None
        job = {"record": config, "config": config["config"], "task": config["task"], "summary": summary, "rows": rows,
               "folder": workdir, "validation": validation}
        if not isinstance(summary, list) or not all(isinstance(r, dict) and "init" in r for r in summary):
            raise ValueError("summary.json is not a list of run records")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise JobRecordsError(f"{workdir}: unreadable records ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if binary is not None and job["config"].get("task") != binary:
        raise JobRecordsError(f"{workdir} holds a {job['config'].get('task')!r} run, not this job's {binary!r}")
    return job


def run_setting(record: dict, init: str, name: str):
    """One per-init setting (`nprnn_jax.config.PER_INIT`: learning rates, optimizer, clip norm,
    schedule) of one init of a job as it ran. ``record`` is the job's config.json: its ``runs``,
    the resolved run description of each init (`InitRun.to_json`), where recorded; else (a
    record written before ``runs`` existed) the init's override over the config's value, as
    `nprnn_jax.config.init_settings` resolves it."""
    from nprnn_jax import config as config_lib
    run = (record.get("runs") or {}).get(init)
    if run is not None:
        for part in ("grid", "train"):
            if name in run[part]:
                return run[part][name]
    if name not in config_lib.PER_INIT:
        raise KeyError(f"{name!r} is not a per-init setting (one of {', '.join(config_lib.PER_INIT)})")
    return config_lib.init_settings(config_lib.with_defaults(record["config"]), init)[name]


# The files of a job's workdir that the report reads (checkpoints are left behind).
RECORD_FILES = ("config.json", "summary.json", "validation.json", "horizon.json", "metrics.jsonl", "results.md")


def _keep_records(workdir: pathlib.Path, to: pathlib.Path) -> None:
    """Copies a finished job's records next to the report, so that anyone can rebuild it
    (``--root=<report folder>/workdirs``) or re-plot single runs."""
    import shutil

    if to.resolve() == workdir.resolve():  # rebuilding the report from its own copies
        return
    to.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (workdir / name).is_file():
            shutil.copyfile(workdir / name, to / name)
    if (workdir / "dynamics" / "dynamics.json").is_file():  # experiments.dynamics of the job (its numbers, figures)
        shutil.copytree(workdir / "dynamics", to / "dynamics", dirs_exist_ok=True)
    # what a snapshot of the unfinished job kept there is not needed once it has finished
    for name in ("checkpoints", "checkpoint_hashes"):
        shutil.rmtree(to / name, ignore_errors=True)
    (to / "train_loss.jsonl").unlink(missing_ok=True)


def merge_cost_records(kept: str, new: str) -> str:
    """The cost records (jobs.jsonl lines) of ``kept`` and ``new`` together, in order, each
    invocation once: a root whose jobs did not start from the kept records lacks their earlier
    invocations, so a copy would lose them. Records of one invocation (the same job, command and
    ``started_at``) are one line: its closing record (an exit status, "killed") over a "running at
    snapshot" one, else the one with more seconds. A record without ``started_at`` (written before
    invocations were named) is kept unless the same line is there already: its invocation cannot
    be told from another, and dropping it would lose a cost no other record holds."""
    merged = {}  # key -> (record or None, line)
    for line in kept.splitlines() + new.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = (record["job"], record["started_at"], json.dumps(record.get("command")))
        except (ValueError, KeyError, TypeError):
            record, key = None, line
        if key not in merged or (record is not None and _supersedes(record, merged[key][0])):
            merged[key] = (record, line)
    return "".join(line + "\n" for _, line in merged.values())


def _supersedes(record: dict, other: dict) -> bool:
    """Whether ``record`` says more of its invocation than ``other`` (the same invocation's)."""
    running, other_running = (r.get("exit") == "running at snapshot" for r in (record, other))
    if running != other_running:
        return other_running
    return running and record.get("seconds", 0) > other.get("seconds", 0)


def _costs(root: pathlib.Path) -> dict:
    costs = {}
    path = root / "jobs.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                job = json.loads(line)
                costs.setdefault(job["job"], []).append(job)
    return costs


def _load_unfinished(workdir: pathlib.Path, binary: Optional[str] = None) -> Optional[dict]:
    """An unfinished job's runs that have reached its last update, from its metrics.jsonl: a
    job like `_load`'s whose ``summary`` holds each such run's evaluation at ``num_steps`` (the
    fields summary.json gives it, which equal that row's; ``diverged_step`` is not known from
    the evaluations and is left out), plus ``running``: ``{init: last evaluated step}`` of
    every init of the config without a finished run (None: not started, no evaluation yet).
    None: no config and metrics, or a finished job (`_load` reads those)."""
    if (workdir / "summary.json").is_file() or not (workdir / "config.json").is_file() \
            or not (workdir / "metrics.jsonl").is_file():
        return None
    try:
        record, rows = read_rows(workdir)
        config = record["config"]
        num_steps = config["num_steps"]
        summary = [{k: v for k, v in r.items() if k not in ("step", "train_loss")}
                   for r in rows if r["step"] == num_steps]
        last = {}
        for r in rows:
            last[r["init"]] = max(last.get(r["init"], 0), r["step"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise JobRecordsError(f"{workdir}: unreadable records of an unfinished job ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if binary is not None and config.get("task") != binary:
        raise JobRecordsError(f"{workdir} holds a {config.get('task')!r} run, not this job's {binary!r}")
    done = {r["init"] for r in summary}
    return {"record": record, "config": config, "task": record.get("task"), "summary": summary, "rows": rows,
            "folder": workdir, "validation": None,
            "running": {i: last.get(i) for i in config["inits"] if i not in done}}


def _first(name: str, root: pathlib.Path, kept: Optional[pathlib.Path], load) -> tuple:
    """``(folder, load(folder, binary))`` of job ``name``'s first folder that ``load`` reads: its
    workdir under ``root``, else its records kept beside the page; ``(root / name, None)``."""
    for folder in (root / name, None if kept is None else kept / name):
        if folder is not None:
            job = load(folder, jobs_binary(name))
            if job is not None:
                return folder, job
    return root / name, None


def find_unfinished(name: str, root: pathlib.Path, kept: Optional[pathlib.Path]) -> Optional[dict]:
    """`_load_unfinished` of job ``name``: its workdir under ``root`` (the running job), else its
    snapshot kept beside the page; None when neither holds one."""
    return _first(name, root, kept, _load_unfinished)[1]


def _find_job(name: str, root: pathlib.Path, kept: Optional[pathlib.Path]):
    """``(workdir, job)`` of a finished job: its workdir under ``root``, else its kept records."""
    return _first(name, root, kept, _load)
