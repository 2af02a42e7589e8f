r"""The reproduction study: every experiment of the paper at a stated budget, one command.

    python -m experiments.reproduce --budget=cpu                        # the whole study
    python -m experiments.reproduce --budget=cpu --only=addition_T150   # some jobs
    python -m experiments.reproduce --budget=paper --list               # what a budget runs

Each job is one run of a benchmark binary with a named config (`experiments/configs/*.py`)
in its own workdir under --root (``<root>/<budget>/<job>``), its output in ``<job>.log``
beside it. Jobs run one after another in their own processes; a job that fails is
recorded and the next one starts. Run the same command again and every job resumes from
its checkpoints (a finished job only re-reads its results). What each job cost (wall
seconds, exit status) is appended to ``<root>/<budget>/jobs.jsonl``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

from absl import app, flags

from experiments.study_report import jobs

flags.DEFINE_enum("budget", "cpu", ["cpu", "paper"], "cpu: the study on 2 CPU cores (about 1.5-2 h); "
                  "paper: the paper's own budgets (an accelerator's days).")
flags.DEFINE_string("only", "", "Comma list of job names to run (default: all of the budget).")
flags.DEFINE_string("root", "workdirs/study", "Where the jobs' workdirs go.")
flags.DEFINE_bool("list", False, "Print the jobs of the budget and exit.")
flags.DEFINE_bool("report", False, "Only write the report from the workdirs (after the jobs, it is written anyway).")
flags.DEFINE_string("report_path", "docs/reproduction.md", "Where the report goes (figures and results files "
                    "in a folder of the same name beside it).")

FLAGS = flags.FLAGS
CONFIGS = "experiments/configs"


def command(job: tuple, workdir: pathlib.Path) -> list:
    binary, variant, extra = job
    return [sys.executable, "-m", f"experiments.{binary}", f"--config={CONFIGS}/{binary}.py:{variant}",
            *extra, f"--workdir={workdir}"]


def run_job(name: str, job: tuple, root: pathlib.Path) -> dict:
    workdir = root / name
    workdir.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(root / f"{name}.log", "a") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command(job, workdir))}\n")
        log.flush()
        status = subprocess.call(command(job, workdir), stdout=log, stderr=log, env=os.environ.copy())
    record = {"job": name, "binary": job[0], "variant": job[1], "overrides": job[2], "exit": status,
              "seconds": round(time.time() - start, 1), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(root / "jobs.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    all_jobs = jobs(FLAGS.budget)
    names = [n.strip() for n in FLAGS.only.split(",") if n.strip()] or list(all_jobs)
    unknown = [n for n in names if n not in all_jobs]
    if unknown:
        print(f"error: --only: unknown job {unknown[0]!r}; jobs of budget {FLAGS.budget}: "
              f"{', '.join(all_jobs)}", file=sys.stderr)
        sys.exit(2)
    root = pathlib.Path(FLAGS.root) / FLAGS.budget
    if FLAGS.list:
        for name in names:
            print(f"{name}: {' '.join(command(all_jobs[name], root / name)[1:])}")
        return
    if not FLAGS.report:
        for name in names:
            record = run_job(name, all_jobs[name], root)
            print(f"{name}: exit {record['exit']} after {record['seconds']:.0f} s", flush=True)
    from experiments import study_report
    study_report.write(root, all_jobs, pathlib.Path(FLAGS.report_path), FLAGS.budget)
    print(f"report: {FLAGS.report_path}")


if __name__ == "__main__":
    app.run(main)
