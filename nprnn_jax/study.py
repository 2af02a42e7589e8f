"""The reproduction study's numbers: the paper's results, ours aggregated, and the verdicts.

Everything here is computed from workdirs' summary.json and metrics.jsonl files
(`experiments.reproduce --report` writes docs/reproduction.md with it):

- per variant, the success rate over its (learning rate x dropout x seed) cells with
  a 95% Wilson score interval, and a two-sided Fisher exact test of np against each
  baseline (scipy.stats); a diverged or blown-up run is a failure;
- the best (learning rate, dropout) of a variant: the highest mean headline metric
  over seeds on the validation set (validation.json), a diverged seed counting as 0;
  on the test set only for a job without validation records, and then said; ours
  (on the test set) at the best setting and over the whole grid as mean and range
  over seeds;
- steps to success: the first evaluation at which a run's headline metric reached the
  success threshold;
- blown up: a run that stayed finite (so it is not `diverged`) but whose final test loss
  is more than `BLOW_UP_FACTOR` times its loss at initialization (step 0). It already
  fails through its metric; the count says why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Optional

import numpy as np

# The paper's numbers (METHOD.md, read in its v3 text) are declared by each task's module
# (`nprnn_jax.tasks`: `TaskSpec.paper_results`, `paper_updates`, `paper_sequences`).


# A finite run "blew up" when its final test loss exceeds this multiple of its step-0 loss
# (IRNN at too large a rate ends with MSE 1e18-1e27 on addition: finite, useless).
BLOW_UP_FACTOR = 100.0


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple:
    """The Wilson score interval of a binomial proportion (`scipy.stats.binomtest`); (0, 1)
    for no trials."""
    if trials == 0:
        return (0.0, 1.0)
    from scipy import stats
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    return (max(0.0, float(interval.low)), min(1.0, float(interval.high)))


def exact_test(successes_a: int, runs_a: int, successes_b: int, runs_b: int) -> float:
    """The two-sided p-value of Fisher's exact test that two success rates are equal
    (`scipy.stats.fisher_exact` on the 2 x 2 table of successes and failures)."""
    from scipy import stats
    table = [[successes_a, runs_a - successes_a], [successes_b, runs_b - successes_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def chance_relative_bar(chance: float, fraction: float = 0.5) -> float:
    """A success bar ``fraction`` of the way from the chance level to 100%."""
    return chance + fraction * (1.0 - chance)


def _value(record: dict, metric: str) -> float:
    """A run's headline metric, 0 for a diverged run (it failed)."""
    if record.get("diverged") or record.get(metric) is None:
        return 0.0
    return float(record[metric])


def succeeded(record: dict, metric: str, threshold: float, initial_loss: Optional[float] = None) -> bool:
    """A run succeeded: it did not diverge, did not blow up (given its step-0 loss) and its
    ``metric`` reached ``threshold``."""
    return (not record.get("diverged") and record.get(metric) is not None and record[metric] >= threshold
            and not blew_up(record, initial_loss))


def _stats(values) -> dict:
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
            "n": int(values.size)}


def _run_key(record: dict) -> tuple:
    return (record["init"], record["learning_rate"], record.get("dropout", 0.0), record["seed"])


def initial_losses(rows: list) -> dict:
    """``{(init, lr, dropout, seed): test loss at step 0}`` from metrics.jsonl rows."""
    return {_run_key(r): r["test_loss"] for r in rows if r["step"] == 0 and r.get("test_loss") is not None}


def blew_up(record: dict, initial_loss: Optional[float], factor: float = BLOW_UP_FACTOR) -> bool:
    """A finite run whose final test loss is over ``factor`` times its step-0 loss."""
    loss = record.get("test_loss")
    if record.get("diverged") or loss is None or initial_loss is None or not math.isfinite(loss):
        return False
    return loss > factor * initial_loss


def variant_summary(summary: list, init: str, metric: str, threshold: float,
                    initial: Optional[dict] = None, validation: Optional[list] = None) -> dict:
    """Aggregates one variant's runs (records of summary.json) of one experiment.

    Returns ``best`` (learning_rate, dropout, ``selected_on`` and the mean/min/max/n of
    ``metric`` on the test set over the seeds there; the setting is the one with the
    highest mean ``metric`` in ``validation``, the records of validation.json, or, when
    there are none for this variant, on the test set: ``selected_on`` says which), ``grid`` (mean/min/max/n over every run), ``successes``, ``runs``,
    ``wilson`` (95% interval of the success rate), ``diverged``, ``blew_up`` (finite runs
    whose loss grew over `BLOW_UP_FACTOR` times its step-0 value, given ``initial`` from
    `initial_losses`; else 0) and ``by_setting`` (``{(lr, dropout): {"mean", "successes",
    "runs"}}``).
    """
    records = [r for r in summary if r["init"] == init]
    if not records:
        raise ValueError(f"no runs of {init!r} in the summary")
    groups = defaultdict(list)
    for r in records:
        groups[(r["learning_rate"], r.get("dropout", 0.0))].append(r)
    initial = initial or {}
    ok = lambda r: succeeded(r, metric, threshold, initial.get(_run_key(r)))  # noqa: E731  blown up: failed
    by_setting = {key: {"mean": float(np.mean([_value(r, metric) for r in rs])),
                        "successes": sum(ok(r) for r in rs), "runs": len(rs)}
                  for key, rs in groups.items()}
    # best: highest mean; ties go to the smaller learning rate, then the smaller dropout
    chooser, selected_on = {key: value["mean"] for key, value in by_setting.items()}, "test"
    held = [r for r in validation or () if r["init"] == init]
    if held:
        by_held = defaultdict(list)
        for r in held:
            by_held[(r["learning_rate"], r.get("dropout", 0.0))].append(_value(r, metric))
        if set(by_held) != set(by_setting):
            raise ValueError(f"{init}: the validation records' settings {sorted(by_held)} are not the "
                             f"summary's {sorted(by_setting)}")
        chooser, selected_on = {key: float(np.mean(values)) for key, values in by_held.items()}, "validation"
    best_key = max(sorted(chooser), key=lambda key: chooser[key])
    successes = sum(ok(r) for r in records)
    return {"best": {"learning_rate": best_key[0], "dropout": best_key[1], "selected_on": selected_on,
                     **_stats([_value(r, metric) for r in groups[best_key]])},
            "grid": _stats([_value(r, metric) for r in records]),
            "successes": successes, "runs": len(records), "wilson": wilson_interval(successes, len(records)),
            "diverged": sum(bool(r.get("diverged")) for r in records),
            "blew_up": sum(blew_up(r, initial.get(_run_key(r))) for r in records),
            "by_setting": by_setting}


def steps_to_success(rows: list, init: str, learning_rate: float, dropout: float, metric: str,
                     threshold: float) -> dict:
    """``{seed: first evaluation step with metric >= threshold, or None}`` of one setting."""
    out = {}
    for r in sorted(rows, key=lambda r: r["step"]):
        if r["init"] != init or r["learning_rate"] != learning_rate or r.get("dropout", 0.0) != dropout:
            continue
        out.setdefault(r["seed"], None)
        if out[r["seed"]] is None and succeeded(r, metric, threshold):
            out[r["seed"]] = r["step"]
    return out


def curve(rows: list, init: str, learning_rate: float, dropout: float, metric: str) -> dict:
    """Median, min and max over seeds of ``metric`` at every evaluation step (diverged: 0)."""
    by_step = defaultdict(list)
    for r in rows:
        if r["init"] == init and r["learning_rate"] == learning_rate and r.get("dropout", 0.0) == dropout:
            by_step[r["step"]].append(_value(r, metric))
    steps = sorted(by_step)
    return {"steps": steps, "median": [float(np.median(by_step[s])) for s in steps],
            "min": [float(np.min(by_step[s])) for s in steps], "max": [float(np.max(by_step[s])) for s in steps]}


def verdict(ours: dict, favoured: str, others: list, paper_says: str, alpha: float = 0.05) -> str:
    """Plain verdict on the paper's claim that ``favoured`` beats ``others``, from two-sided
    Fisher exact tests of its success rate against each other's (`exact_test`): agrees when
    it succeeded more often than every other at p < ``alpha``, disagrees when some other
    succeeded more often at p < ``alpha``, else cannot tell (the p-values are given)."""
    if favoured not in ours:
        return "cannot tell: the favoured variant was not run"
    f = ours[favoured]
    present = [o for o in others if o in ours]
    p = {o: exact_test(f["successes"], f["runs"], ours[o]["successes"], ours[o]["runs"]) for o in present}
    rate = lambda s: s["successes"] / max(s["runs"], 1)  # noqa: E731
    counts = "; ".join([f"{favoured} {f['successes']}/{f['runs']}"]
                       + [f"{o} {ours[o]['successes']}/{ours[o]['runs']} (Fisher p = {p[o]:.2g})" for o in present])
    above = [o for o in present if rate(ours[o]) > rate(f) and p[o] < alpha]
    if above:
        return (f"disagrees: {', '.join(above)} succeeded more often than {favoured} (two-sided Fisher exact "
                f"test, p < {alpha:g}; {counts}), where the paper says {paper_says}")
    if present and all(rate(f) > rate(ours[o]) and p[o] < alpha for o in present):
        return f"agrees: {favoured} succeeded more often than {', '.join(present)} (p < {alpha:g}; {counts})"
    return f"cannot tell: no difference at p < {alpha:g} ({counts})"


def fmt_interval(interval: tuple) -> str:
    return f"[{100 * interval[0]:.0f}, {100 * interval[1]:.0f}]%"


def fmt_pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


# Robust endpoints (issue 33): at batch 1 one final evaluation is a noisy endpoint, so beside
# it the study reports the mean over a run's last `LAST_EVALS` evaluations.
LAST_EVALS = 5


def run_endpoints(rows: list, metric: str, num_steps: int, k: int = LAST_EVALS) -> dict:
    """``{(init, lr, dropout, seed): {"final": value at num_steps, "last": mean of the last k
    evaluations}}`` of every run of metrics.jsonl ``rows`` that reached ``num_steps`` (a run of an
    unfinished job that has not is left out). A diverged evaluation counts as 0 (`_value`); a run
    with fewer than k evaluations averages what it has."""
    by_run = defaultdict(dict)
    for r in rows:
        by_run[_run_key(r)][r["step"]] = _value(r, metric)
    out = {}
    for key, values in by_run.items():
        if num_steps not in values:
            continue
        steps = sorted(s for s in values if s <= num_steps)[-k:]
        out[key] = {"final": values[num_steps], "last": float(np.mean([values[s] for s in steps]))}
    return out


def endpoint_summary(endpoints: dict, init: str, threshold: float) -> Optional[dict]:
    """One variant's runs of `run_endpoints`: ``runs``, the mean of the final values and of the
    last-k means, and the runs at or above ``threshold`` on each (None: no runs)."""
    values = [v for key, v in endpoints.items() if key[0] == init]
    if not values:
        return None
    return {"runs": len(values),
            "final_mean": float(np.mean([v["final"] for v in values])),
            "last_mean": float(np.mean([v["last"] for v in values])),
            "final_successes": sum(v["final"] >= threshold for v in values),
            "last_successes": sum(v["last"] >= threshold for v in values)}


def seed_matched(endpoints: dict, a: str, b: str, which: str = "last") -> list:
    """``[(lr, dropout, seed, a's value, b's value)]`` for every run of init ``a`` whose run of
    init ``b`` with the same learning rate, dropout and seed exists (the same seed gives both the
    same data order)."""
    out = []
    for (init, lr, dropout, seed), v in sorted(endpoints.items(), key=lambda kv: str(kv[0])):
        if init == a and (b, lr, dropout, seed) in endpoints:
            out.append((lr, dropout, seed, v[which], endpoints[(b, lr, dropout, seed)][which]))
    return out


def sign_test(pairs: list) -> dict:
    """Wins of the first over the second value of ``pairs`` ``[(x, y)]``, losses, ties, and the
    two-sided exact sign test of "neither is better" (`scipy.stats.binomtest` on wins out of
    wins + losses, p = 0.5; ties dropped; p = 1 with no untied pair)."""
    from scipy import stats
    wins = sum(x > y for x, y in pairs)
    losses = sum(x < y for x, y in pairs)
    ties = len(pairs) - wins - losses
    p = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return {"wins": wins, "losses": losses, "ties": ties, "p": p}
