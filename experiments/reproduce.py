r"""The reproduction study: every experiment of the paper at a stated budget, one command.

    python -m experiments.reproduce --budget=cpu                        # the whole study
    python -m experiments.reproduce --budget=paper --only=addition_T150 # some jobs
    python -m experiments.reproduce --budget=paper --list               # what a budget runs
    python -m experiments.reproduce --budget=paper --deadline=23:30 --snapshot=docs/reproduction/workdirs
    python -m experiments.reproduce --budget=smoke --root=/tmp/s        # try the driver in a minute
    python -m experiments.reproduce --report --report_path=docs/reproduction.md   # the page

Each job is one run of a benchmark binary with a named config (`experiments/configs/*.py`)
in its own workdir under --root (``<root>/<budget>/<job>``), its output in ``<job>.log``
beside it. Up to ``--workers`` jobs run at once (default: one per core this process may use),
each in its own process pinned to its own core with one XLA host device, in the order of
``--only`` (else the budget's); a job starts as soon as a core frees, and a job that fails is
recorded with its error line while the next one starts (`experiments.study.queue`). Run the
same command again and every job resumes from its checkpoints (a finished job only re-reads its
results). What each job cost (wall seconds, exit status, core) is appended to
``<root>/<budget>/jobs.jsonl``; an invocation that was killed is recorded from its heartbeat
file when the job next starts.

Stopping: ``--deadline=MINUTES|HH:MM``, SIGTERM, SIGUSR1 or Ctrl-C make every running job
finish its current segment, write that checkpoint and exit; the driver then refreshes the
snapshot and the report and prints where each job stands.

Jobs that outlive a machine (the paper budget's take hours): ``--snapshot=DIR`` keeps every
unfinished job's compact state (config.json, metrics, the newest intact checkpoint of each init
and its hashes, the cost records) in ``DIR/<budget>/<job>``, a few hundred KB a job, refreshed
atomically every ``--snapshot_every`` minutes and when the driver stops (``--snapshot_now``:
only that, then exit); a later ``reproduce`` on a machine whose --root lacks the job starts it
from that state (``--snapshot`` if given, else ``--resume_from``, default the checkout's
``docs/reproduction/workdirs``), so no finished hour of compute is lost.

The report (``--report``) is written to --report_path, by default ``<root>/reproduction.md``;
the committed page is rebuilt only when ``--report_path=docs/reproduction.md`` is given.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import sys
import time
from typing import Optional

from absl import app, flags, logging

from experiments.study import queue as queue_lib
from experiments.study.plan import jobs

flags.DEFINE_enum("budget", "cpu", ["cpu", "paper", "frontier", "smoke"], "smoke: three jobs of seconds each, to "
                  "try the driver, its deadline and snapshots; cpu: the study on 2 CPU cores (about 1.5-2 h); "
                  "paper: the paper's own budgets (days of one core; see docs/reproduction.md); frontier: "
                  "success against sequence length, T 10-200, and Hochreiter and Schmidhuber's protocol.")
flags.DEFINE_string("only", "", "Comma list of job names to run (default: all of the budget).")
flags.DEFINE_string("root", "workdirs/study", "Where the jobs' workdirs go.")
flags.DEFINE_bool("list", False, "Print the jobs of the budget and exit.")
flags.DEFINE_bool("report", False, "Only write the report from the workdirs (after the jobs, it is written anyway).")
flags.DEFINE_string("report_path", "", "Where the report goes (figures and results files in a folder of the "
                    "same name beside it); default <root>/reproduction.md.")
flags.DEFINE_string("snapshot", "", "Keep every unfinished job's compact state in <snapshot>/<budget>/<job> (e.g. "
                    "docs/reproduction/workdirs, to commit): refreshed atomically every --snapshot_every minutes "
                    "while jobs run, and when the driver stops (a deadline, SIGTERM, SIGUSR1, Ctrl-C).")
flags.DEFINE_bool("snapshot_now", False, "Only refresh the --snapshot of every unfinished job of --root, and exit.")
flags.DEFINE_float("snapshot_every", 30.0, "Minutes between two snapshot refreshes while jobs run.", lower_bound=0.01)
flags.DEFINE_integer("workers", 0, "Jobs run at once, each pinned to its own core with one XLA host device "
                     "(0: one per core this process may use).", lower_bound=0)
flags.DEFINE_string("deadline", "", "Stop in time for this: MINUTES from the start, or HH:MM (local time). Before it "
                    "(a margin measured from the jobs' segments and the snapshot) every job writes a checkpoint and "
                    "stops, the snapshot and the report are refreshed, and the driver exits 0. SIGTERM and SIGUSR1 "
                    "do the same at once.")
flags.DEFINE_string("resume_from", str(pathlib.Path(__file__).resolve().parents[1] / "docs" / "reproduction"
                                       / "workdirs"),
                    "A job whose workdir is missing under --root starts from the snapshot "
                    "<resume_from>/<budget>/<job> when one exists.")
flags.DEFINE_enum("launcher", "local", ["local", "slurm"], "local: this machine's cores (--workers); slurm: "
                  "submit the jobs as one SLURM job array through submitit (pip install -e \".[slurm]\"), each "
                  "task requeued after a time-out or preemption and resuming from its workdir, then exit.")
flags.DEFINE_string("slurm_partition", "", "--launcher=slurm: the partition (default: the cluster's).")
flags.DEFINE_integer("slurm_time", 240, "--launcher=slurm: minutes per run of a task (then requeued).", lower_bound=11)
flags.DEFINE_integer("slurm_cpus", 1, "--launcher=slurm: cores per task (a job is one process).", lower_bound=1)
flags.DEFINE_integer("slurm_parallelism", 64, "--launcher=slurm: array tasks running at once.", lower_bound=1)
flags.DEFINE_integer("slurm_requeues", 20, "--launcher=slurm: time-outs a task may be requeued after.",
                     lower_bound=0)

FLAGS = flags.FLAGS
CONFIGS = "experiments/configs"


def command(job: tuple, workdir: pathlib.Path) -> list:
    binary, name, extra = job
    return [sys.executable, "-m", f"experiments.{binary}", f"--config={CONFIGS}/{binary}.py:{name}",
            *extra, f"--workdir={workdir}"]


def _append_cost(root: pathlib.Path, record: dict):
    with open(root / "jobs.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _heartbeat_record(state: dict, exit: str) -> dict:
    """The cost record of an invocation from its heartbeat (``<job>.running.json``): its time so
    far, named by its start (a heartbeat of a driver older than ``started_at`` lacks the name)."""
    return {"started_at": queue_lib.started_at(state["started"]), **state["record"], "exit": exit,
            "seconds": round(state["updated"] - state["started"], 1)}


def _record_killed(root: pathlib.Path, name: str):
    """Turns the heartbeat of an invocation that never finished into its cost record."""
    beat = root / f"{name}.running.json"
    if beat.is_file():
        try:
            state = json.loads(beat.read_text())
            _append_cost(root, {**_heartbeat_record(state, "killed"),
                                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                             time.localtime(state["updated"]))})
        except (OSError, ValueError, KeyError):
            pass
        beat.unlink(missing_ok=True)


class SnapshotRefused(ValueError):
    """A job's snapshot cannot be resumed (the message names the job, the file and the fault)."""


# A snapshot holds what a job needs to resume elsewhere; checkpoints only the newest intact one.
SNAPSHOT_FILES = ("config.json", "metrics.jsonl", "train_loss.jsonl", "results.md", "permutation.json")


def snapshot_job(workdir: pathlib.Path, to: pathlib.Path) -> list:
    """Copies an unfinished job's compact state to ``to``: its records and, per init, the
    newest checkpoint whose files match their recorded hashes (a resume truncates the
    metrics to it). Returns ``[(init, step)]`` of the checkpoints copied."""
    from nprnn_jax import checkpoints

    staging = to.with_name(to.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in SNAPSHOT_FILES:
        if (workdir / file).is_file():
            shutil.copyfile(workdir / file, staging / file)
    kept = []
    for init_dir in sorted((workdir / "checkpoints").glob("*")) if (workdir / "checkpoints").is_dir() else ():
        init = init_dir.name
        for step in checkpoints.step_folders(workdir, init):
            hashes, copied = checkpoints.hash_record(workdir, init, step), checkpoints.hash_record(staging, init, step)
            if not hashes.is_file():
                continue
            target = staging / "checkpoints" / init / str(step)
            try:  # the job may delete an old checkpoint while we copy: then the next one
                shutil.copytree(init_dir / str(step), target)
            except (OSError, shutil.Error):
                shutil.rmtree(target, ignore_errors=True)
                continue
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(hashes, copied)
            if checkpoints.damage(staging, init, step) is None:  # the copy is intact
                kept.append((init, step))
                break
            shutil.rmtree(target, ignore_errors=True)
            copied.unlink(missing_ok=True)
    # Atomic for a reader: the old snapshot is moved aside before the new one takes its name, and
    # a reader finds it there (`snapshot_folder`) if a kill falls between the two renames.
    old = to.with_name(to.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if to.exists():
        os.replace(to, old)
    os.replace(staging, to)
    shutil.rmtree(old, ignore_errors=True)
    return kept


def snapshot_folder(snapshots: pathlib.Path, name: str) -> pathlib.Path:
    """The snapshot of job ``name``: ``<name>``, or ``<name>.old`` left by a refresh killed between its
    two renames."""
    folder = snapshots / name
    old = snapshots / (name + ".old")
    return old if not folder.exists() and old.is_dir() else folder


def snapshot_problem(source: pathlib.Path, task: str) -> Optional[str]:
    """What makes the snapshot ``source`` of a job of ``task`` unusable (None: usable), checked
    before anything is copied into a root: its config.json missing, unreadable or of another
    task; a records file that is not JSON lines (file and line named); an init whose every
    checkpoint is damaged or lacks its hash record. (The job's binary compares the rest of the
    settings itself, and sets a damaged newest checkpoint aside when an older one is intact.)"""
    from nprnn_jax import checkpoints

    config = source / "config.json"
    if not config.is_file():
        return f"{config} is missing (a snapshot holds config.json, the records and checkpoints)"
    try:
        task_of = json.loads(config.read_text())["config"]["task"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return f"{config} is not a workdir's config record ({type(error).__name__})"
    if task_of != task:
        return f"{config} is a {task_of!r} run, not this job's {task!r}: the snapshot of another job"
    for records in ("metrics.jsonl", "train_loss.jsonl"):
        path = source / records
        if not path.is_file():
            continue
        try:
            lines = path.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            return f"{path}: not text (byte {error.start} is not UTF-8)"
        for number, line in enumerate(lines, 1):
            try:
                if line.strip() and not isinstance(json.loads(line), dict):
                    raise ValueError
            except ValueError:
                if number == len(lines):
                    continue  # the last line, cut short while the job wrote it: the resume drops it
                return f"{path}: line {number} is not a JSON record ({line[:40]!r})"
    for init_dir in sorted((source / "checkpoints").glob("*")):
        steps = checkpoints.step_folders(source, init_dir.name)
        if steps and checkpoints.newest_intact_step(source, init_dir.name, hashed_only=True) is None:
            problems = [f"step {s}: {checkpoints.problem(source, init_dir.name, s, hashed_only=True)}" for s in steps]
            return f"{init_dir}: no intact checkpoint ({'; '.join(problems)})"
    return None


def seed_from_snapshot(name: str, root: pathlib.Path, snapshots: pathlib.Path, task: str = "") -> bool:
    """Starts ``root/<name>`` from a committed snapshot when the workdir does not exist yet;
    `SnapshotRefused` when the snapshot is unusable (`snapshot_problem`), before anything is copied."""
    source = snapshot_folder(snapshots, name)
    if (root / name).exists() or not (source / "checkpoints").is_dir() or (source / "summary.json").exists():
        return False
    problem = snapshot_problem(source, task) if task else None
    if problem:
        raise SnapshotRefused(f"{name}: its snapshot is refused: {problem}; nothing was copied into {root} "
                              f"(remove or repair {source}, or give --resume_from another snapshot)")
    shutil.copytree(source, root / name)
    for extra in ("jobs.jsonl",):  # the costs so far, if this root has none
        if (snapshots / extra).is_file() and not (root / extra).exists():
            shutil.copyfile(snapshots / extra, root / extra)
    return True


START = time.time()


def snapshot_all(root: pathlib.Path, names: list, out: pathlib.Path) -> list:
    """Refreshes the snapshot of every unfinished job of ``names`` under ``root`` in ``out`` (each
    atomically) and merges the cost records into its jobs.jsonl; returns a line per job kept."""
    from experiments.study.records import merge_cost_records
    from nprnn_jax import workdir as workdir_lib

    lines = []
    for name in names:
        workdir = root / name
        if not (workdir / "config.json").is_file() or (workdir / "summary.json").is_file():
            continue  # not started, or finished (the report keeps a finished job's records)
        kept = snapshot_job(workdir, out / name)
        lines.append(f"{name}: snapshot in {out / name}: " + (", ".join(f"{i} at step {s:,}" for i, s in kept)
                                                            or "its records; no intact checkpoint yet"))
    if (root / "jobs.jsonl").is_file():
        records = (root / "jobs.jsonl").read_text()
        for beat in sorted(root.glob("*.running.json")):  # invocations still running: their cost so far
            try:
                state = json.loads(beat.read_text())
            except (OSError, ValueError):
                continue
            records += json.dumps(_heartbeat_record(state, "running at snapshot")) + "\n"
        out.mkdir(parents=True, exist_ok=True)
        kept = (out / "jobs.jsonl").read_text() if (out / "jobs.jsonl").is_file() else ""
        workdir_lib.atomic_write(out / "jobs.jsonl", merge_cost_records(kept, records))
    return lines


def _sources(snapshots: pathlib.Path) -> list:
    """Where a missing job's state is looked for: --snapshot's folder, else --resume_from's."""
    return list(dict.fromkeys([snapshots, pathlib.Path(FLAGS.resume_from) / FLAGS.budget]))


def run_queue(names: list, all_jobs: dict, root: pathlib.Path, snapshots: pathlib.Path, deadline) -> int:
    """Runs ``names`` through `queue_lib.Queue`; the exit status (1: a job failed). A job missing
    under ``root`` continues from its snapshot in ``snapshots`` (--snapshot), else in --resume_from
    (the committed records), and one finished in either is not run again."""
    from experiments.study import plan

    sources = _sources(snapshots)

    def before_start(name):
        why = plan.frontier_stop(name, root, sources[-1]) if FLAGS.budget == "frontier" else None
        if why:
            return f"{name}: not run: {why}", False
        for source in sources:
            if not (root / name).exists() and (source / name / "summary.json").is_file():
                # finished elsewhere: its records (not its checkpoints) are kept, and the report reads them
                return f"{name}: finished, its records kept in {source / name}; not run again", False
        _record_killed(root, name)
        for source in sources:
            try:
                seeded = seed_from_snapshot(name, root, source, task=all_jobs[name][0])
            except SnapshotRefused as refused:
                return str(refused), None
            if seeded:
                return f"{name}: continues from the snapshot in {snapshot_folder(source, name)}", True
        return "", True

    root.mkdir(parents=True, exist_ok=True)
    out = pathlib.Path(FLAGS.snapshot) / FLAGS.budget if FLAGS.snapshot else None
    queue = queue_lib.Queue(
        names, root, workers=FLAGS.workers or len(queue_lib.usable_cores()),
        command=lambda name, workdir: command(all_jobs[name], workdir), before_start=before_start,
        snapshot=None if out is None else (lambda: snapshot_all(root, names, out)),
        snapshot_every_s=60 * FLAGS.snapshot_every, deadline=deadline,
        record_cost=lambda record: _append_cost(root, record))
    previous = queue.install_signals()
    try:
        status = queue.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for line in queue.status_lines(f"python -m experiments.reproduce {' '.join(sys.argv[1:])}"):
        print(line, flush=True)
    if queue.stop_reason and queue.stop_reason.startswith("interrupted"):
        sys.exit(130)
    return status


def _refuse(message: str):
    """One ``error:`` line, exit 2, nothing written."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    if not FLAGS["verbosity"].present:  # as the binaries: no INFO lines of JAX's backends on the terminal
        logging.set_verbosity(logging.WARNING)
    all_jobs = jobs(FLAGS.budget)
    names = [n.strip() for n in FLAGS.only.split(",") if n.strip()]
    if FLAGS.only and not names:
        print(f"error: --only={FLAGS.only!r} names no job; jobs of budget {FLAGS.budget}: "
              f"{', '.join(all_jobs)}", file=sys.stderr)
        sys.exit(2)
    names = names or list(all_jobs)
    unknown = [n for n in names if n not in all_jobs]
    if unknown:
        print(f"error: --only: unknown job {unknown[0]!r}; jobs of budget {FLAGS.budget}: "
              f"{', '.join(all_jobs)}", file=sys.stderr)
        sys.exit(2)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        _refuse(f"--only={FLAGS.only!r} names {duplicates[0]!r} twice; give each job once")
    if not FLAGS.root.strip():
        _refuse("--root='' is empty: give the folder the job folders go into (default workdirs/study)")
    if pathlib.Path(FLAGS.root).exists() and not pathlib.Path(FLAGS.root).is_dir():
        _refuse(f"--root={FLAGS.root}: is a file, not a folder")
    root = pathlib.Path(FLAGS.root) / FLAGS.budget
    if root.exists() and not root.is_dir():
        _refuse(f"--root: {root} is not a folder")
    if FLAGS.snapshot and pathlib.Path(FLAGS.snapshot).resolve() == pathlib.Path(FLAGS.root).resolve():
        _refuse(f"--snapshot={FLAGS.snapshot} is --root itself: a snapshot would replace the job folders; "
                "give another folder")
    if FLAGS.report and FLAGS.snapshot_now:
        _refuse("--report and --snapshot_now are two tasks: run one, then the other")
    if FLAGS.list:
        for name in names:
            print(f"{name}: {' '.join(command(all_jobs[name], root / name)[1:])}")
        return
    snapshots = pathlib.Path(FLAGS.snapshot or FLAGS.resume_from) / FLAGS.budget
    if FLAGS.snapshot_now:
        if not FLAGS.snapshot:
            print("error: --snapshot_now needs --snapshot=DIR (where the snapshots go)", file=sys.stderr)
            sys.exit(2)
        if not root.is_dir():
            print(f"error: --root: {root} does not exist; nothing to snapshot", file=sys.stderr)
            sys.exit(2)
        for line in snapshot_all(root, names, snapshots):
            print(line)
        return
    if FLAGS.launcher == "slurm" and not FLAGS.report:
        from experiments.study import slurm
        root.mkdir(parents=True, exist_ok=True)
        executor = slurm.slurm_executor(root / "slurm", partition=FLAGS.slurm_partition, time_min=FLAGS.slurm_time,
                                        cpus=FLAGS.slurm_cpus, parallelism=FLAGS.slurm_parallelism,
                                        requeues=FLAGS.slurm_requeues)
        submitted = slurm.submit(executor, names, all_jobs, root, _sources(snapshots))
        for name, job in zip(names, submitted):
            print(f"{name}: submitted as SLURM job {job.job_id} (log: {root / f'{name}.log'})")
        print(f"when they have finished: python -m experiments.reproduce --budget={FLAGS.budget} "
              f"--root={FLAGS.root} --report")
        return
    try:
        deadline = queue_lib.parse_deadline(FLAGS.deadline, START)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    status = 0
    if not FLAGS.report:
        status = run_queue(names, all_jobs, root, snapshots, deadline)
    if FLAGS.budget == "smoke":  # not part of the study's page
        sys.exit(status)
    from experiments.study import frontier, page, records
    report_path = pathlib.Path(FLAGS.report_path or pathlib.Path(FLAGS.root) / "reproduction.md")
    kept = report_path.parent / report_path.stem / "workdirs"
    if FLAGS.report and not any((pathlib.Path(FLAGS.root) / b).is_dir() or (kept / b).is_dir()
                                for b in ("paper", "cpu", "frontier")):
        print(f"error: --root={FLAGS.root} holds no paper/, cpu/ or frontier/ job folders (and {kept} no kept records): "
              "nothing to report", file=sys.stderr)
        sys.exit(2)
    try:
        # the analysis step first (it writes horizon.json into finished frontier jobs); the page only reads
        frontier.analyze_horizons(pathlib.Path(FLAGS.root), kept)
        page.write_page(pathlib.Path(FLAGS.root), report_path)
    except records.JobRecordsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        print(f"error: --report_path={report_path}: cannot write the report ({error.strerror or error})",
              file=sys.stderr)
        sys.exit(2)
    print(f"report: {report_path}")
    sys.exit(status)


def main_with_boundary(argv):
    try:
        main(argv)
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001  one line, no traceback (NPRNN_TRACEBACK=1 shows it)
        from experiments import common
        common.unexpected(error)


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main_with_boundary, flags_parser=parse_tool_flags)
