"""Merging finished workdirs of one study (the same config, other seeds: `--config.seed_offset`
jobs) into one folder with one report (`experiments.merge` is its command)."""

from __future__ import annotations

import json
import pathlib

from nprnn_jax.report import load, write_report


# Settings that may differ between the workdirs of one study (the seeds each job ran).
MERGE_MAY_DIFFER = ("seed_offset", "num_seeds")


def merge_workdirs(workdirs, out, metric: str, higher_is_better: bool, title: str = "",
                   schema=None) -> str:
    """Merges finished workdirs of one study (the same config but their seeds) into ``out``.

    Writes ``out``'s summary.json, metrics.jsonl, sources.json and the report (results.md
    and figures); returns the table. Raises ValueError when the workdirs' settings differ
    in anything that changes results (other than their seeds), when a seed of an init
    appears twice, or when a workdir is unfinished. ``schema``: how the workdirs' settings
    are read (`workdir.Schema`; the binaries' tools pass `nprnn_jax.config.SCHEMA`, which
    leaves the speed-only settings out of the comparison); default `workdir.PLAIN`.
    """
    workdirs = [pathlib.Path(w) for w in workdirs]
    out = pathlib.Path(out)
    if any(out.resolve() == w.resolve() for w in workdirs):
        raise ValueError(f"--out={out} is one of the workdirs to merge; merge writes a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out={out} exists and is not empty; merge writes a new folder (it never replaces "
                         "a workdir's results)")
    import contextlib
    from nprnn_jax import workdir as workdir_lib
    with contextlib.ExitStack() as locks:
        for workdir in {w.resolve(): w for w in workdirs}.values():  # no run may write them meanwhile
            if not workdir.is_dir():
                raise ValueError(f"{workdir} is not a workdir (no such folder)")
            locks.enter_context(workdir_lib.locked(workdir))
        return _merge_locked(workdirs, out, metric, higher_is_better, title, schema or workdir_lib.PLAIN)


def _merge_locked(workdirs, out, metric, higher_is_better, title, schema):
    from nprnn_jax import workdir as workdir_lib

    reference, summaries, rows = None, [], []
    for workdir in workdirs:
        if not (workdir / "summary.json").is_file():
            raise ValueError(f"{workdir} has no summary.json (unfinished or not a workdir)")
        record = workdir_lib.read_config(workdir, schema)  # an edited record is refused by name
        settings = {k: v for k, v in schema.result_settings(schema.with_defaults(record["config"])).items()
                    if k not in MERGE_MAY_DIFFER}
        if reference is None:
            reference = (workdir, settings, record["task"])
        else:
            differs = sorted(k for k in set(settings) | set(reference[1]) if settings.get(k) != reference[1].get(k))
            if differs or record["task"] != reference[2]:
                what = ", ".join(f"{k}: {reference[1].get(k)!r} vs {settings.get(k)!r}" for k in differs) or "task"
                raise ValueError(f"{workdir} is not of the same study as {reference[0]} ({what})")
        summary, workdir_rows = load(workdir)
        summaries += summary
        rows += workdir_rows
    seen = {}
    for record, workdir in ((r, w) for w in workdirs for r in json.loads((w / "summary.json").read_text())):
        key = (record["init"], record["learning_rate"], record.get("dropout", 0.0), record["seed"])
        if key in seen:
            raise ValueError(f"seed {record['seed']} of {record['init']} is in both {seen[key]} and {workdir}; "
                             "give the jobs different --config.seed_offset")
        seen[key] = workdir
    # Written into a temporary folder and renamed: a kill leaves no half-merged --out.
    import os
    import shutil
    staging = out.with_name(out.name + ".merging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    (staging / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (staging / "sources.json").write_text(json.dumps([str(w.resolve()) for w in workdirs], indent=2) + "\n")
    if all((w / "validation.json").is_file() for w in workdirs):  # else none: a partial one would mislead
        validation = [r for w in workdirs for r in json.loads((w / "validation.json").read_text())]
        (staging / "validation.json").write_text(json.dumps(validation, indent=2) + "\n")
    table = write_report(staging, metric, higher_is_better, title)
    if out.exists():
        out.rmdir()  # empty (checked above)
    os.replace(staging, out)
    return table
