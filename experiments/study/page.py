"""docs/reproduction.md: the page assembled from the parts (`write_page`), every number read from
the jobs' records (summary.json / metrics.jsonl / config.json, via `nprnn_jax.study`).
"""

from __future__ import annotations

import csv
import json
import pathlib
from typing import Optional

from experiments.study.frontier import frontier_part
from experiments.study.paper import (_fmt_setting, _paper_config, _summary_row, baseline_line,
                                    differences_from_paper, job_section, paper_budget_lines, paper_figures,
                                    unstated_choices, verdict_for)
from experiments.study.plan import jobs
from experiments.study.records import _costs, _find_job, _keep_records, find_unfinished, merge_cost_records
from experiments.study import protocols
from nprnn_jax import study


def budget_part(root: pathlib.Path, jobs: dict, figures: pathlib.Path, rel: str, budget: str,
                kept: Optional[pathlib.Path] = None, prefix: str = "") -> tuple:
    """The lines of one budget's part of the page, and its results rows.

    A job is read from ``root/<job>`` when it finished there, else from its records kept
    beside the page (``kept``: ``<page folder>/workdirs/<budget>``); figure files are
    named ``<prefix><job>_*.png``.
    """
    costs = (_costs(root) or _costs(kept)) if kept is not None else _costs(root)
    results, lines, missing = [], [], []
    verdicts, measured, summary_rows, finished, unfinished = [], {}, [], {}, {}
    for name, job_spec in jobs.items():
        folder, job = _find_job(name, root, kept)
        if job is None:
            runs = costs.get(name, [])
            resume = f"`python -m experiments.reproduce --budget={budget} --root=DIR --only={name}`"
            why = (f"still running or interrupted when this report was made; {resume} resumes it"
                   if runs or (root / name).exists() or (kept is not None and (kept / name).exists())
                   else f"not started yet when this report was made; {resume} runs it")
            partial = find_unfinished(name, root, kept) if budget == "paper" else None
            if partial is not None and partial["summary"]:
                unfinished[name] = partial
                n = partial["config"]["num_steps"]
                why += (f". Finished runs (in the figure's table above): "
                        f"{', '.join(dict.fromkeys(r['init'] for r in partial['summary']))}; still running: "
                        + (", ".join(f"{i} not started" if s is None else f"{i} at update {s:,} of {n:,}"
                                     for i, s in partial["running"].items())
                           or "none (the job has not written its summary yet)"))
            missing.append(f"- `{name}` ({job_spec[0]} {job_spec[1]}"
                           f"{''.join(' ' + o for o in job_spec[2])}): {why}.")
            continue
        finished[name] = job
        _keep_records(folder, figures / "workdirs" / budget / name)
        section, ours = job_section(name, job, figures, rel, results, prefix)
        for r in results:
            r.setdefault("budget", budget)
        spent = costs.get(name, [])
        cost = sum(r["seconds"] for r in spent)
        c = job["config"]
        seq = protocols.get(c["task"]).steps_per_sequence(c) if cost and c["task"] in protocols.names() else None
        if seq is not None:
            measured[name] = {"us": cost * 1e6 / (len(job["summary"]) * c["num_steps"] * seq)}
        section.insert(3, f"Cost on this machine: {cost / 60:.0f} min wall clock over {len(spent)} "
                          f"invocation(s) (`{name}.log`, `jobs.jsonl`). Plan: {job['record'].get('plan')}.")
        binary, variant, overrides = job_spec
        diffs = differences_from_paper(binary, c)
        section.insert(4, "")
        section.insert(5, f"Command: `python -m experiments.{binary} --config=experiments/configs/{binary}.py:"
                          f"{variant}{''.join(' ' + o for o in overrides)} --workdir=...`. Settings that differ "
                          f"from the paper's protocol (`{_paper_config(binary, c)}`): "
                          + ("; ".join(f"{k} {_fmt_setting(a)} (paper {_fmt_setting(b)})" for k, a, b in diffs)
                             or "none") + ".")
        section.insert(6, "")
        section.insert(7, "Choices the paper does not state (ours, and why): " + "; ".join(
            f"{what}: {ours_value} ({why})" for what, ours_value, why in unstated_choices(c["task"], job["record"])) + ".")
        section.insert(8, "")
        v = verdict_for(job["config"]["task"], ours, job)
        verdicts.append(f"- **{name}**: {v}.")
        summary_rows.append(_summary_row(name, job, ours, v))
        lines += section + [f"**Verdict ({name})**: {v}.", ""]
        baselines = baseline_line(c["task"], c, ours)
        if baselines:
            lines += [baselines, ""]
    summary = ["### Summary" if budget == "paper" else "## Summary", "",
               "np-RNN against IRNN per finished job: the paper's number, ours at each variant's best "
               "setting (mean over seeds), and the runs that succeed over the whole grid. Details, "
               "the other variants and the figures follow. Action jobs: the paper's number is UCF101 test "
               "accuracy, ours a UEA set's (other data); a run succeeds at >= 60% there.", "",
               "| job | updates (% of the paper's) | np: paper / ours | IRNN: paper / ours | np runs succeeding "
               "| IRNN runs succeeding | verdict |", "|---|---|---|---|---|---|---|"] + summary_rows + [""]
    head = summary if summary_rows else []
    if budget == "paper":
        head = paper_figures(finished, figures, rel, prefix, costs, unfinished) + head
    lines = head + lines
    level = "###" if budget == "paper" else "##"
    lines += [f"{level} Verdicts", ""] + (verdicts or ["- no job has finished yet."]) + [""]
    lines += [f"{level} Cells not run", ""] + (missing or ["- every job of this budget has a result."]) + [""]
    if budget == "cpu":
        lines += ["- Addition T = 300, 400, 500 and multiplication T = 200 are not in the cpu budget; the "
                  "paper budget (above, where it has finished) runs them.", ""]
        lines += paper_budget_lines((kept if kept is not None else root).parent / "paper")
    if kept is not None and costs:
        (figures / "workdirs" / budget).mkdir(parents=True, exist_ok=True)
        source = root / "jobs.jsonl" if (root / "jobs.jsonl").is_file() else kept / "jobs.jsonl"
        target = figures / "workdirs" / budget / "jobs.jsonl"
        if source.resolve() != target.resolve():
            target.write_text(merge_cost_records(target.read_text() if target.is_file() else "", source.read_text()))
    return lines, results


METHOD_TEXT = ("Generated by `python -m experiments.reproduce --report` from the jobs' "
               "workdirs; no number here is typed by hand. The paper's numbers are read off its v3 text "
               "(`../shared/METHOD.md`; bar charts +-2 points). Ours: per variant, the best (learning rate, "
               "dropout) by mean headline metric over seeds (a diverged run counts as 0 and as a failure), "
               "the mean and range over seeds there, and over the whole grid; the share of (setting x seed) "
               "runs that succeed, with a 95% Wilson interval. Diverged: the loss became non-finite; blew up: "
               f"finite, but the final test loss is over {study.BLOW_UP_FACTOR:g} times the run's step-0 loss. "
               "Both count as failures.")


def _write_results(figures: pathlib.Path, results: list):
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    if results:
        fields = list(dict.fromkeys(k for r in results for k in r))
        with open(figures / "results.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(results)


def write(root: pathlib.Path, jobs: dict, out: pathlib.Path, budget: str) -> str:
    """Writes ``out``, a page of one budget's jobs under ``root``, its figures and results files."""
    figures, rel = out.parent / out.stem, out.stem
    kept = figures / "workdirs" / budget
    part, results = budget_part(root, jobs, figures, rel, budget, kept if kept.resolve() != root.resolve() else None)
    lines = [f"# Reproduction study ({budget} budget)", "", METHOD_TEXT.replace(
        "--report`", f"--budget={budget} --report`"), "",
             f"Each finished job's records (config.json, summary.json, metrics.jsonl, results.md; no "
             f"checkpoints) are copied to `{rel}/workdirs/{budget}/`: `python -m experiments.reproduce "
             f"--budget={budget} --root=docs/{rel}/workdirs --report` rebuilds this page from them.", ""] + part
    _write_results(figures, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def write_page(root: pathlib.Path, out: pathlib.Path) -> str:
    """Writes the study's page ``out``: the paper-budget part, then the cpu-budget part.

    Each job is read from ``root/<budget>/<job>`` where it finished there, else from the
    records kept beside the page (``<out folder>/<out stem>/workdirs/<budget>/<job>``), so a
    page rebuilt on a machine that ran only some jobs keeps the others.
    """
    from experiments.study import endpoints as study_endpoints

    figures, rel = out.parent / out.stem, out.stem
    lines = ["# Reproduction study", "", METHOD_TEXT, "",
             f"Each finished job's records (config.json, summary.json, metrics.jsonl, results.md; no "
             f"checkpoints) are kept in `{rel}/workdirs/<budget>/`, and an unfinished paper-budget job's "
             f"compact state (its newest checkpoints) too: `python -m experiments.reproduce --report "
             f"--root=docs/{rel}/workdirs --report_path=docs/{rel}.md` rebuilds this page from them.", ""]
    results = []
    for budget, heading in (("paper", "## Part 1: the paper's own budget"),
                            ("cpu", "## Part 2: the cpu budget (2-6% of the paper's updates on addition, "
                                    "multiplication and MNIST)"),
                            ("frontier", "## Part 3: where each variant stops working (the frontier)")):
        kept = figures / "workdirs" / budget
        source = root / budget
        if not source.is_dir() and not kept.is_dir():
            continue
        other = None if kept.resolve() == source.resolve() else kept
        if budget == "frontier":
            part, found = frontier_part(source, figures, rel, other)
            lines += [heading, ""] + part + study_endpoints.pool_section(source, other)
            results += found
            continue
        part, found = budget_part(source, jobs(budget), figures, rel, budget, other,
                                  prefix="paper_" if budget == "paper" else "")
        if budget == "paper":
            part += (study_endpoints.readings_section(source, other) + study_endpoints.table2_readings_section(source, other)
                     + study_endpoints.start_section(source, other, kept, rel)
                     + study_endpoints.robust_endpoints(source, other))
        lines += [heading, ""] + part
        results += found
    _write_results(figures, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text
