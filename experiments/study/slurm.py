"""The study on a SLURM cluster: ``reproduce --launcher=slurm`` submits the jobs as one job
array through submitit (``pip install -e ".[slurm]"``), one array task per job.

Each task (`StudyTask`) starts its job's workdir from its snapshot when the workdir is missing
(checked first: `reproduce.snapshot_problem`), runs the job's binary as a child and waits. Before
a time limit or a preemption submitit signals the task (SIGUSR2): the task asks the binary to
stop (SIGTERM: it ends its current segment and writes its checkpoint), waits for it, and
returns itself as the next submission, so submitit requeues the same task, which resumes from
the workdir. A finished job is not run again. Tested with submitit's local executor, which
runs the same code without a cluster, and on a one-node SLURM 22.05 cluster (Debian's
slurm-wlm): `tests/test_reproduce.py::test_on_a_real_slurm_cluster`, which runs where `sinfo`
answers.

The hook runs inside submitit's signal handler, in the thread that is waiting for the binary
(`Popen.wait`, which holds the Popen's lock while it waits): it must not call `Popen.wait` or
`poll` itself (that deadlocks, as the real cluster showed), so it waits with
``waitid(WNOWAIT)``, which sees the binary's end without reaping it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Optional

REPO = pathlib.Path(__file__).resolve().parents[2]


class StudyTask:
    """One array task: ``task(name)`` runs study job ``name`` to its end (or to a requeue)."""

    def __init__(self, jobs: dict, root: pathlib.Path, snapshots: list):
        self.jobs, self.root, self.snapshots = dict(jobs), pathlib.Path(root), list(snapshots)
        self._child: Optional[subprocess.Popen] = None

    def __getstate__(self):  # pickled by submitit, with its requeue too: never the running child
        return {k: v for k, v in self.__dict__.items() if k != "_child"}

    def __setstate__(self, state):
        self.__dict__.update(state, _child=None)

    def __call__(self, name: str) -> dict:
        from experiments import reproduce
        from experiments.study import queue

        workdir = self.root / name
        if (workdir / "summary.json").is_file():
            return {"job": name, "exit": 0, "note": "finished before this task"}
        for source in self.snapshots:
            if reproduce.seed_from_snapshot(name, self.root, pathlib.Path(source), task=self.jobs[name][0]):
                print(f"{name}: continues from the snapshot in {reproduce.snapshot_folder(pathlib.Path(source), name)}",
                      flush=True)
                break
        workdir.parent.mkdir(parents=True, exist_ok=True)
        command = reproduce.command(self.jobs[name], workdir)
        env = queue.job_env(None)  # as under the local queue (SLURM's cgroup chooses the core)
        with open(self.root / f"{name}.log", "a") as log:
            self._child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, env=env)
            status = self._child.wait()
        self._child = None
        if status == queue.STOPPED_EXIT:  # SLURM signalled the binary itself (scancel, a preemption)
            raise RuntimeError(f"{name}: its binary was stopped from outside (exit {status}) after writing its "
                               "checkpoint; submit the job again and it continues from there "
                               f"(log: {self.root / f'{name}.log'})")
        if status != 0:
            raise RuntimeError(f"{name}: its binary ended with exit {status} (log: {self.root / f'{name}.log'})")
        return {"job": name, "exit": 0}

    def checkpoint(self, name: str):
        """submitit's hook before a time limit or a preemption: the binary stops at the end of its
        segment with its checkpoint; the same task is submitted again and resumes from it."""
        import submitit

        if self._child is not None:
            stop_and_wait(self._child.pid)
        return submitit.helpers.DelayedSubmission(StudyTask(self.jobs, self.root, self.snapshots), name)


def _ended(pid: int) -> bool:
    """Whether child ``pid`` has ended, without reaping it (its Popen.wait does that)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def stop_and_wait(pid: int, poll_s: float = 0.2) -> None:
    """Asks child ``pid`` (a study binary) to stop at its next checkpoint (SIGTERM) and waits until
    it has ended, without touching its Popen: safe inside a signal handler that interrupted
    that Popen's own wait. SLURM's kill after its signal delay bounds the wait."""
    if _ended(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    while not _ended(pid):
        time.sleep(poll_s)


def submit(executor, names: list, jobs: dict, root: pathlib.Path, snapshots: list) -> list:
    """Submits ``names`` as one array on ``executor`` (a submitit executor; its parameters set by the
    caller); returns the submitit jobs, in the order of ``names``."""
    root.mkdir(parents=True, exist_ok=True)
    # the array tasks unpickle `StudyTask`: the checkout must be importable wherever they run
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    task = StudyTask({n: jobs[n] for n in names}, root, snapshots)
    return executor.map_array(task, list(names))


def slurm_executor(folder: pathlib.Path, *, partition: str, time_min: int, cpus: int, parallelism: int,
                   requeues: int):
    """A submitit SLURM executor for the study's array: one task per job, ``cpus`` cores each,
    ``time_min`` minutes per run (requeued up to ``requeues`` times after a time-out), at most
    ``parallelism`` tasks at once."""
    try:
        import submitit
    except ImportError:
        print('error: --launcher=slurm needs submitit: pip install -e ".[slurm]"', file=sys.stderr)
        sys.exit(2)
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm", slurm_max_num_timeout=requeues)
    executor.update_parameters(timeout_min=time_min, cpus_per_task=cpus, slurm_array_parallelism=parallelism,
                               **({"slurm_partition": partition} if partition else {}))
    return executor
