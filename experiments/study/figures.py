"""The study page's figures (matplotlib): bars, heat maps, learning curves, the paper's cells,
the frontier.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _save(fig, path):
    """Writes a figure of the report (tight layout, 110 dpi) into its folder (made if missing) and frees it."""
    import pathlib

    import matplotlib.pyplot as plt

    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bars(labels, paper, ours, low, high, path, title, ylabel):
    """Grouped bars: the paper's number and ours (mean at the best setting, range over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(labels) + 1.5), 3.4))
    paper_values = [np.nan if v is None else v for v in paper]
    ax.bar(x - 0.2, paper_values, 0.4, label="paper", color="#999999")
    ours = np.asarray(ours, float)
    errors = np.stack([ours - np.asarray(low, float), np.asarray(high, float) - ours])
    ax.bar(x + 0.2, ours, 0.4, yerr=errors, capsize=3, label="ours (best setting; range over seeds)",
           color="#3b75af")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def _plot_heatmap(matrix, row_labels, col_labels, path, title, cbar="mean over seeds"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array([[np.nan if v is None else v for v in row] for row in matrix], float)  # None: not run
    fig, ax = plt.subplots(figsize=(max(5.0, 2.0 + 0.9 * len(col_labels)), 1.4 + 0.45 * len(row_labels)))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    for i in range(len(row_labels)):
        for j in range(len(col_labels)):
            value = matrix[i][j]
            if np.isfinite(value):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
    ax.set_xlabel("learning rate", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=cbar, fraction=0.05)
    _save(fig, path)


def _plot_curves(curves: dict, path, title, threshold, chance: Optional[float]):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, c in curves.items():
        line, = ax.plot(c["steps"], c["median"], label=label)
        ax.fill_between(c["steps"], c["min"], c["max"], color=line.get_color(), alpha=0.15)
    ax.axhline(threshold, color="gray", ls="--", lw=0.8, label=f"success {threshold:g}")
    if chance is not None:
        ax.axhline(chance, color="black", ls=":", lw=0.8, label=f"chance / mean predictor {chance:.3g}")
    ax.set_xlabel("step")
    ax.set_ylabel("headline metric (median, range over seeds)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def _plot_figure_cells(variants, columns, paper, ours, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(2.2 + 2.3 * len(columns), 3.4), squeeze=False, sharey=True)
    x = np.arange(len(variants))
    for ax, t in zip(axes[0], columns):
        ax.bar(x - 0.2, [paper[t].get(i, np.nan) for i in variants], 0.4, color="#999999", label="paper")
        ax.bar(x + 0.2, [100 * ours.get((i, t), np.nan) for i in variants], 0.4, color="#3b75af",
               label="ours (mean over seeds)")
        ax.set_xticks(x, variants, rotation=60, fontsize=7)
        ax.set_title("" if t is None else f"T = {t}", fontsize=9)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("%", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def _plot_frontier(cells: dict, path, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for init, by_t in cells.items():
        ts = sorted(by_t)
        rate = [by_t[t]["successes"] / by_t[t]["runs"] for t in ts]
        line, = ax.plot(ts, rate, marker="o", label=init)
        ax.fill_between(ts, [by_t[t]["wilson"][0] for t in ts], [by_t[t]["wilson"][1] for t in ts],
                        color=line.get_color(), alpha=0.12)
    ax.axhline(0.5, color="gray", ls="--", lw=0.8, label="half of the runs")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("runs succeeding (95% Wilson band)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(title, fontsize=9)
    _save(fig, path)
