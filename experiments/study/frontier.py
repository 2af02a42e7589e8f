"""The frontier part of the page: the longest sequence length each variant solves, and why
(the memory horizons of initial and trained networks).
"""

from __future__ import annotations

import collections
import json
import pathlib
from typing import Optional

import numpy as np

from experiments.study.figures import _plot_frontier
from experiments.study.plan import FRONTIER_GROUPS, frontier_stop, jobs
from experiments.study.records import _costs, _find_job, _keep_records, run_setting
from nprnn_jax import study, tasks


def frontier_cells(finished: dict, prefix: str) -> dict:
    """``{variant: {T: cell}}`` of one frontier group: per (variant, T) the learning rate
    chosen on the validation set (highest mean validation share), and at it the runs that
    succeed on the test set (the job's own success_share within 0.04), with a 95% Wilson
    interval."""
    cells: dict = {}
    for name, job in finished.items():
        if not name.startswith(prefix) or not name[len(prefix):].isdigit():
            continue
        c, t = job["config"], int(name[len(prefix):])
        initial = study.initial_losses(job["rows"])
        for init in c["inits"]:
            s = study.variant_summary(job["summary"], init, "test_accuracy", c.get("success_share", 0.5), initial,
                                      job.get("validation"))
            b = s["best"]
            at = s["by_setting"][(b["learning_rate"], b["dropout"])]
            cells.setdefault(init, {})[t] = {
                "learning_rate": b["learning_rate"], "selected_on": b["selected_on"], "successes": at["successes"],
                "runs": at["runs"], "wilson": study.wilson_interval(at["successes"], at["runs"]),
                "mean": b["mean"], "grid_successes": s["successes"], "grid_runs": s["runs"]}
    return cells


def longest_solved(by_t: dict) -> Optional[int]:
    """The longest T whose chosen setting succeeds in at least half of its runs (None: none)."""
    solved = [t for t, cell in by_t.items() if cell["runs"] and 2 * cell["successes"] >= cell["runs"]]
    return max(solved) if solved else None


HORIZON_FRACTION = 1e-3  # the memory horizon: the lag where ||dh_T/dx_{T-k}|| < 1e-3 of its lag-0 value
HORIZON_SEEDS = 5
HORIZON_BATCH = 8


def _sequences(task: str, seq_len: int, placement: str, count: int):
    task_type = tasks.get(task).build.task_type  # a marked-pair task (`tasks.MarkedPairBuild`)
    return task_type(seq_len=seq_len, marker_placement=placement, test_size=count).validation_set()["xs"]


def horizons(params_list: list, rnn_config, xs) -> list:
    """The memory horizon (`analysis.memory_horizon`) of each parameter dict on ``xs``."""
    from nprnn_jax import analysis
    return [analysis.memory_horizon(analysis.sensitivity_any(p, xs, rnn_config), HORIZON_FRACTION)
            for p in params_list]


def init_dynamics(variants, task: str, seq_len: int, hidden: int, placement: str, cache: pathlib.Path) -> dict:
    """Per variant at initialization, over `HORIZON_SEEDS` seeds: the eigenvalues of W_hh within
    0.05 of 1 (mean; None for the LSTM, whose recurrence is gated) and the memory horizon on
    ``seq_len``-step sequences of ``task`` (None where it lies beyond T). Cached in ``cache``."""
    key = json.dumps([list(variants), task, seq_len, hidden, placement, HORIZON_SEEDS, HORIZON_FRACTION])
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored["values"]
    import jax
    from nprnn_jax import analysis, rnn, train
    xs = _sequences(task, seq_len, placement, HORIZON_BATCH)
    values = {}
    for init in variants:
        config = rnn.RNNConfig(input_size=2, hidden_size=hidden, init=init)
        params = [train.initial_params(jax.random.PRNGKey(seed), config) for seed in range(HORIZON_SEEDS)]
        near = None if "W_hh" not in params[0] else float(np.mean([analysis.eigenvalues_near_one(p["W_hh"])
                                                                     for p in params]))
        values[init] = {"near_one": near, "horizons": horizons(params, config, xs)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "values": values}, indent=1) + "\n")
    return values


def trained_horizons(folder: pathlib.Path) -> Optional[dict]:
    """``{variant: [horizon per seed]}`` after training, read from the job's horizon.json (written
    by `analyze_horizons`, the explicit analysis step); None when there is none. The page only
    reads."""
    path = folder / "horizon.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _write_trained_horizons(folder: pathlib.Path, job: dict, cells: dict, t: int) -> dict:
    """Computes the horizons of ``job``'s trained networks at each variant's chosen learning rate
    (``cells``), on its own sequence length, from its checkpoints, into its horizon.json."""
    from nprnn_jax import rnn
    from nprnn_jax import checkpoints
    from nprnn_jax import workdir as workdir_lib
    c = job["config"]
    xs = _sequences(c["task"], t, c.get("marker_placement", "halves"), HORIZON_BATCH)
    out = {}
    for init in c["inits"]:
        cell = cells.get(init, {}).get(t)
        if cell is None:
            continue
        params, _ = checkpoints.restore_params(folder, init)
        combos = [(lr, d) for lr in run_setting(job["record"], init, "learning_rates") for d in c["dropout_rates"]]
        index = combos.index((cell["learning_rate"], c["dropout_rates"][0]))
        input_kernel = params["W_x"] if "W_x" in params else params["W_hx"]  # [combo, seed, inputs, hidden]
        config = rnn.RNNConfig(input_size=input_kernel.shape[-2], hidden_size=c["hidden_size"], init=init)
        per_seed = [{k: v[index, s] for k, v in params.items()} for s in range(c["num_seeds"])]
        out[init] = horizons(per_seed, config, xs)
    workdir_lib.atomic_write(folder / "horizon.json", json.dumps(out, indent=1) + "\n")
    return out


def analyze_horizons(root: pathlib.Path, kept: Optional[pathlib.Path] = None) -> list:
    """The study's analysis step (`reproduce --report` runs it before writing the page; ``root``
    and ``kept`` are the study's folders, holding frontier/): the
    memory horizon of the trained networks of every finished frontier job that still has its
    checkpoints and no horizon.json yet, written into that job's folder. Returns the files written."""
    specs = jobs("frontier")
    finished = {}
    root, kept = root / "frontier", None if kept is None else kept / "frontier"
    for name in specs:
        _, job = _find_job(name, root, kept)
        if job is not None:
            finished[name] = job
    written = []
    for _, prefix, _ in FRONTIER_GROUPS:
        cells = frontier_cells(finished, prefix)
        for name, job in finished.items():
            if not (name.startswith(prefix) and name[len(prefix):].isdigit()):
                continue
            folder = job["folder"]
            if (folder / "horizon.json").is_file() or not (folder / "checkpoints").is_dir():
                continue
            _write_trained_horizons(folder, job, cells, int(name[len(prefix):]))
            written.append(folder / "horizon.json")
    return written


def _horizon_text(values: list, t: int) -> str:
    """Mean over seeds, a horizon beyond T counted as T (then a lower bound, marked >=)."""
    if not values:
        return "-"
    beyond = sum(v is None for v in values)
    mean = float(np.mean([t if v is None else v for v in values]))
    return (">=" if beyond else "") + f"{mean:.0f}" + (f" ({beyond}/{len(values)} beyond T)" if beyond else "")


def why_lines(cells: dict, finished: dict, prefix: str, figures: pathlib.Path, task: str, config: dict) -> list:
    """Item 5 of the frontier: the spectrum and memory horizon beside each variant's frontier,
    and whether the horizon at init orders the variants as the frontier does (Spearman)."""
    from scipy import stats
    longest_t = max(t for by_t in cells.values() for t in by_t)
    init = init_dynamics(list(cells), task, longest_t, config["hidden_size"], config.get("marker_placement", "halves"),
                         figures / f"frontier_{prefix.rstrip('_T')}_init_dynamics.json")
    trained = {}
    for name, job in finished.items():
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            t = int(name[len(prefix):])
            found = trained_horizons(job["folder"])
            if found is not None:
                trained[t] = found
    header = ["variant", "eigenvalues within 0.05 of 1 at init (of {})".format(config["hidden_size"]),
              f"memory horizon at init (T={longest_t})"] + \
             [f"horizon trained, T={t}" for t in sorted(trained)] + ["longest T solved"]
    lines = [f"Why (the paper's spectral argument, measured): the memory horizon is the lag k at which "
             f"||dh_T/dx_(T-k)|| falls below {HORIZON_FRACTION:g} of its lag-0 value, on {HORIZON_BATCH} "
             f"sequences of the task, mean over {HORIZON_SEEDS} seeds at init and over the chosen setting's seeds "
             f"after training (a horizon beyond T counts as T: then a lower bound).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    pairs = []
    for variant, by_t in cells.items():
        d = init.get(variant, {})
        longest = longest_solved(by_t)
        row = [variant, "- (gated)" if d.get("near_one") is None else f"{d['near_one']:.1f}",
               _horizon_text(d.get("horizons", []), longest_t)]
        row += [_horizon_text(trained[t].get(variant, []), t) for t in sorted(trained)]
        row.append("none" if longest is None else str(longest))
        lines.append("| " + " | ".join(row) + " |")
        if d.get("horizons"):
            pairs.append((float(np.mean([longest_t if v is None else v for v in d["horizons"]])),
                          0 if longest is None else longest))
    lines.append("")
    if len(pairs) >= 3 and len({p[0] for p in pairs}) > 1 and len({p[1] for p in pairs}) > 1:
        rho, p_value = stats.spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
        tied = collections.Counter(p[1] for p in pairs).most_common(1)[0][1]  # variants sharing one longest T
        if rho > 0 and p_value < 0.05:
            verdict = "orders the variants as their frontier does"
        else:
            verdict = ("shows no ordering at the 5% level: no evidence either way, not evidence against it"
                       + (f" ({tied} of the {len(pairs)} variants share one longest solved length, so the "
                          "frontier barely orders them)" if tied > len(pairs) / 2 else ""))
        lines += [f"Does the horizon at init predict the frontier? Over the {len(pairs)} variants the horizon at "
                  f"init {verdict} (Spearman rho = {rho:.2f}, p = {p_value:.2g}; scipy.stats.spearmanr; 'none "
                  f"solved' counted as T = 0). With {len(pairs)} variants only a strong ordering can show.", ""]
    else:
        lines += ["Does the horizon at init predict the frontier? Not testable yet: the horizons or the longest "
                  "solved lengths do not differ between the variants (or too few variants have finished).", ""]
    return lines


def frontier_part(root: pathlib.Path, figures: pathlib.Path, rel: str,
                  kept: Optional[pathlib.Path] = None) -> tuple:
    """The frontier's lines and results rows: where each variant stops working."""
    specs = jobs("frontier")
    finished, missing = {}, []
    for name in specs:
        folder, job = _find_job(name, root, kept)
        if job is None:
            missing.append(name)
            continue
        finished[name] = job
    lines, results = [], []
    costs = (_costs(root) or (_costs(kept) if kept is not None else {}))
    for task, prefix, heading in FRONTIER_GROUPS:
        names = [n for n in specs if n.startswith(prefix) and n[len(prefix):].isdigit()]
        cells = frontier_cells(finished, prefix)
        lines += [f"### {heading}", ""]
        if not cells:
            lines += [f"No job of this protocol has finished yet ({len(names)} to run: "
                      f"`python -m experiments.reproduce --budget=frontier --only={','.join(names[:2])},...`).", ""]
            continue
        some = finished[next(n for n in names if n in finished)]
        c = some["config"]
        ts = sorted({t for by_t in cells.values() for t in by_t})
        spent = sum(r["seconds"] for n in names for r in costs.get(n, []))
        lines += [f"Budget: {c['num_steps']:,} updates of batch {c['batch_size']} at every T ({c['optimizer']}, "
                  f"hidden {c['hidden_size']}, clip {c['clip_norm']:g}, learning rates "
                  f"{', '.join(f'{x:g}' for x in c['learning_rates'])}, {c['num_seeds']} seeds, marker placement "
                  f"{c.get('marker_placement', 'halves')}); a run succeeds when at least "
                  f"{100 * c.get('success_share', 0.5):g}% of {c['test_size']:,} test sequences are within 0.04. "
                  f"Each cell: the learning rate chosen on the validation set, then the test runs at it that "
                  f"succeed, with a 95% Wilson interval. Cost so far: {spent / 3600:.1f} h wall clock.", ""]
        header = ["variant"] + [f"T={t}" for t in ts] + ["longest T solved in >= half of its runs"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for init, by_t in cells.items():
            row = [init]
            for t in ts:
                cell = by_t.get(t)
                row.append("-" if cell is None else f"{cell['successes']}/{cell['runs']} (lr {cell['learning_rate']:g}"
                           + ("" if cell["selected_on"] == "validation" else ", chosen on test") + ")")
                if cell is not None:
                    results.append({"budget": "frontier", "protocol": prefix.rstrip("_T"), "task": task,
                                    "init": init, "seq_len": t, **{k: v for k, v in cell.items() if k != "wilson"},
                                    "wilson_low": cell["wilson"][0], "wilson_high": cell["wilson"][1]})
            longest = longest_solved(by_t)
            row.append("none" if longest is None else f"{longest}")
            lines.append("| " + " | ".join(row) + " |")
        figures.mkdir(parents=True, exist_ok=True)
        file = f"frontier_{prefix.rstrip('_T')}.png"
        _plot_frontier(cells, figures / file, f"{heading}: runs succeeding against T "
                                              f"({c['num_steps']:,} updates at every T)")
        stopped = {n: frontier_stop(n, root, kept, load=finished.get) for n in names if n not in finished}
        not_yet = [n for n, why in stopped.items() if why is None]
        lines += ["", f"![{heading}]({rel}/{file})", ""]
        if any(stopped.values()):
            lines += [f"Not run: {', '.join(n for n, why in stopped.items() if why)}: "
                      f"{next(why for why in stopped.values() if why)}.", ""]
        if not_yet:
            lines += [f"Not finished yet: {', '.join(not_yet)}.", ""]
        lines += why_lines(cells, finished, prefix, figures, task, c)  # may add horizon.json to the jobs
    for name, job in finished.items():
        _keep_records(job["folder"], figures / "workdirs" / "frontier" / name)
    return lines, results
