"""The reproduction driver: snapshots of unfinished jobs resume to the uninterrupted result,
killed invocations keep their cost, and the paper-budget part of the page."""

import json
import pathlib
import time

import pytest

from experiments import reproduce
from experiments.study import frontier, page, plan, records
from experiments.configs import addition
from nprnn_jax import experiment, study


class Stop(Exception):
    pass


def _interrupt_at(step_to_stop):
    def on_event(event, init, step):
        if event == "checkpoint_started" and init == "irnn" and step == step_to_stop:
            raise Stop()
    return on_event


@pytest.mark.slow
def test_a_snapshot_of_an_unfinished_job_resumes_elsewhere_to_the_uninterrupted_result(tmp_path):
    config = addition.smoke()
    config.num_steps, config.eval_every = 30, 10
    whole = tmp_path / "whole"
    experiment.train_and_evaluate(config, whole)
    machine_a = tmp_path / "a" / "paper" / "job"
    with pytest.raises(Stop):
        experiment.train_and_evaluate(config, machine_a, on_event=_interrupt_at(20))
    assert not (machine_a / "summary.json").exists()
    snapshots = tmp_path / "committed" / "paper"
    kept = reproduce.snapshot_job(machine_a, snapshots / "job")
    # np finished (its final checkpoint), irnn at its newest: only those, with their hashes
    assert kept == [("irnn", 20), ("np", 30)]
    assert sorted(p.name for p in (snapshots / "job" / "checkpoints" / "np").iterdir()) == ["30"]
    assert (snapshots / "job" / "checkpoint_hashes" / "irnn" / "20.json").is_file()
    assert not (snapshots / "job" / "tensorboard").exists()
    # a new machine: the job starts from the snapshot and ends as the uninterrupted run
    machine_b = tmp_path / "b" / "paper"
    assert reproduce.seed_from_snapshot("job", machine_b, snapshots)
    assert not reproduce.seed_from_snapshot("job", machine_b, snapshots)  # never over a workdir
    experiment.train_and_evaluate(config, machine_b / "job")
    for name in ("summary.json", "metrics.jsonl"):
        assert (machine_b / "job" / name).read_text() == (whole / name).read_text(), name
    # once finished, its kept records replace the snapshot: no checkpoints of a finished job
    records._keep_records(machine_b / "job", snapshots / "job")
    assert sorted(p.name for p in (snapshots / "job").iterdir()) == [
        "config.json", "metrics.jsonl", "results.md", "summary.json", "validation.json"]


def test_kept_records_carry_a_jobs_dynamics_folder(tmp_path):
    from experiments.study import records
    job = tmp_path / "root" / "mnist"
    (job / "dynamics").mkdir(parents=True)
    (job / "config.json").write_text("{}")
    (job / "dynamics" / "dynamics.json").write_text('{"np init": {}}')
    (job / "dynamics" / "sensitivity.png").write_bytes(b"\x89PNG")
    (job / "checkpoints").mkdir()
    records._keep_records(job, tmp_path / "kept" / "mnist")
    assert sorted(str(p.relative_to(tmp_path / "kept" / "mnist")) for p in (tmp_path / "kept" / "mnist").rglob("*")) \
        == ["config.json", "dynamics", "dynamics/dynamics.json", "dynamics/sensitivity.png"]


def test_a_killed_invocation_is_recorded_from_its_heartbeat(tmp_path):
    (tmp_path / "job.running.json").write_text(json.dumps(
        {"record": {"job": "job", "binary": "addition", "variant": "paper_T150", "overrides": []},
         "started": 1000.0, "updated": 4600.0}))
    reproduce._record_killed(tmp_path, "job")
    record = json.loads((tmp_path / "jobs.jsonl").read_text())
    assert (record["job"], record["exit"], record["seconds"]) == ("job", "killed", 3600.0)
    # named by its start, as its driver names it (a heartbeat of an older driver has no name)
    assert record["started_at"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(1000.0))
    assert not (tmp_path / "job.running.json").exists()


def _paper_job(path: pathlib.Path, seq_len: int, values: dict, seeds=(0,), running=None):
    """A paper-budget addition job's records; ``running``: ``{init: step}`` of inits still
    running (then the job is unfinished: no summary.json, their rows end at that step)."""
    path.mkdir(parents=True)
    running = running or {}
    config = {"task": "addition", "seq_len": seq_len, "inits": list(values) + list(running), "num_steps": 1_000_000,
              "batch_size": 1, "dropout_rates": [0.0], "optimizer": "sgd", "per_init": {},
              "learning_rates": [0.001], "num_seeds": len(seeds), "seed_offset": seeds[0], "eval_every": 20_000,
              "train_size": 100_000}
    summary = [{"init": init, "learning_rate": 0.001, "dropout": 0.0, "seed": seed, "test_accuracy": v[i],
                "test_loss": 0.01, "diverged": False} for init, v in values.items() for i, seed in enumerate(seeds)]
    rows = [dict(r, step=s, test_loss=1.0 if s == 0 else 0.01) for r in summary for s in (0, 1_000_000)]
    rows += [{"init": init, "learning_rate": 0.001, "dropout": 0.0, "seed": seed, "test_accuracy": 0.5,
              "test_loss": 1.0 if s == 0 else 0.01, "diverged": False, "step": s}
             for init, last in running.items() for seed in seeds for s in (0, last)]
    (path / "config.json").write_text(json.dumps({"version": 2, "config": config, "plan": {"devices": 1},
                                                  "task": {"name": "addition", "seq_len": seq_len}}))
    if not running:
        (path / "summary.json").write_text(json.dumps(summary))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_an_unfinished_jobs_finished_runs_are_read_from_its_metrics(tmp_path):
    from experiments.study import records

    _paper_job(tmp_path / "addition_T300", 300, {"np": [0.30], "grnn": [0.12]}, running={"irnn": 500_000})
    job = records.find_unfinished("addition_T300", tmp_path, None)
    assert job["summary"] == [
        {"init": "np", "learning_rate": 0.001, "dropout": 0.0, "seed": 0, "test_accuracy": 0.30, "test_loss": 0.01,
         "diverged": False},
        {"init": "grnn", "learning_rate": 0.001, "dropout": 0.0, "seed": 0, "test_accuracy": 0.12, "test_loss": 0.01,
         "diverged": False}]
    assert job["running"] == {"irnn": 500_000} and job["config"]["num_steps"] == 1_000_000
    # a finished job is `_find_job`'s, and a job's folder holding another task's run is refused
    _paper_job(tmp_path / "kept" / "addition_T200", 200, {"np": [0.2]})
    assert records.find_unfinished("addition_T200", tmp_path, tmp_path / "kept") is None
    assert records.find_unfinished("addition_T400", tmp_path, tmp_path / "kept") is None
    _paper_job(tmp_path / "multiplication_T200", 200, {"np": [0.2]}, running={"irnn": 10})
    with pytest.raises(records.JobRecordsError, match="holds a 'addition' run, not this job's 'multiplication'"):
        records.find_unfinished("multiplication_T200", tmp_path, None)


def test_the_page_of_a_root_holding_only_an_unfinished_job_makes_its_figures_folder(tmp_path):
    # what the driver does when stopped early in a fresh root: the page goes to <root>/reproduction.md,
    # whose figures folder nothing had made yet (the figure was refused with "No such file or directory")
    root = tmp_path / "study"
    _paper_job(root / "paper" / "addition_T400", 400, {"np": [0.078]}, running={"nrnn": 180_000})
    text = page.write_page(root, root / "reproduction.md")
    assert "| np | 83.5 / 7.8 |" in text and "| nrnn | 16 / running (180,000 of 1,000,000 updates) |" in text
    assert (root / "reproduction" / "paper_addition_figure.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_the_page_puts_the_papers_figures_beside_ours_cell_by_cell(tmp_path):
    root = tmp_path / "study"
    _paper_job(root / "paper" / "addition_T150", 150, {"np": [0.97], "irnn": [0.40]})
    _paper_job(root / "paper" / "addition_T150_seeds12", 150, {"np": [0.91, 0.30], "irnn": [0.60, 0.10]},
               seeds=(1, 2))
    _paper_job(root / "paper" / "addition_T200", 200, {"np": [0.20], "irnn": [0.80]})
    # an unfinished job: np has finished (30%), IRNN is at update 500,000
    _paper_job(root / "paper" / "addition_T300", 300, {"np": [0.30]}, running={"irnn": 500_000})
    config_path = root / "paper" / "addition_T300" / "config.json"  # and gRNN, not started
    record = json.loads(config_path.read_text())
    record["config"]["inits"].append("grnn")
    config_path.write_text(json.dumps(record))
    (root / "paper" / "jobs.jsonl").write_text(
        json.dumps({"job": "addition_T150", "seconds": 3600.0, "exit": 0}) + "\n"
        + json.dumps({"job": "addition_T200", "seconds": 1800.0, "exit": "killed"}) + "\n")
    out = tmp_path / "docs" / "reproduction.md"
    text = page.write_page(root, out)
    assert text.index("## Part 1: the paper's own budget") < text.index("### Figure 3: addition")
    # T=150: three seeds (0.97, 0.91, 0.30): mean 72.7, range 30.0-97.0, 2 of 3 >= 50%
    assert "| variant | T = 150 | T = 200 | T = 300 (unfinished) |" in text
    assert "| np | 95 / 72.7 (30.0-97.0; 2/3) | 94.5 / 20.0 | 88 / 30.0 |" in text
    assert "| irnn | 85.5 / 36.7 (10.0-60.0; 1/3) | 87.5 / 80.0 | 75 / running (500,000 of 1,000,000 updates) |" \
        in text
    assert "| grnn | - | - | 8 / not started |" in text
    assert "cost of these cells on this machine: 1.5 h" in text
    # np's runs counted, not its mean: 2 of 3 at T=150, 0 of 1 at T=200 and at T=300 (finished
    # there though its job has not) reach 50% (the paper's one run: every length); np's mean is
    # the best at T=150 only (paper: both), judged where every variant has finished
    assert "2 of 5 np-RNN runs reach the success bar (50%) (T=150 2/3, T=200 0/1, T=300 0/1; the paper's one " \
           "run per cell: at 3 of 3 sequence lengths), and np-RNN's mean is the best variant's at 1 of 2 " \
           "sequence lengths where every variant has finished (the paper: 2)" in text
    assert ("`addition_T300` (addition paper_T300): still running or interrupted when this report was made; "
            "`python -m experiments.reproduce --budget=paper --root=DIR --only=addition_T300` resumes it. "
            "Finished runs (in the figure's table above): np; still running: irnn at update 500,000 of "
            "1,000,000, grnn not started.") in text
    assert (tmp_path / "docs" / "reproduction" / "paper_addition_figure.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "docs" / "reproduction" / "workdirs" / "paper" / "addition_T150" / "summary.json").is_file()
    assert "`addition_T400` (addition paper_T400): not started yet" in text
    # rebuilt from the kept records alone (an unfinished job's: its snapshot there), the page is the same
    import shutil
    shutil.copytree(root / "paper" / "addition_T300", tmp_path / "docs" / "reproduction" / "workdirs" / "paper"
                    / "addition_T300")
    again = page.write_page(tmp_path / "elsewhere", out)
    assert again.replace(str(tmp_path / "elsewhere"), str(root)) == text


def test_the_report_never_writes_into_the_checkout_unless_told(tmp_path):
    from conftest import REPO, run_binary

    page = REPO / "docs" / "reproduction.md"
    before = page.read_bytes()
    (tmp_path / "cpu").mkdir()
    result = run_binary("reproduce", "--report", f"--root={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert page.read_bytes() == before
    assert (tmp_path / "reproduction.md").is_file() and f"report: {tmp_path}/reproduction.md" in result.stdout


def test_the_driver_refuses_a_mistyped_root_damaged_records_and_foreign_workdirs(tmp_path):
    from conftest import run_binary

    def report(root):
        return run_binary("reproduce", "--report", f"--root={root}", f"--report_path={tmp_path / 'page.md'}")
    result = report(tmp_path / "typo")
    assert result.returncode == 2 and "holds no paper/, cpu/ or frontier/ job folders" in result.stderr
    job = tmp_path / "root" / "cpu" / "addition_T150"
    job.mkdir(parents=True)
    (job / "summary.json").write_text("garbage")
    (job / "config.json").write_text("{}")
    (job / "metrics.jsonl").write_text("")
    result = report(tmp_path / "root")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {job}: unreadable records (JSONDecodeError" in result.stderr, result.stderr
    _paper_job(tmp_path / "foreign", 150, {"np": [0.5]})
    record = json.loads((tmp_path / "foreign" / "config.json").read_text())
    record["config"]["task"] = "multiplication"
    (job / "config.json").write_text(json.dumps(record))
    (job / "summary.json").write_text((tmp_path / "foreign" / "summary.json").read_text())
    result = report(tmp_path / "root")
    assert result.returncode == 2 and "holds a 'multiplication' run, not this job's 'addition'" in result.stderr
    result = run_binary("reproduce", "--only=,")
    assert result.returncode == 2 and "names no job" in result.stderr


def _frontier_job(path: pathlib.Path, seq_len: int, test: dict, validation: dict, success_share=0.5):
    """A finished frontier job: ``{init: {lr: [share per seed]}}`` on test and on validation."""
    path.mkdir(parents=True)
    rates = sorted({lr for by_lr in test.values() for lr in by_lr})
    seeds = len(next(iter(next(iter(test.values())).values())))
    config = {"task": "addition", "seq_len": seq_len, "inits": list(test), "num_steps": 4000, "batch_size": 16,
              "dropout_rates": [0.0], "optimizer": "sgd", "per_init": {}, "learning_rates": rates,
              "num_seeds": seeds, "seed_offset": 0, "eval_every": 1000, "train_size": 0, "hidden_size": 100,
              "clip_norm": 10.0, "test_size": 2000, "success_share": success_share}
    def records(values):
        return [{"init": init, "learning_rate": lr, "dropout": 0.0, "seed": seed, "test_accuracy": share,
                 "test_loss": 0.01, "diverged": False}
                for init, by_lr in values.items() for lr, shares in by_lr.items() for seed, share in enumerate(shares)]
    summary = records(test)
    rows = [dict(r, step=s, test_loss=1.0 if s == 0 else 0.01) for r in summary for s in (0, 4000)]
    (path / "config.json").write_text(json.dumps({"version": 2, "config": config, "plan": {"devices": 1},
                                                  "task": {"name": "addition", "seq_len": seq_len}}))
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "validation.json").write_text(json.dumps(records(validation)))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_the_frontier_chooses_on_validation_and_finds_the_longest_solved_length(tmp_path):
    root = tmp_path / "study" / "frontier"
    # T=10: np solves at lr 0.01 (3/3), irnn at both rates; validation picks np's lr 0.01 and
    # irnn's lr 0.1 (where test has 2/3). T=20: validation picks np's lr 0.1, where test fails
    # (0/3) although lr 0.01 would succeed on test: the cell counts 0/3. irnn 2/3 at lr 0.01.
    _frontier_job(root / "addition_T10", 10,
                  {"np": {0.01: [0.9, 0.8, 0.7], 0.1: [0.1, 0.1, 0.1]}, "irnn": {0.01: [0.9, 0.9, 0.9], 0.1: [0.9, 0.9, 0.1]}},
                  {"np": {0.01: [0.9, 0.9, 0.9], 0.1: [0.1, 0.1, 0.1]}, "irnn": {0.01: [0.5, 0.5, 0.5], 0.1: [0.9, 0.9, 0.9]}})
    _frontier_job(root / "addition_T20", 20,
                  {"np": {0.01: [0.9, 0.9, 0.9], 0.1: [0.1, 0.2, 0.3]}, "irnn": {0.01: [0.6, 0.6, 0.1], 0.1: [0.1, 0.1, 0.1]}},
                  {"np": {0.01: [0.2, 0.2, 0.2], 0.1: [0.3, 0.3, 0.3]}, "irnn": {0.01: [0.6, 0.6, 0.6], 0.1: [0.1, 0.1, 0.1]}})
    finished = {name: records._load(root / name, "addition") for name in ("addition_T10", "addition_T20")}
    cells = frontier.frontier_cells(finished, "addition_T")
    assert {t: (c["learning_rate"], c["successes"], c["runs"]) for t, c in cells["np"].items()} == \
        {10: (0.01, 3, 3), 20: (0.1, 0, 3)}
    assert {t: (c["learning_rate"], c["successes"]) for t, c in cells["irnn"].items()} == {10: (0.1, 2), 20: (0.01, 2)}
    assert cells["np"][20]["selected_on"] == "validation"
    assert cells["irnn"][10]["wilson"] == study.wilson_interval(2, 3)
    assert frontier.longest_solved(cells["np"]) == 10 and frontier.longest_solved(cells["irnn"]) == 20
    assert frontier.longest_solved({40: {"successes": 1, "runs": 3}}) is None
    out = tmp_path / "docs" / "reproduction.md"
    text = page.write_page(tmp_path / "study", out)
    assert "## Part 3: where each variant stops working (the frontier)" in text
    assert "| np | 3/3 (lr 0.01) | 0/3 (lr 0.1) | 10 |" in text
    assert "| irnn | 2/3 (lr 0.1) | 2/3 (lr 0.01) | 20 |" in text
    assert (out.parent / "reproduction" / "frontier_addition.png").read_bytes()[:4] == b"\x89PNG"
    assert (out.parent / "reproduction" / "workdirs" / "frontier" / "addition_T10" / "validation.json").is_file()
    assert "No job of this protocol has finished yet" in text  # multiplication and the H&S protocol
    # Why: np's W_hh at init has one eigenvalue at 1 (and the rest near it only by chance),
    # IRNN's identity all 100; the horizons at init are measured on T=20 sequences.
    dynamics = json.loads((out.parent / "reproduction" / "frontier_addition_init_dynamics.json").read_text())
    assert dynamics["values"]["irnn"]["near_one"] == 100.0
    assert 1.0 <= dynamics["values"]["np"]["near_one"] < 100.0
    assert "| irnn | 100.0 |" in text and "Does the horizon at init predict the frontier?" in text


@pytest.mark.slow
def test_the_frontier_measures_trained_horizons_from_a_real_workdir(tmp_path):
    config = addition.smoke()
    config.num_steps, config.eval_every = 20, 20
    job = tmp_path / "study" / "frontier" / "addition_T10"
    experiment.train_and_evaluate(config, job)
    assert (job / "validation.json").is_file()
    out = tmp_path / "page.md"
    text = page.write_page(tmp_path / "study", out)
    assert not (job / "horizon.json").exists() and "horizon trained" not in text  # the page only reads
    assert frontier.analyze_horizons(tmp_path / "study") == [job / "horizon.json"]  # the analysis step writes
    assert frontier.analyze_horizons(tmp_path / "study") == []  # once
    text = page.write_page(tmp_path / "study", out)
    horizons = json.loads((job / "horizon.json").read_text())
    assert set(horizons) == {"np", "irnn"} and all(len(v) == 2 for v in horizons.values())  # 2 seeds each
    assert all(h is None or 0 <= h <= 10 for v in horizons.values() for h in v)
    assert "horizon trained, T=10" in text
    kept = out.parent / "page" / "workdirs" / "frontier" / "addition_T10"
    assert (kept / "horizon.json").read_text() == (job / "horizon.json").read_text()
    assert not (kept / "checkpoints").exists()


@pytest.mark.slow
def test_the_frontier_stops_where_two_lengths_in_a_row_had_no_success(tmp_path, capsys):
    root = tmp_path / "study" / "frontier"
    fail, win = {"np": {0.01: [0.1, 0.2]}, "irnn": {0.01: [0.3, 0.1]}}, {"np": {0.01: [0.1, 0.6]}, "irnn": {0.01: [0.1, 0.1]}}
    _frontier_job(root / "addition_T10", 10, win, win)
    _frontier_job(root / "addition_T20", 20, fail, fail)
    assert plan.frontier_stop("addition_T40", root) is None  # one failing length is not two
    _frontier_job(root / "addition_T40", 40, fail, fail)
    why = plan.frontier_stop("addition_T60", root)
    assert why.startswith("no run of any variant succeeded at T = 20 and T = 40")
    assert plan.frontier_stop("addition_T200", root) == why  # every longer length, run or not
    assert plan.frontier_stop("multiplication_T20", root) is None  # another protocol
    # one success anywhere at T=40 (a run at 50% within 0.04) and longer lengths run again
    (root / "addition_T40" / "summary.json").write_text(json.dumps(
        [dict(r, test_accuracy=0.5) if r["seed"] == 1 and r["init"] == "np" else r
         for r in json.loads((root / "addition_T40" / "summary.json").read_text())]))
    assert plan.frontier_stop("addition_T60", root) is None
    # the driver skips a stopped job (nothing started, said why); a finished report says so too
    (root / "addition_T40" / "summary.json").write_text(json.dumps(
        [dict(r, test_accuracy=0.1) for r in json.loads((root / "addition_T40" / "summary.json").read_text())]))
    from conftest import run_binary
    result = run_binary("reproduce", "--budget=frontier", f"--root={tmp_path / 'study'}", "--only=addition_T60",
                        f"--report_path={tmp_path / 'page.md'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "addition_T60: not run: no run of any variant succeeded at T = 20 and T = 40" in result.stdout
    assert not (root / "addition_T60").exists()
    text = (tmp_path / "page.md").read_text()
    assert "Not run: addition_T60, addition_T80, addition_T100, addition_T150, addition_T200: no run" in text


def test_a_job_finished_elsewhere_is_not_run_again_from_its_kept_records(tmp_path):
    kept = tmp_path / "kept"
    win = {"np": {0.01: [0.9, 0.6]}, "irnn": {0.01: [0.3, 0.1]}}
    _frontier_job(kept / "frontier" / "addition_T10", 10, win, win)  # records only, no checkpoints
    from conftest import run_binary
    result = run_binary("reproduce", "--budget=frontier", f"--root={tmp_path / 'study'}", "--only=addition_T10",
                        f"--resume_from={kept}", f"--report_path={tmp_path / 'page.md'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"addition_T10: finished, its records kept in {kept / 'frontier' / 'addition_T10'}; not run again" \
        in result.stdout
    assert not (tmp_path / "study" / "frontier" / "addition_T10").exists()


REPO = pathlib.Path(__file__).resolve().parents[1]
RECORDS = ("summary.json", "metrics.jsonl", "train_loss.jsonl", "validation.json")


def _driver(*args, **kwargs):
    import os
    import subprocess
    import sys
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "experiments.reproduce", "--budget=smoke", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _wait_for_step(workdir: pathlib.Path, step: int, timeout=300):
    import time
    end = time.time() + timeout
    while time.time() < end:
        path = workdir / "metrics.jsonl"
        if path.is_file() and any(json.loads(x)["step"] >= step for x in path.read_text().splitlines() if x.strip()):
            return
        time.sleep(0.2)
    raise AssertionError(f"{workdir} never reached step {step}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The smoke job addition_a run by the driver without a stop, beside addition_b on a second
    worker (the resumed runs below run alone: their equality shows --workers=2 gives a job the
    records it gets alone)."""
    root = tmp_path_factory.mktemp("whole")
    whole = _driver("--only=addition_a,addition_b", f"--root={root}", "--workers=2")
    out, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out[-3000:]
    assert "addition_a: started on core" in out and "addition_b: started on core" in out
    assert out.index("addition_b: started") < out.index("addition_a: finished"), out  # side by side
    return root / "smoke" / "addition_a"


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "deadline"])
def test_the_driver_stops_mid_job_and_the_snapshot_continues_elsewhere_to_the_same_records(tmp_path, stop,
                                                                                         uninterrupted):
    import signal
    # machine one: stopped mid-job (SIGTERM to the driver, or a deadline it reaches first),
    # its snapshot refreshed
    snap = tmp_path / "snapshots"
    args = ["--only=addition_a", f"--root={tmp_path / 'one'}", f"--snapshot={snap}", "--workers=1"]
    if stop == "deadline":  # 0.01 min: the margin (60 s before a segment is measured) is already past
        args.append("--deadline=0.01")
    one = _driver(*args)
    if stop == "sigterm":
        _wait_for_step(tmp_path / "one" / "smoke" / "addition_a", 20)
        one.send_signal(signal.SIGTERM)
    out, _ = one.communicate(timeout=600)
    assert one.returncode == 0, out[-3000:]
    assert "stopping: " in out and "continue with: python -m experiments.reproduce" in out, out[-3000:]
    assert not (tmp_path / "one" / "smoke" / "addition_a" / "summary.json").exists(), out[-3000:]
    kept = snap / "smoke" / "addition_a"
    if stop == "sigterm":
        assert "addition_a: stopped after" in out and "addition_a: at step " in out, out[-3000:]
        assert (kept / "checkpoints").is_dir()
    else:  # the deadline falls before the first job starts: nothing is started, nothing lost
        assert "addition_a: not started" in out, out[-3000:]
    # machine two: a fresh root, the same command; it continues from the snapshot
    two = _driver("--only=addition_a", f"--root={tmp_path / 'two'}", f"--snapshot={snap}", "--workers=1")
    out, _ = two.communicate(timeout=600)
    assert two.returncode == 0, out[-3000:]
    if stop == "sigterm":
        assert "continues from the snapshot" in out, out[-3000:]
    for name in RECORDS:
        assert (tmp_path / "two" / "smoke" / "addition_a" / name).read_bytes() == \
            (uninterrupted / name).read_bytes(), name


def test_the_deadline_reads_minutes_or_a_time_and_refuses_anything_else():
    from experiments.study import queue
    now = 1_000_000.0
    assert queue.parse_deadline("90", now) == now + 5400 and queue.parse_deadline("", now) is None
    at = queue.parse_deadline("23:30", now)
    assert now < at <= now + 24 * 3600
    for bad in ("soon", "-5", "0", "25:00", "nan", "12:3x"):
        with pytest.raises(ValueError, match="--deadline="):
            queue.parse_deadline(bad, now)


def test_the_queue_runs_at_most_workers_jobs_at_once_in_order_and_reports_failures(tmp_path):
    import io
    import sys
    import time
    from experiments.study import queue
    core = queue.usable_cores()[:1]
    spans = []

    def record_cost(record):
        spans.append((record["job"], time.time() - record["seconds"], time.time(), record["exit"], record["core"]))
        # the invocation's name (what merging cost records keys on): its start, to the second
        started = time.mktime(time.strptime(record["started_at"], "%Y-%m-%dT%H:%M:%S"))
        assert abs(started - spans[-1][1]) < 2, (record, spans[-1])

    def command(name, workdir):
        code = "import sys, time; time.sleep(0.6); sys.exit(3 if '" + name + "' == 'b' else 0)"
        return [sys.executable, "-c", code]

    out = io.StringIO()
    q = queue.Queue(["a", "b", "c"], tmp_path, workers=1, cores=core, command=command,
                    before_start=lambda name: ("", True), record_cost=record_cost, out=out)
    assert q.run() == 1  # b failed
    assert [s[0] for s in spans] == ["a", "b", "c"] and all(s[4] == core[0] for s in spans)
    for first, second in zip(spans, spans[1:]):
        assert second[1] >= first[2] - 0.3, spans  # one at a time on one core
    assert [s[3] for s in spans] == [0, 3, 0]
    assert "b: failed (exit 3)" in out.getvalue()
    assert q.outcomes == {"a": "finished", "b": "failed (exit 3)", "c": "finished"}


@pytest.mark.parametrize("args,message", [
    (["--root=", "--budget=smoke"], "--root='' is empty"),
    (["--only=addition_a,addition_a", "--budget=smoke"], "--only='addition_a,addition_a' names 'addition_a' twice"),
    (["--report", "--snapshot_now", "--snapshot=S"], "--report and --snapshot_now are two tasks"),
    (["--deadline=soon", "--budget=smoke"], "--deadline='soon'"),
    (["--snapshot_now", "--budget=smoke"], "--snapshot_now needs --snapshot=DIR"),
])
def test_driver_inputs_are_refused_by_name_and_nothing_is_written(tmp_path, monkeypatch, args, message):
    from conftest import run_binary
    monkeypatch.chdir(tmp_path)
    args = [a.replace("=S", f"={tmp_path / 'snap'}") for a in args]
    root = [] if any(a.startswith("--root") for a in args) else [f"--root={tmp_path / 'study'}"]
    result = run_binary("reproduce", *args, *root)
    assert result.returncode == 2 and f"error: {message}" in result.stderr, result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_driver_refuses_a_file_as_root_and_the_root_as_snapshot(tmp_path):
    from conftest import run_binary
    (tmp_path / "file").write_text("x")
    result = run_binary("reproduce", "--budget=smoke", f"--root={tmp_path / 'file'}")
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr
    result = run_binary("reproduce", "--budget=smoke", f"--root={tmp_path}", f"--snapshot={tmp_path}")
    assert result.returncode == 2 and "is --root itself" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_snapshot_refresh_killed_between_its_renames_leaves_the_previous_one_readable(tmp_path):
    # the refresh moves the old snapshot aside (<job>.old) before the new one takes its name; a kill
    # between the two renames leaves only <job>.old, which a resume reads
    snaps = tmp_path / "snaps"
    (snaps / "job.old" / "checkpoints" / "np" / "20").mkdir(parents=True)
    (snaps / "job.old" / "config.json").write_text("{}")
    assert reproduce.snapshot_folder(snaps, "job") == snaps / "job.old"
    assert reproduce.seed_from_snapshot("job", tmp_path / "root", snaps)
    assert (tmp_path / "root" / "job" / "checkpoints" / "np" / "20").is_dir()
    (snaps / "job").mkdir()
    assert reproduce.snapshot_folder(snaps, "job") == snaps / "job"


@pytest.mark.slow
def test_a_job_ends_with_its_driver_even_after_kill_9(tmp_path):
    # the job pins itself to its core and asks for SIGTERM when its driver dies: no orphan keeps
    # training and holding the workdir after the driver is killed -9
    import os
    import signal
    import subprocess
    import time
    driver = _driver("--only=addition_a", f"--root={tmp_path}", "--workers=1")
    workdir = tmp_path / "smoke" / "addition_a"
    end = time.time() + 300
    while time.time() < end and not (workdir / "config.json").is_file():
        time.sleep(0.2)
    child = subprocess.run(["pgrep", "-f", f"workdir={workdir}"], capture_output=True, text=True).stdout.split()
    assert len(child) == 1, child
    core = next(iter(os.sched_getaffinity(0)))
    assert os.sched_getaffinity(int(child[0])) == {core}
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    end = time.time() + 300
    while time.time() < end and os.path.exists(f"/proc/{child[0]}"):
        time.sleep(0.5)
    assert not os.path.exists(f"/proc/{child[0]}"), "the job outlived its driver"
    assert "SIGTERM: stopping after the current segment's checkpoint" in (tmp_path / "smoke" / "addition_a.log").read_text()


def test_cost_records_merge_instead_of_replacing_the_kept_ones():
    def line(job, started, exit, seconds, root="r1"):
        return json.dumps({"job": job, "command": [f"--workdir={root}/{job}"], "started_at": started,
                           "exit": exit, "seconds": seconds})

    running_b = line("b", "T1", "running at snapshot", 5)
    kept = "".join(x + "\n" for x in ('{"job": "a", "seconds": 10}', running_b))
    closed_b = line("b", "T1", 0, 7)
    new = "".join(x + "\n" for x in ('{"job": "a", "seconds": 10}', closed_b))
    # the invocation's closing record replaces its snapshot line, in the snapshot line's place
    assert records.merge_cost_records(kept, new) == '{"job": "a", "seconds": 10}\n' + closed_b + "\n"
    assert records.merge_cost_records("", new) == new
    # ... and is not replaced by it either way round; of two snapshot lines the later (longer) one
    assert records.merge_cost_records(new, kept) == '{"job": "a", "seconds": 10}\n' + closed_b + "\n"
    later_b = line("b", "T1", "running at snapshot", 9)
    assert records.merge_cost_records(kept, later_b + "\n").splitlines() == ['{"job": "a", "seconds": 10}', later_b]
    # A snapshot line of an invocation the new records do not hold (another root's, a driver
    # killed with its machine) stays: dropping it lost 1.8 hours of addition_T400's cost once.
    other_root = line("b", "T0", "running at snapshot", 6383, root="r0")
    merged = records.merge_cost_records(other_root + "\n" + running_b + "\n", new).splitlines()
    assert merged == [other_root, closed_b, '{"job": "a", "seconds": 10}']
    assert sum(json.loads(x)["seconds"] for x in merged) == 6383 + 7 + 10
    # so do old records without started_at, which cannot be told apart, unless repeated verbatim
    legacy = '{"job": "c", "exit": "running at snapshot", "seconds": 4}'
    assert records.merge_cost_records(legacy + "\n", legacy + '\n{"job": "c", "exit": 0, "seconds": 8}\n') \
        == legacy + '\n{"job": "c", "exit": 0, "seconds": 8}\n'


@pytest.mark.slow
def test_a_damaged_partial_or_foreign_snapshot_is_refused_before_anything_is_copied(tmp_path, uninterrupted):
    import shutil
    unfinished = tmp_path / "unfinished"
    shutil.copytree(uninterrupted, unfinished)
    (unfinished / "summary.json").unlink()

    def snapshot(case, damage):
        folder = tmp_path / case / "smoke" / "addition_a"
        reproduce.snapshot_job(unfinished, folder)
        damage(folder)
        return folder

    def truncate(folder):
        data = max((p for p in (folder / "checkpoints" / "np").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        data.write_bytes(data.read_bytes()[:10])

    def foreign(folder):
        record = json.loads((folder / "config.json").read_text())
        record["config"]["task"] = "multiplication"
        (folder / "config.json").write_text(json.dumps(record))

    cases = {"truncated": (truncate, r"checkpoints/np: no intact checkpoint \(step \d+: .* has changed since it was saved\)"),
             "no_config": (lambda f: (f / "config.json").unlink(), r"config.json is missing"),
             "garbage": (lambda f: open(f / "metrics.jsonl", "ab").write(b"\x00\xff\n"), r"metrics.jsonl: not text"),
             "half_line": (lambda f: open(f / "train_loss.jsonl", "a").write('{"init": \n{}\n'),
                           r"train_loss.jsonl: line \d+ is not a JSON record"),
             "foreign": (foreign, r"config.json is a 'multiplication' run, not this job's 'addition': the snapshot of "
                                  r"another job")}
    import re
    for case, (damage, message) in cases.items():
        problem = reproduce.snapshot_problem(snapshot(case, damage), "addition")
        assert problem and re.search(message, problem), (case, problem)
    assert reproduce.snapshot_problem(snapshot("whole", lambda f: None), "addition") is None
    # a last line cut short while the job wrote it is what a live snapshot may hold: accepted
    assert reproduce.snapshot_problem(snapshot("cut", lambda f: open(f / "metrics.jsonl", "a").write('{"in')),
                                      "addition") is None
    # through the driver: refused by name, exit 1, nothing copied into the root, nothing run
    for case in ("truncated", "foreign"):
        root = tmp_path / f"root_{case}"
        driver = _driver("--only=addition_a", f"--root={root}", f"--resume_from={tmp_path / case}", "--workers=1")
        out, _ = driver.communicate(timeout=600)
        assert driver.returncode == 1, out[-3000:]
        assert "addition_a: its snapshot is refused: " in out and "nothing was copied into" in out, out[-3000:]
        assert re.search(cases[case][1], out), out[-3000:]
        assert not (root / "smoke" / "addition_a").exists() and "started on core" not in out


def test_the_driver_imports_the_plan_never_the_page_and_no_study_file_is_long():
    import subprocess
    import sys
    from conftest import REPO
    script = ("import sys, experiments.reproduce; "
              "print(sorted(m for m in sys.modules if m.startswith('experiments.study')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # the plan and the paper's declarations it reads (protocols), the queue; never the page
    assert eval(result.stdout) == ["experiments.study", "experiments.study.plan", "experiments.study.protocols",
                                   "experiments.study.queue"]
    longest = max((len(p.read_text().splitlines()), p.name) for p in (REPO / "experiments").rglob("*.py"))
    assert longest[0] <= 600, longest


@pytest.mark.slow
def test_the_slurm_launcher_runs_an_array_and_a_requeued_task_resumes_to_the_same_records(tmp_path, uninterrupted):
    # submitit's local executor runs the array tasks without a cluster. The requeue is driven by
    # hand: the task's checkpoint hook (what submitit calls on SLURM's SIGUSR2 before a time limit
    # or a preemption) stops the binary at a checkpoint and returns the resubmission, which resumes
    # to the uninterrupted run's records. (The local executor forwards that signal only at its own
    # time-out, too late to aim at a running smoke job.)
    submitit = pytest.importorskip("submitit")
    import threading
    import time
    from experiments.study import slurm

    def result(job, timeout=900):
        end = time.time() + timeout
        while not job.done():
            if time.time() > end:
                job.cancel()
                raise AssertionError(f"array task {job.job_id} did not end in {timeout} s")
            time.sleep(0.5)
        return job.result()

    smoke = plan.jobs("smoke")
    root = tmp_path / "requeued" / "smoke"
    task = slurm.StudyTask(smoke, root, [])
    first = threading.Thread(target=lambda: pytest.raises(RuntimeError, task, "addition_a"))
    first.start()
    _wait_for_step(root / "addition_a", 20)
    delayed = task.checkpoint("addition_a")  # SIGTERM: the binary ends its segment with a checkpoint
    first.join(timeout=600)
    assert not (root / "addition_a" / "summary.json").exists()
    log = (root / "addition_a.log").read_text()
    assert "SIGTERM: stopping after the current segment's checkpoint" in log, log[-2000:]
    assert delayed.function(*delayed.args) == {"job": "addition_a", "exit": 0}  # the requeued task
    for name in ("summary.json", "metrics.jsonl", "train_loss.jsonl"):
        assert (root / "addition_a" / name).read_text() == (uninterrupted / name).read_text(), name

    executor = submitit.LocalExecutor(folder=str(tmp_path / "submitit"))
    executor.update_parameters(timeout_min=30)
    array_root = tmp_path / "array" / "smoke"
    a, b = slurm.submit(executor, ["addition_a", "addition_b"], smoke, array_root, [])
    assert result(a) == {"job": "addition_a", "exit": 0} and result(b) == {"job": "addition_b", "exit": 0}
    assert (array_root / "addition_a" / "summary.json").read_text() == (uninterrupted / "summary.json").read_text()
    # a finished job is not run again; a job whose binary fails raises with its exit status
    [again] = slurm.submit(executor, ["addition_a"], smoke, array_root, [])
    assert result(again) == {"job": "addition_a", "exit": 0, "note": "finished before this task"}
    bad = {"addition_a": ("addition", "smoke", ["--config.num_steps=7"])}  # not a multiple of eval_every
    [failing] = slurm.submit(executor, ["addition_a"], bad, tmp_path / "other", [])
    with pytest.raises(Exception, match="addition_a: its binary ended with exit 2"):
        result(failing)


_HOOK_IN_A_SIGNAL_HANDLER = r"""
import json, os, pathlib, signal, sys, threading, time
from experiments.study import plan, slurm

root = pathlib.Path(sys.argv[1])
task = slurm.StudyTask(plan.jobs("smoke"), root, [])
out = {}

def handler(signum, frame):  # as submitit's: the task's checkpoint hook, then exit (it requeues)
    delayed = task.checkpoint("addition_a")
    out["resubmits"] = delayed.args
    raise SystemExit(0)

def aim():  # SIGUSR2 once the binary has passed step 20, as SLURM's --signal=USR2@90 would
    path = root / "addition_a" / "metrics.jsonl"
    while not (path.is_file() and any(json.loads(x)["step"] >= 20 for x in path.read_text().splitlines() if x)):
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGUSR2)

signal.signal(signal.SIGUSR2, handler)
threading.Thread(target=aim, daemon=True).start()
try:
    task("addition_a")  # the task's own Popen.wait, interrupted by the handler
finally:
    print(json.dumps(out))
"""


@pytest.mark.slow
def test_the_slurm_hook_inside_a_signal_handler_stops_the_binary_without_deadlock(tmp_path, uninterrupted):
    # On a real cluster submitit runs the checkpoint hook inside its SIGUSR2 handler, in the thread
    # that waits for the binary (Popen.wait, holding its lock); a hook that called Popen.wait too
    # hung there for good (seen on SLURM 22.05). Run as submitit does, in a process of its own,
    # bounded by a timeout.
    import subprocess
    import sys
    pytest.importorskip("submitit")
    root = tmp_path / "smoke"
    result = subprocess.run([sys.executable, "-c", _HOOK_IN_A_SIGNAL_HANDLER, str(root)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"resubmits": ["addition_a"]}
    log = (root / "addition_a.log").read_text()
    assert "SIGTERM: stopping after the current segment's checkpoint" in log and "stopped on request" in log
    assert not (root / "addition_a" / "summary.json").exists()
    from experiments.study import slurm
    assert slurm.StudyTask(plan.jobs("smoke"), root, [])("addition_a") == {"job": "addition_a", "exit": 0}
    for name in ("summary.json", "metrics.jsonl", "train_loss.jsonl"):
        assert (root / "addition_a" / name).read_text() == (uninterrupted / name).read_text(), name


def _slurm_answers() -> bool:
    import shutil
    import subprocess
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _slurm_answers(), reason="no SLURM cluster answers here (sinfo); run where one does "
                                                 "(last run on a one-node SLURM 22.05, Debian's slurm-wlm)")
def test_on_a_real_slurm_cluster(tmp_path, uninterrupted):
    # (a) SIGUSR2 to the running task, what SLURM sends before a time limit (--signal=USR2@90):
    #     the hook stops the binary at a checkpoint, submitit requeues the task, it resumes and ends
    #     with the uninterrupted run's records; (b) SIGTERM to the task's processes (a scancel, a
    #     preemption): the binary stops at a checkpoint, the task fails with an error that says so,
    #     and a second submission ends with the same records.
    import subprocess
    import time
    pytest.importorskip("submitit")
    from experiments.study import slurm

    def run_until(predicate, what, timeout=600):
        end = time.time() + timeout
        while not predicate():
            if time.time() > end:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(1)

    smoke = plan.jobs("smoke")
    for signal_name in ("USR2", "TERM"):
        root = tmp_path / signal_name / "smoke"
        executor = slurm.slurm_executor(root / "slurm", partition="", time_min=30, cpus=1, parallelism=2, requeues=3)
        [job] = slurm.submit(executor, ["addition_a"], smoke, root, [])
        try:
            _wait_for_step(root / "addition_a", 20, timeout=600)
            subprocess.run(["scancel", job.job_id, f"--signal={signal_name}"], check=True, timeout=60)
            if signal_name == "USR2":
                run_until(lambda: (root / "addition_a" / "summary.json").is_file(), "the requeued task's end")
                run_until(job.done, "submitit's record of the task")
                assert job.result() == {"job": "addition_a", "exit": 0}
                assert "stopped on request" in (root / "addition_a.log").read_text()
            else:
                run_until(job.done, "the stopped task's end")
                with pytest.raises(Exception, match="stopped from outside .exit 75. after writing its checkpoint"):
                    job.result()
                assert not (root / "addition_a" / "summary.json").exists()
                [again] = slurm.submit(executor, ["addition_a"], smoke, root, [])
                run_until(again.done, "the second submission's end")
                assert again.result() == {"job": "addition_a", "exit": 0}
        finally:
            subprocess.run(["scancel", job.job_id], timeout=60)
        for name in ("summary.json", "metrics.jsonl", "train_loss.jsonl"):
            assert (root / "addition_a" / name).read_text() == (uninterrupted / name).read_text(), (signal_name, name)
