"""Results tables and plots from a workdir's `summary.json` and `metrics.jsonl`."""

from __future__ import annotations

import json
import math
import pathlib
from collections import defaultdict

import numpy as np


def load(workdir):
    workdir = pathlib.Path(workdir)
    summary = json.loads((workdir / "summary.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line]
    return summary, rows


def _fmt(value, digits=4):
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def results_table(summary: list, metric: str, higher_is_better: bool) -> str:
    """A Markdown table: per init, learning rate (and dropout rate, when the grid has
    several), mean and std over seeds of the final ``metric`` (diverged runs left
    out) and the best seed; for the marked-pair tasks also the mean test MSE and
    how many runs succeeded (share within the tolerance >= the success share); and
    how many runs diverged (a diverged run counts as a failure)."""
    groups = defaultdict(list)
    order = []
    for record in summary:
        key = (record["init"], record["learning_rate"], record.get("dropout", 0.0))
        if key not in groups:
            order.append(key)
        groups[key].append(record)
    has_success = any("success" in r for r in summary)
    has_dropout = len({key[2] for key in order}) > 1
    header = ["init", "learning rate"] + (["dropout"] if has_dropout else [])
    header += ["seeds", f"{metric} mean", f"{metric} std", "best seed"]
    header += ["test_mse mean", "success"] if has_success else []
    header += ["diverged"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for init, lr, dropout in order:
        records = groups[(init, lr, dropout)]
        live = [r for r in records if not r["diverged"] and r.get(metric) is not None]
        values = np.array([r[metric] for r in live], float)
        row = [init, f"{lr:g}"] + ([f"{dropout:g}"] if has_dropout else []) + [str(len(records))]
        row += [_fmt(float(values.mean()) if len(values) else None),
                _fmt(float(values.std()) if len(values) else None),
                _fmt((values.max() if higher_is_better else values.min()) if len(values) else None)]
        if has_success:
            mses = [r["test_mse"] for r in live if r.get("test_mse") is not None]
            row.append(_fmt(float(np.mean(mses)) if mses else None))
            row.append(f"{sum(bool(r.get('success')) for r in live)}/{len(records)}")
        row.append(f"{sum(r['diverged'] for r in records)}/{len(records)}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# Axis labels for the metrics' identifiers.
LABELS = {"test_accuracy": "test accuracy", "test_mse": "test MSE",
          "test_loss": "test loss", "train_loss": "training loss"}


def label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " "))


def _plot_per_init(rows: list, value: str, path, title: str, ylabel: str, log: bool, reference=None,
                   reference_label: str = "constant predictor"):
    """One panel per init: ``value`` of the rows against step, a line per (learning rate,
    dropout) with the mean over seeds and a band from the min to the max seed (diverged runs
    left out); ``reference`` drawn as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inits = list(dict.fromkeys(r["init"] for r in rows))
    fig, axes = plt.subplots(1, len(inits), figsize=(4.5 * len(inits), 3.6), squeeze=False, sharey=True)
    for ax, init in zip(axes[0], inits):
        groups = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if r["init"] == init and r.get(value) is not None and not r["diverged"]:
                groups[(r["learning_rate"], r.get("dropout", 0.0))][r["step"]].append(r[value])
        for lr, dropout in sorted(groups):
            steps = sorted(groups[(lr, dropout)])
            values = [np.array(groups[(lr, dropout)][s]) for s in steps]
            line, = ax.plot(steps, [v.mean() for v in values],
                            label=f"lr {lr:g}" + (f", dropout {dropout:g}" if dropout else ""))
            ax.fill_between(steps, [v.min() for v in values], [v.max() for v in values],
                            color=line.get_color(), alpha=0.2)
        if reference is not None:
            ax.axhline(reference, color="0.3", ls="--", lw=0.9, label=f"{reference_label} {reference:.3g}")
        if log:
            ax.set_yscale("log")
        ax.set_title(init)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if groups or reference is not None:
            ax.legend(fontsize=8)
    import textwrap
    axes[0][0].set_ylabel(textwrap.fill(ylabel, 34))  # a long label on two lines, inside the canvas
    fig.suptitle((f"{title}: " if title else "") + "lines: mean over seeds; bands: min to max seed "
                 "(diverged runs left out)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(rows: list, metric: str, path, title: str = "", reference=None,
                         metric_label: str = ""):
    """``metric`` against step per init (`_plot_per_init`), log scale for losses and MSEs;
    ``reference``: the constant predictor's value; ``metric_label``: the axis label (the task's
    own words for its metric; default from the metric's name)."""
    _plot_per_init(rows, metric, path, title, metric_label or label(metric), metric.endswith(("mse", "loss")),
                   reference)


def plot_train_loss(rows: list, path, title: str = ""):
    """The mean training loss of each logged block against step per init, log scale."""
    _plot_per_init(rows, "train_loss", path, title, "training loss", True)


def plot_sensitivity(summary: list, metric: str, path, title: str = ""):
    """Final ``metric`` against learning rate, a line per init (mean over seeds,
    bars min to max); a learning rate where every seed diverged is marked x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for init in dict.fromkeys(r["init"] for r in summary):
        by_lr = defaultdict(list)
        diverged = defaultdict(int)
        for r in summary:
            if r["init"] != init:
                continue
            if r["diverged"] or r.get(metric) is None:
                diverged[r["learning_rate"]] += 1
            else:
                by_lr[r["learning_rate"]].append(r[metric])
        lrs = sorted(by_lr)
        mean = np.array([np.mean(by_lr[lr]) for lr in lrs])
        low = mean - np.array([np.min(by_lr[lr]) for lr in lrs])
        high = np.array([np.max(by_lr[lr]) for lr in lrs]) - mean
        container = ax.errorbar(lrs, mean, yerr=[low, high], marker="o", capsize=3, label=init)
        all_diverged = [lr for lr, n in diverged.items() if lr not in by_lr]
        if all_diverged:
            ax.scatter(all_diverged, [np.nanmax(mean) if len(mean) else 1.0] * len(all_diverged),
                       marker="x", color=container.lines[0].get_color(), s=60)
    ax.set_xscale("log")
    all_lrs = sorted({r["learning_rate"] for r in summary})
    ax.set_xticks(all_lrs, [f"{lr:g}" for lr in all_lrs])
    ax.minorticks_off()
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {label(metric)}", fontsize=8)
    if metric.endswith("mse"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title((f"{title}\n" if title else "") + "mean over seeds, bars: min to max seed; x: every seed "
                 "diverged", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(workdir, metric: str, higher_is_better: bool, title: str = "", reference=None,
                 metric_label: str = "", *, figures: bool = True) -> str:
    """Writes ``results.md`` and, with ``figures``, ``learning_curves.png`` (with the constant
    predictor's ``reference`` line), ``train_loss.png`` and ``lr_sensitivity.png``; returns the
    table."""
    workdir = pathlib.Path(workdir)
    summary, rows = load(workdir)
    table = results_table(summary, metric, higher_is_better)
    note = "" if reference is None else f"\nThe constant predictor scores {metric} = {reference:.4g}.\n"
    (workdir / "results.md").write_text((f"# {title}\n\n" if title else "") + table + note)
    if figures:
        plot_learning_curves(rows, metric, workdir / "learning_curves.png", title, reference, metric_label)
        plot_train_loss(rows, workdir / "train_loss.png", title)
        plot_sensitivity(summary, metric, workdir / "lr_sensitivity.png", title)
    return table
