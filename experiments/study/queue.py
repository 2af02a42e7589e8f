"""The study's job queue: up to N jobs at once, each in its own process pinned to its own core,
stopped cleanly at a deadline or on SIGTERM / SIGUSR1, its snapshot refreshed atomically.

`experiments.reproduce` builds a `Queue` from its flags; everything here takes plain values.

A job is one training binary run (`command`). Its process gets one core
(`os.sched_setaffinity`, set by the binary from ``NPRNN_JOB_CORE``), one XLA host device, and
dies with the driver (Linux's parent-death signal, asked for by the binary). To stop, the driver sends it SIGTERM: the binary finishes its current segment, writes
that segment's checkpoint and exits with `STOPPED_EXIT`; the same command later resumes there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

STOPPED_EXIT = 75  # experiments.common.STOPPED_EXIT: stopped on request, checkpoint written
POLL_S = 1.0
HEARTBEAT_S = 60.0
SLACK_S = 20.0  # added to the measured margin (process exit, the report)


def started_at(started: float) -> str:
    """An invocation's name in its cost records: its start (``time.time()``), local time, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))


def usable_cores() -> list:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def parse_deadline(text: str, now: Optional[float] = None) -> Optional[float]:
    """``MINUTES`` from now or ``HH:MM`` (local time, today, else tomorrow) as a Unix time;
    None for ""; ValueError naming the value otherwise."""
    now = time.time() if now is None else now
    text = text.strip()
    if not text:
        return None
    if ":" in text:
        try:
            hours, minutes = (int(x) for x in text.split(":"))
            if not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError
        except ValueError:
            raise ValueError(f"--deadline={text!r}: give minutes from now (e.g. 90) or a time HH:MM (e.g. 23:30)") \
                from None
        local = time.localtime(now)
        target = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, hours, minutes, 0, 0, 0, -1))
        return target if target > now else target + 24 * 3600
    try:
        minutes = float(text)
    except ValueError:
        raise ValueError(f"--deadline={text!r}: give minutes from now (e.g. 90) or a time HH:MM (e.g. 23:30)") from None
    if not minutes > 0 or minutes != minutes or minutes == float("inf"):
        raise ValueError(f"--deadline={text!r}: the minutes must be a positive number")
    return now + 60 * minutes


@dataclasses.dataclass
class Running:
    name: str
    process: subprocess.Popen
    core: Optional[int]
    started: float
    log: object
    record: dict
    samples: list = dataclasses.field(default_factory=list)  # [(time, step)] of the job's progress


def _last_progress(workdir: pathlib.Path) -> tuple:
    """``(init, step, num_steps)`` of a job's newest metrics row (None, 0, total when none)."""
    total = None
    try:
        total = json.loads((workdir / "config.json").read_text())["config"]["num_steps"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path = workdir / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [x for x in f.read().decode("utf-8", "replace").splitlines() if x.strip()]
        row = json.loads(lines[-1])
        return row.get("init"), int(row.get("step", 0)), total
    except (OSError, ValueError, IndexError, AttributeError):
        return None, 0, total


def _error_line(log_path: pathlib.Path) -> str:
    """The last ``error:`` line (or the last line) a job wrote to its log."""
    try:
        lines = [x.strip() for x in log_path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    errors = [x for x in lines if x.startswith("error:") or "unexpected failure" in x]
    return (errors or lines or [""])[-1][:200]


def job_env(core: Optional[int]) -> dict:
    """The environment of a study job's binary: one XLA host device (the same records wherever it
    runs), pinned to ``core`` (None: not pinned) and ending with its parent (the binary does both
    at its start: `experiments.common`)."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags + ["--xla_force_host_platform_device_count=1"])
    env.update({"NPRNN_JOB_CORE": "" if core is None else str(core), "NPRNN_JOB_DIE_WITH_PARENT": "1"})
    return env


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Queue:
    """Runs ``names`` (in this order) on ``workers`` cores; see the module doc.

    ``command(name, workdir)`` gives a job's command line; ``before_start(name)`` returns a
    line to print and whether to run it (False: not run, as a job finished elsewhere or a frontier
    stop; None: refused, counted as failed);
    ``snapshot()`` refreshes the snapshot of every unfinished job (atomically) and returns
    what it kept; ``record_cost(record)`` appends a job's cost record.
    """

    def __init__(self, names: list, root: pathlib.Path, *, workers: int, command: Callable,
                 before_start: Callable, snapshot: Optional[Callable] = None, snapshot_every_s: float = 1800.0,
                 deadline: Optional[float] = None, record_cost: Callable = lambda record: None,
                 out=None, cores: Optional[list] = None):
        self.pending = list(names)
        self.names = list(names)
        self.root = root
        self.workers = workers
        self.command, self.before_start, self.snapshot = command, before_start, snapshot
        self.snapshot_every_s, self.deadline, self.record_cost = snapshot_every_s, deadline, record_cost
        self.out = out  # None: sys.stdout at the time of printing (a caller may redirect it)
        self.cores = (cores or usable_cores())[:max(1, workers)]
        self.running: dict = {}
        self.outcomes: dict = {}  # name -> "finished" / "failed (exit N): ..." / "stopped" / "skipped: ..."
        self.stop_reason: Optional[str] = None
        self.segment_s = 0.0  # the longest interval measured between two of a job's progress rows
        self.snapshot_s = 0.0  # how long the last snapshot refresh took

    def say(self, text: str):
        print(text, file=self.out or sys.stdout, flush=True)

    # --- signals -------------------------------------------------------------------------
    def request_stop(self, reason: str):
        if self.stop_reason is None:
            self.stop_reason = reason

    def install_signals(self) -> dict:
        def handler(signum, frame):
            del frame
            self.request_stop(signal.Signals(signum).name)
        return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGUSR1)}

    # --- the loop ------------------------------------------------------------------------
    def margin_s(self) -> float:
        """How long before the deadline the jobs are told to stop: the longest segment measured
        (a job stops at its segment's end), the last snapshot's duration, and `SLACK_S`; 60 s for
        a segment not measured yet."""
        return (self.segment_s or 60.0) + self.snapshot_s + SLACK_S

    def _start(self, name: str, core: Optional[int]):
        line, run = self.before_start(name)
        if line:
            self.say(line)
        if run is None:  # refused before it started (the line says why)
            self.outcomes[name] = "failed (refused before its start)"
            return
        if not run:
            self.outcomes[name] = "skipped"
            return
        workdir = self.root / name
        workdir.parent.mkdir(parents=True, exist_ok=True)
        command = self.command(name, workdir)
        log = open(self.root / f"{name}.log", "a")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} core {core} {' '.join(command)}\n")
        log.flush()
        # its own session: a Ctrl-C in the driver's terminal reaches the driver alone. No
        # preexec_fn: nothing runs between fork and exec in a process with JAX.
        env = job_env(core)
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env, start_new_session=True)
        started = time.time()
        # started_at names the invocation: its heartbeat's records ("running at snapshot", "killed")
        # and its final one share it, so merging cost records keeps each invocation once.
        record = {"job": name, "command": command[1:], "core": core,
                  "started_at": started_at(started)}
        self.running[name] = Running(name, process, core, started, log, record)
        self.say(f"{name}: started on core {core} (log: {self.root / f'{name}.log'})")

    def _heartbeat(self, job: Running):
        (self.root / f"{job.name}.running.json").write_text(json.dumps(
            {"record": job.record, "started": job.started, "updated": time.time()}))

    def _finish(self, job: Running, status: int):
        job.log.close()
        seconds = time.time() - job.started
        record = {**job.record, "exit": status, "seconds": round(seconds, 1),
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.record_cost(record)
        (self.root / f"{job.name}.running.json").unlink(missing_ok=True)
        del self.running[job.name]
        if status == 0:
            self.outcomes[job.name] = "finished"
            self.say(f"{job.name}: finished in {_fmt_time(seconds)}")
        elif status == STOPPED_EXIT:
            self.outcomes[job.name] = "stopped"
            self.say(f"{job.name}: stopped after {_fmt_time(seconds)} (it resumes from its last checkpoint)")
        else:
            why = _error_line(self.root / f"{job.name}.log")
            self.outcomes[job.name] = f"failed (exit {status})"
            self.say(f"{job.name}: failed (exit {status}) after {_fmt_time(seconds)}: {why}")

    def _sample(self, job: Running, now: float):
        init, step, total = _last_progress(self.root / job.name)
        if job.samples and step > job.samples[-1][1]:
            self.segment_s = max(self.segment_s, now - job.samples[-1][0])
        if not job.samples or step != job.samples[-1][1]:
            job.samples.append((now, step))
        return init, step, total

    def progress_line(self, job: Running, now: float) -> str:
        """``job  init  step/total  rate  left`` in under 80 columns."""
        init, step, total = _last_progress(self.root / job.name)
        rate = None
        if len(job.samples) >= 2 and job.samples[-1][1] > job.samples[0][1]:
            (t0, s0), (t1, s1) = job.samples[0], job.samples[-1]
            if s1 > s0 and t1 > t0:
                rate = (s1 - s0) / (t1 - t0)
        left = "?" if rate is None or total is None else _fmt_time((total - step) / rate)
        text = (f"  {job.name[:28]:<28} {str(init or '-')[:11]:<11} {step:>9,}/{total or 0:<9,} "
                f"{'?' if rate is None else f'{rate:,.0f}'}/s {left}")
        return text[:79]

    def _refresh_snapshot(self):
        if self.snapshot is None:
            return
        start = time.time()
        kept = self.snapshot()
        self.snapshot_s = time.time() - start
        self.last_snapshot = time.time()
        if kept:
            self.say(f"snapshot refreshed ({self.snapshot_s:.0f} s): " + "; ".join(kept))

    def run(self) -> int:
        """Runs the queue; the exit status: 0 when every job finished or was stopped on request
        (resumable), 1 when one failed."""
        self.last_snapshot = time.time()
        last_beat = last_line = 0.0
        try:
            while self.pending or self.running:
                now = time.time()
                if self.deadline is not None and self.stop_reason is None and now >= self.deadline - self.margin_s():
                    self.request_stop(f"deadline {time.strftime('%H:%M:%S', time.localtime(self.deadline))} "
                                      f"(margin {self.margin_s():.0f} s)")
                if self.stop_reason is not None:
                    break
                for job in list(self.running.values()):
                    status = job.process.poll()
                    if status is not None:
                        self._finish(job, status)
                free = [c for c in self.cores if c not in {j.core for j in self.running.values()}]
                while free and self.pending and self.stop_reason is None:
                    self._start(self.pending.pop(0), free.pop(0))
                    free = [c for c in self.cores if c not in {j.core for j in self.running.values()}]
                for job in self.running.values():
                    self._sample(job, now)
                if now - last_beat >= HEARTBEAT_S:
                    for job in self.running.values():
                        self._heartbeat(job)
                    last_beat = now
                if self.running and now - last_line >= HEARTBEAT_S:
                    for job in self.running.values():
                        self.say(self.progress_line(job, now))
                    last_line = now
                if self.snapshot is not None and now - self.last_snapshot >= self.snapshot_every_s:
                    self._refresh_snapshot()
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self.request_stop("interrupted (Ctrl-C)")
        if self.stop_reason is not None:
            self._stop_all()
        return 1 if any(o.startswith("failed") for o in self.outcomes.values()) else 0

    def _stop_all(self):
        self.say(f"stopping: {self.stop_reason}; every running job writes a checkpoint and stops")
        for job in self.running.values():
            try:
                job.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        limit = time.time() + max(self.margin_s(), 120.0) * 2
        while self.running and time.time() < limit:
            for job in list(self.running.values()):
                status = job.process.poll()
                if status is not None:
                    self._finish(job, status)
            time.sleep(0.2)
        for job in list(self.running.values()):  # past the limit: killed, the last checkpoint stays
            job.process.kill()
            self._finish(job, job.process.wait())
        self._refresh_snapshot()

    def status_lines(self, resume: str) -> list:
        """One line per job: finished / at step s of n / not started, and the command that continues."""
        lines = []
        for name in self.names:
            outcome = self.outcomes.get(name)
            if outcome == "finished":
                lines.append(f"  {name}: finished")
                continue
            init, step, total = _last_progress(self.root / name)
            if outcome is None and not (self.root / name / "config.json").is_file():
                lines.append(f"  {name}: not started")
            elif outcome and outcome.startswith("failed"):
                lines.append(f"  {name}: {outcome}, at step {step:,} of {total or 0:,} ({init})")
            else:
                lines.append(f"  {name}: at step {step:,} of {total or 0:,} ({init or '-'})")
        unfinished = [n for n in self.names if self.outcomes.get(n) not in ("finished", "skipped")]
        if unfinished:
            lines.append(f"continue with: {resume}")
        return lines
