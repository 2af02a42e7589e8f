"""The paper-budget and CPU-budget parts of the page: each job beside the paper's protocol and
numbers (its differences, the choices the paper leaves open, the verdicts).
"""

from __future__ import annotations

import json
import pathlib
from typing import Optional

import numpy as np

from experiments.study.figures import _plot_bars, _plot_curves, _plot_figure_cells, _plot_heatmap
from experiments.study import protocols
from experiments.study.plan import PAPER_FIGURES, jobs, named_config
from experiments.study.records import _costs, run_setting
from nprnn_jax import study, tasks


def _paper(task: str, config: dict) -> dict:
    return protocols.get(task).paper_results(config)


def _budget_text(job: dict) -> str:
    c, spec = job["config"], protocols.get(job["config"]["task"])
    seen = c["num_steps"] * c["batch_size"]
    updates = (f"{c['num_steps']:,} updates, {100 * c['num_steps'] / spec.paper_updates:.1f}% of the paper's "
               f"{spec.paper_updates:,}")
    if spec.paper_budget:
        epochs = seen / max(job["task"]["num_train"], 1)
        return (f"{c['num_steps']:,} steps of batch {c['batch_size']} = {seen:,} training sequences, "
                f"{epochs:.0f} epochs of {job['task']['num_train']} (the paper: {spec.paper_budget}"
                f"{'; other data' if spec.paper_data else ''}); {updates}")
    return (f"{c['num_steps']:,} steps of batch {c['batch_size']} = {seen:,} training sequences, "
            f"{100 * seen / spec.paper_sequences:.1f}% of the paper's {spec.paper_sequences:,}; {updates}")


# The named config holding the paper's protocol for each job's experiment.
def _paper_config(binary: str, config: dict) -> str:
    return protocols.get(binary).paper_config(config)


# Settings that describe logging or files, not the protocol: left out of the comparison.
_NOT_PROTOCOL = ("log_every", "tensorboard", "data_dir", "tfds_data_dir", "eval_every", "eval_batch_size")


def differences_from_paper(binary: str, config: dict) -> list:
    """``[(setting, ours, paper's config)]`` for every protocol setting of a job's config
    that differs from the experiment's `paper*` named config (speed-only settings and
    logging left out)."""
    from nprnn_jax import config as config_lib

    paper = config_lib.result_settings(config_lib.to_json(named_config(binary, _paper_config(binary, config))))
    ours = config_lib.result_settings(config_lib.with_defaults(config))
    return [(k, ours.get(k), paper.get(k)) for k in sorted(set(ours) | set(paper))
            if k not in _NOT_PROTOCOL and ours.get(k) != paper.get(k)]


def unstated_choices(task: str, record: dict) -> list:
    """``[(what, ours, why)]``: every choice of the job's protocol that the paper does not
    state (METHOD.md), with our value read from the job's record (its config.json: each init's
    recorded run where there is one, `records.run_setting`)."""
    from nprnn_jax import config as config_lib

    c = config_lib.with_defaults(record["config"])
    optimizers = sorted({run_setting(record, i, "optimizer") for i in c["inits"]})
    clips = sorted({run_setting(record, i, "clip_norm") for i in c["inits"]})
    out = [("gradient clipping", f"by global norm (optax.clip_by_global_norm) at {', '.join(f'{x:g}' for x in clips)}",
            "the paper says 'clip' without the kind" + protocols.get(task).clip_note),
           ("W_hx's N in alpha/sqrt(N)", f"{c.get('input_init_n', 'hidden')} size",
            "ambiguous in the paper (its Section 2 and Eq. 9 use N differently)"),
           ("the training objective", f"the minibatch's {c.get('loss_reduction', 'mean')} loss",
            "the paper says neither mean nor sum (with SGD the sum's steps are batch_size times larger)"),
           ("W_hy", "Glorot normal, untruncated; biases 0", "the paper names Glorot without the variant"),
           ("gRNN's scale", "N(0, 1/N)", "not stated; the natural reading"),
           ("test set", f"{c.get('test_size') or 'the whole'} examples, from a key apart from training",
            "the paper gives the size only for addition")]
    out += protocols.get(task).unstated(c)
    if "rmsprop" in optimizers:
        out.append(("RMSprop", "optax.rmsprop: decay 0.9, eps 1e-8, no momentum, not centered",
                    "the paper names RMSprop without its constants"))
    return out


def _fmt_setting(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt_setting(v) for v in value) or "()"
    if isinstance(value, dict):
        return "{" + "; ".join(f"{k}: {_fmt_setting(v)}" for k, v in value.items()) + "}" if value else "{}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def chance_level(job: dict) -> Optional[float]:
    """The headline metric of the best constant prediction on the job's test set: computed from
    the config where the task declares how (`TaskSpec.chance`; the marked-pair tasks: the best
    constant, not the mean: 28% for multiplication against the mean's 11%), else the most
    frequent class's share that the run recorded in results.md; None when unknown."""
    from nprnn_jax import config as config_lib

    spec = protocols.get(job["config"]["task"])
    if spec.chance is not None:
        return spec.chance(config_lib.with_defaults(job["config"]))
    folder = job.get("folder")
    if folder is not None and (folder / "results.md").is_file():
        import re
        found = re.search(r"constant predictor scores test_accuracy = ([0-9.eE+-]+)", (folder / "results.md").read_text())
        if found:
            return float(found.group(1).rstrip("."))
    return None


def _selection_text(job: dict, ours: dict) -> str:
    """How each variant's best setting was chosen: on validation data, or (a job run before
    validation records existed) on the test set, which flatters the best setting."""
    settings = max(len(s["by_setting"]) for s in ours.values())
    if settings == 1:
        return "Setting: one per variant (the paper's), so nothing is chosen."
    if all(s["best"]["selected_on"] == "validation" for s in ours.values()):
        where = (f"{job['task'].get('test_size', 0):,} sequences of their own stream" if "num_validation" not in job["task"]
                 else f"{job['task'].get('num_validation', '?')} held-out training examples")
        return (f"Best setting: chosen per variant on the validation set ({where}, apart from training and "
                "test); the table shows the test set at that setting.")
    return ("Best setting: chosen per variant **on the test set** (this job ran before the validation records "
            "existed), so the 'mean at best' column is optimistic by a selection bias; the whole-grid columns "
            "and the success counts over the grid are not affected.")


def job_section(name: str, job: dict, figures: pathlib.Path, rel: str, results: list, prefix: str = "") -> list:
    c, task = job["config"], job["config"]["task"]
    spec = protocols.get(task)
    metric, threshold = "test_accuracy", spec.success_threshold
    paper = _paper(task, c)
    inits = c["inits"]
    initial = study.initial_losses(job["rows"])
    validation = job.get("validation")
    ours = {init: study.variant_summary(job["summary"], init, metric, threshold, initial, validation)
            for init in inits}
    chance = chance_level(job)
    relative = None if chance is None else study.chance_relative_bar(chance)
    ours_relative = {} if relative is None else {
        init: study.variant_summary(job["summary"], init, metric, relative, initial, validation) for init in inits}
    record = job.get("record") or {"config": c}
    lines = [f"### {name}", "", f"Budget: {_budget_text(job)}.", "", _selection_text(job, ours), ""]
    if relative is not None:
        lines += [f"Chance level: {100 * chance:.1f}% ({spec.chance_text}); "
                  f"the chance-relative bar, halfway from it to 100%, is {100 * relative:.1f}% (next to the paper's "
                  f"absolute {100 * threshold:.0f}%).", ""]
    header = ["variant", f"paper ({spec.paper_data} test)" if spec.paper_data else "paper",
              "ours: best setting", "mean at best (range over seeds)", "whole grid: mean (range)",
              f"runs succeeding ({spec.success_text}), 95% Wilson",
              "runs succeeding at the chance-relative bar", "diverged / blew up", "median first crossing of the bar (runs that crossed it, ending anywhere)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    optimizers = {run_setting(record, i, "optimizer") for i in inits}
    for init in inits:
        s = ours[init]
        b = s["best"]
        setting = f"lr {b['learning_rate']:g}" + (f", dropout {b['dropout']:g}" if len(c["dropout_rates"]) > 1 else "")
        optimizer = run_setting(record, init, "optimizer")
        if len(optimizers) > 1:  # the variants differ in optimizer (the paper's MNIST protocol)
            setting += f" ({optimizer})"
        steps = study.steps_to_success(job["rows"], init, b["learning_rate"], b["dropout"], metric, threshold)
        reached = sorted(v for v in steps.values() if v is not None)
        median_steps = f"{int(np.median(reached)):,} ({len(reached)}/{len(steps)} seeds crossed)" if reached else \
            f"never crossed (0/{len(steps)})"
        paper_value = paper.get(init)
        lines.append("| " + " | ".join([
            init, "-" if paper_value is None else f"{paper_value:g}%", setting,
            f"{study.fmt_pct(b['mean'])}% ({study.fmt_pct(b['min'])}-{study.fmt_pct(b['max'])})",
            f"{study.fmt_pct(s['grid']['mean'])}% ({study.fmt_pct(s['grid']['min'])}-{study.fmt_pct(s['grid']['max'])})",
            f"{s['successes']}/{s['runs']} {study.fmt_interval(s['wilson'])}",
            "-" if init not in ours_relative else f"{ours_relative[init]['successes']}/{s['runs']}",
            f"{s['diverged']} / {s['blew_up']} of {s['runs']}",
            median_steps]) + " |")
        results.append({"job": name, "task": task, "init": init, "paper_percent": paper_value,
                        "best_learning_rate": b["learning_rate"], "best_dropout": b["dropout"],
                        "best_selected_on": b["selected_on"],
                        "best_mean": b["mean"], "best_min": b["min"], "best_max": b["max"],
                        "grid_mean": s["grid"]["mean"], "grid_min": s["grid"]["min"], "grid_max": s["grid"]["max"],
                        "successes": s["successes"], "runs": s["runs"], "wilson_low": s["wilson"][0],
                        "wilson_high": s["wilson"][1], "diverged": s["diverged"], "blew_up": s["blew_up"],
                        "success_threshold": threshold, "chance_level": chance, "chance_relative_bar": relative,
                        "successes_at_chance_relative_bar": (ours_relative.get(init) or {}).get("successes")})
    lines.append("")
    figures.mkdir(parents=True, exist_ok=True)
    file = f"{prefix}{name}_paper_vs_ours.png"
    _plot_bars(inits, [paper.get(i) for i in inits], [100 * ours[i]["best"]["mean"] for i in inits],
               [100 * ours[i]["best"]["min"] for i in inits], [100 * ours[i]["best"]["max"] for i in inits],
               figures / file, f"{name}: the paper's number and ours",
               f"{tasks.get(task).metric_text} (%)" + (f" (paper: {spec.paper_data})" if spec.paper_data else ""))
    lines += [f"![paper vs ours]({rel}/{file})", ""]
    # Heat maps: learning rate x variant (and learning rate x dropout per variant for actions).
    if len(c["dropout_rates"]) > 1:
        for init in inits:
            grid = ours[init]["by_setting"]
            lrs = sorted({k[0] for k in grid})
            matrix = [[grid.get((lr, d), {}).get("mean") for lr in lrs] for d in c["dropout_rates"]]
            file = f"{prefix}{name}_{init}_lr_dropout.png"
            _plot_heatmap(matrix, [f"dropout {d:g}" for d in c["dropout_rates"]], [f"{lr:g}" for lr in lrs],
                          figures / file, f"{name}: {init}, test accuracy (%)")
            cells = sum(1 for row in matrix for v in row if v is not None and v >= 0.6)
            paper_cells = (spec.paper_grid_cells or {}).get(init)
            lines.append(f"- {init}: {cells} of {len(lrs) * len(c['dropout_rates'])} (learning rate, dropout) "
                         f"cells at a mean test accuracy >= 60%"
                         + (f" (the paper's Figure 6 on UCF101 validation: about {paper_cells} of 18)"
                            if paper_cells is not None else "") + f"; ![{init}]({rel}/{file})")
        lines.append("")
    else:
        lrs = sorted({lr for init in inits for (lr, _) in ours[init]["by_setting"]})
        matrix = [[ours[init]["by_setting"].get((lr, c["dropout_rates"][0]), {}).get("mean") for lr in lrs]
                  for init in inits]
        file = f"{prefix}{name}_lr_variant.png"
        _plot_heatmap(matrix, inits, [f"{lr:g}" for lr in lrs], figures / file,
                      f"{name}: {tasks.get(task).metric_text} (%)")
        lines += [f"![learning rate x variant]({rel}/{file})", ""]
    curves = {f"{init} (lr {ours[init]['best']['learning_rate']:g})":
              study.curve(job["rows"], init, ours[init]["best"]["learning_rate"], ours[init]["best"]["dropout"], metric)
              for init in inits}
    file = f"{prefix}{name}_curves.png"
    _plot_curves(curves, figures / file, f"{name}: {metric} at each variant's best setting", threshold,
                 chance)
    lines += [f"![learning curves]({rel}/{file})", ""]
    return lines, ours


# One training step's latency per timestep on one H100 for a grid of up to 64 vmapped runs of
# one init (BENCHMARKS.md, 2026-11-24: 64 seeds, batch 16, T=400: 8.2 ms a step, one seed about
# 25 us per timestep): the GPU estimate below scales it by steps x T, an ESTIMATE, not a measurement.
H100_US_PER_TIMESTEP = 25.0


def _job_runs(c) -> int:
    from nprnn_jax import config as config_lib
    settings = sum(len(config_lib.init_settings(c, i)["learning_rates"]) for i in c.inits) * len(c.dropout_rates)
    return settings * c.num_seeds


def paper_budget_lines(kept_paper: Optional[pathlib.Path]) -> list:
    """The paper budget's cost: each finished paper job's measured wall clock on this machine
    (its jobs.jsonl records, all invocations, evaluations included, the other core busy), and for
    a job not finished an estimate from the finished ones' measured cost per (run x update x
    timestep) at the same batch size; one H100 from `H100_US_PER_TIMESTEP` (an estimate)."""
    costs = _costs(kept_paper) if kept_paper is not None and kept_paper.is_dir() else {}
    measured, rates = {}, {}
    for name, (binary, named, overrides) in jobs("paper").items():
        records = [r for r in costs.get(name, []) if "machine" not in r]  # this kind of machine only
        folder = None if kept_paper is None else kept_paper / name
        if not records or folder is None or not (folder / "summary.json").is_file():
            continue
        c = json.loads((folder / "config.json").read_text())["config"]
        seq = protocols.get(binary).steps_per_sequence(c)
        if seq is None:
            continue
        seconds = sum(r["seconds"] for r in records)
        runs = len(json.loads((folder / "summary.json").read_text()))
        measured[name] = seconds
        rates.setdefault(c["batch_size"], []).append(seconds * 1e6 / (runs * c["num_steps"] * seq))
    lines = ["## The paper budget: what it costs", "",
             "`python -m experiments.reproduce --budget=paper` runs the paper's protocols as its `paper_*` "
             "configs state them. This CPU: the measured wall clock of each finished job (all its invocations, "
             "`jobs.jsonl`, one core, the other busy with a second job); for a job not finished, an estimate "
             "from the finished jobs' median measured cost per (run x update x timestep) at the same batch size ("
             + ("; ".join(f"batch {b}: {float(np.median(v)):.2f} us, {len(v)} jobs" for b, v in sorted(rates.items()))
                or "none finished yet") + "). One H100: an estimate from "
             f"{H100_US_PER_TIMESTEP:g} us per timestep for a whole grid of one init (BENCHMARKS.md), not a "
             "measurement.", "",
             "| job | runs (inits x settings x seeds) | updates | T | this CPU (h) | one H100 (h, estimate) |",
             "|---|---|---|---|---|---|"]
    for name, (binary, named, _) in jobs("paper").items():
        c = named_config(binary, named)
        seq = protocols.get(binary).steps_per_sequence(c)
        assumed = seq is None
        seq = 100 if assumed else seq
        runs = _job_runs(c)
        if name in measured:
            cpu = f"{measured[name] / 3600:,.1f} (measured)"
        elif c.batch_size in rates:
            cpu = f"{runs * c.num_steps * seq * float(np.median(rates[c.batch_size])) * 1e-6 / 3600:,.1f} (estimate)"
        else:
            cpu = "-"
        gpu = len(c.inits) * c.num_steps * seq * H100_US_PER_TIMESTEP * 1e-6 / 3600
        lines.append(f"| {name} | {runs} | {c.num_steps:,} | {seq}{f' ({protocols.get(binary).paper_data}: assumed)' if assumed else ''} "
                     f"| {cpu} | {gpu:,.1f} |")
    return lines + [""]


def _summary_row(name: str, job: dict, ours: dict, verdict_text: str) -> str:
    c, task = job["config"], job["config"]["task"]
    paper = _paper(task, c)

    def cell(init):
        if init not in ours:
            return "-", "-"
        s, p = ours[init], paper.get(init)
        return (f"{'-' if p is None else f'{p:g}%'} / {study.fmt_pct(s['best']['mean'])}%",
                f"{s['successes']}/{s['runs']} {study.fmt_interval(s['wilson'])}")

    np_value, np_runs = cell("np")
    irnn_value, irnn_runs = cell("irnn")
    updates = f"{c['num_steps']:,} ({100 * c['num_steps'] / protocols.get(task).paper_updates:.1f}%)"
    return f"| {name} | {updates} | {np_value} | {irnn_value} | {np_runs} | {irnn_runs} | {verdict_text.split(':')[0]} |"


def verdict_for(task: str, ours: dict, job: Optional[dict] = None) -> str:
    """The verdict on the paper's claim for np-RNN, qualified by the job's budget and data."""
    baselines, claim = protocols.get(task).claim
    text = study.verdict(ours, "np", list(baselines), claim)
    return text + ("" if job is None else f" [{_qualifier(job)}]")


def _qualifier(job: dict) -> str:
    """Where a verdict holds: the share of the paper's updates, and the data set if not the paper's."""
    c, spec = job["config"], protocols.get(job["config"]["task"])
    share = c["num_steps"] / spec.paper_updates
    text = ("at the paper's number of updates" if abs(share - 1) < 1e-9 else
            f"at {100 * share:.1f}% of the paper's updates")
    note = spec.data_note(c, job["task"])
    if note:
        text += f", {note}"
    return text


def baseline_line(task: str, c: dict, ours: dict) -> str:
    """The paper's numbers for the other variants against ours at their best setting: where the
    paper's picture of the baselines holds here and where it does not (more than 10 points apart)."""
    paper = _paper(task, c)
    parts = []
    for init, s in ours.items():
        if init == "np" or paper.get(init) is None:
            continue
        value, p = 100 * s["best"]["mean"], paper[init]
        word = "about the same" if abs(value - p) <= 10 else ("higher" if value > p else "lower")
        parts.append(f"{init} paper {p:g}%, ours {value:.1f}% ({word})")
    spec = protocols.get(task)
    if spec.paper_data:
        return (f"The paper's numbers are {spec.paper_data} test accuracies, ours on other data: not comparable "
                f"as numbers; the robustness counts (cells at >= {100 * spec.success_threshold:.0f}%) are compared "
                "above.") if parts else ""
    return ("Baselines against the paper (ours: mean over seeds at each variant's best setting): "
            + "; ".join(parts) + ".") if parts else ""


def _cell_runs(finished: dict, task: str, seq_len) -> tuple:
    """Summary records of one paper cell (a task and sequence length) from every finished job
    that holds its runs (the seed-0 job and its seeds-1-2 companion), and those jobs."""
    base = task if seq_len is None else f"{task}_T{seq_len}"
    names = [n for n in (base, base + "_seeds12") if n in finished]
    return [r for n in names for r in finished[n]["summary"]], [finished[n] for n in names], names


def paper_figures(finished: dict, figures: pathlib.Path, rel: str, prefix: str, costs: dict,
                  unfinished: Optional[dict] = None) -> list:
    """The paper's Figures 3 and 4 and Table 2 beside ours, cell by cell, with a verdict per figure.

    ``unfinished``: jobs still running (`records.find_unfinished`): their finished runs join
    their cells, and each variant still running is shown as such."""
    lines = []
    unfinished = unfinished or {}
    every = {**unfinished, **finished}
    for label, task, seq_lens, what in PAPER_FIGURES:
        spec = protocols.get(task)
        threshold = spec.success_threshold
        one_cell = tuple(seq_lens) == (None,)
        cells = {t: _cell_runs(every, task, t) for t in seq_lens}
        if not any(cells[t][0] for t in seq_lens):
            continue
        running = {t: {i: (step, j["config"]["num_steps"]) for j in cells[t][1]
                       for i, step in j.get("running", {}).items()} for t in seq_lens}
        variants = list(dict.fromkeys([r["init"] for t in seq_lens for r in cells[t][0]]
                                      + [i for t in seq_lens if cells[t][0] for i in running[t]]))
        paper = {t: _paper(task, {"seq_len": t}) for t in seq_lens}
        columns = [t for t in seq_lens if cells[t][0]]
        complete = [t for t in columns if not running[t]]
        lines += [f"### {label}: {task}" + ("" if one_cell else f", T = {', '.join(map(str, seq_lens))}"), "",
                  f"{what} (%), the paper's / ours; ours is one run where the paper ran one, and the mean "
                  f"(range) with the runs succeeding ({spec.success_text}) where seeds 1 and 2 were run too. "
                  "A cell none of whose runs has finished is not shown; a column marked unfinished holds "
                  "the runs finished so far, and its variants still running say at which update they were "
                  "when this report was made.", "",
                  "| variant | " + " | ".join(("paper protocol" if t is None else f"T = {t}")
                                           + (" (unfinished)" if running[t] else "") for t in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        ours, counts = {}, {}
        for init in variants:
            row = []
            for t in columns:
                values = [study._value(r, "test_accuracy") for r in cells[t][0] if r["init"] == init]
                if not values:
                    p = paper[t].get(init)
                    if init not in running[t]:
                        row.append("-")
                    else:
                        step, total = running[t][init]
                        row.append(f"{'-' if p is None else f'{p:g}'} / "
                                   + ("not started" if step is None else f"running ({step:,} of {total:,} updates)"))
                    continue
                initial = {k: v for j in cells[t][1] for k, v in study.initial_losses(j["rows"]).items()}
                wins = sum(study.succeeded(r, "test_accuracy", threshold, initial.get(study._run_key(r)))
                           for r in cells[t][0] if r["init"] == init)
                ours[(init, t)] = float(np.mean(values))
                counts[(init, t)] = (wins, len(values))
                p = paper[t].get(init)
                text = f"{'-' if p is None else f'{p:g}'} / {100 * np.mean(values):.1f}"
                if len(values) > 1:
                    text += f" ({100 * min(values):.1f}-{100 * max(values):.1f}; {wins}/{len(values)})"
                row.append(text)
            lines.append(f"| {init} | " + " | ".join(row) + " |")
        updates = sorted({j["config"]["num_steps"] for t in columns for j in cells[t][1]})
        spent = sum(r["seconds"] for t in columns for n in cells[t][2] for r in costs.get(n, []))
        lines += ["", f"Updates per run: {', '.join(f'{u:,}' for u in updates)} (the paper's "
                      f"{spec.paper_updates:,}); cost of these cells on this machine: {spent / 3600:.1f} h "
                      "wall clock (jobs.jsonl).", ""]
        file = f"{prefix}{task}_figure.png"
        _plot_figure_cells(variants, columns, paper, ours, figures / file, f"{label} ({task}): the paper's and ours")
        lines += [f"![{label}]({rel}/{file})", ""]
        # Verdict: does np succeed at every length, and is it the best variant, as in the paper?
        np_counts = [counts[("np", t)] for t in columns if ("np", t) in counts]
        per_length = ", ".join(f"{'' if t is None else f'T={t} '}{counts[('np', t)][0]}/{counts[('np', t)][1]}"
                               for t in columns if ("np", t) in counts)
        # which variant is best: at the lengths where every variant has finished
        top = [t for t in complete if ("np", t) in ours and ours[("np", t)] >= max(
            v for (i, tt), v in ours.items() if tt == t)]
        paper_top = [t for t in complete if paper[t] and paper[t].get("np", 0) >= max(paper[t].values())]
        where = "" if one_cell else " sequence lengths"
        lines += [f"**Verdict ({label}, the paper's protocol and {', '.join(f'{u:,}' for u in updates)} updates"
                  f"{f', {task}' if one_cell else ''})**: {sum(w for w, _ in np_counts)} of "
                  f"{sum(n for _, n in np_counts)} np-RNN runs reach the success bar ({100 * threshold:.0f}%) "
                  f"({per_length}; the paper's one run per cell: at "
                  f"{sum(1 for t in columns if paper[t].get('np', 0) >= 100 * threshold)} of {len(columns)}"
                  f"{where}), and np-RNN's mean is the best variant's at {len(top)} of {len(complete)}{where} "
                  f"{'' if complete == columns else 'where every variant has finished '}"
                  f"(the paper: {len(paper_top)}).", ""]
    return lines
