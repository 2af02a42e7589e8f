"""The study's aggregation against hand-computed values."""

import math

import numpy as np

import pytest

from nprnn_jax import study, tasks


def test_wilson_interval_against_hand_computed_values():
    # 7 of 10, z = 1.96: center (0.7 + 0.19208) / 1.38415 = 0.64450, half 0.24771
    low, high = study.wilson_interval(7, 10)
    assert low == pytest.approx(0.39677, abs=1e-4) and high == pytest.approx(0.89222, abs=1e-4)
    low, high = study.wilson_interval(0, 9)  # 0 of 9: [0, 3.8416 / 12.8416]
    assert low == 0.0 and high == pytest.approx(3.8415 / 12.8415, abs=1e-4)
    assert study.wilson_interval(9, 9)[1] == 1.0 and study.wilson_interval(9, 9)[0] == pytest.approx(1 - 3.8415 / 12.8415, abs=1e-4)
    assert study.wilson_interval(0, 0) == (0.0, 1.0)


def records():
    # np: lr 0.01 shares 0.9, 0.6, diverged; lr 0.1: 0.2, 0.3, 0.1
    # irnn: lr 0.01: 0.4, 0.55, 0.45; lr 0.1: 0.5, 0.5, 0.52
    out = []
    for init, lr, values in (("np", 0.01, [0.9, 0.6, None]), ("np", 0.1, [0.2, 0.3, 0.1]),
                             ("irnn", 0.01, [0.4, 0.55, 0.45]), ("irnn", 0.1, [0.5, 0.5, 0.52])):
        for seed, value in enumerate(values):
            out.append({"init": init, "learning_rate": lr, "dropout": 0.0, "seed": seed,
                        "test_accuracy": value, "diverged": value is None})
    return out


def test_variant_summary_success_rate_best_setting_and_grid():
    np_summary = study.variant_summary(records(), "np", "test_accuracy", 0.5)
    # successes: 0.9, 0.6 (the diverged run is a failure) -> 2 of 6
    assert (np_summary["successes"], np_summary["runs"], np_summary["diverged"]) == (2, 6, 1)
    assert np_summary["wilson"] == study.wilson_interval(2, 6)
    # best: lr 0.01, mean (0.9 + 0.6 + 0) / 3 = 0.5 beats lr 0.1's 0.2
    assert np_summary["best"]["learning_rate"] == 0.01
    assert np_summary["best"]["mean"] == pytest.approx(0.5) and np_summary["best"]["min"] == 0.0
    assert np_summary["best"]["max"] == pytest.approx(0.9) and np_summary["best"]["n"] == 3
    assert np_summary["grid"]["mean"] == pytest.approx((0.9 + 0.6 + 0 + 0.2 + 0.3 + 0.1) / 6)
    irnn = study.variant_summary(records(), "irnn", "test_accuracy", 0.5)
    # successes: 0.55, 0.5, 0.5, 0.52 -> 4 of 6; best lr 0.1 (mean 0.50667 > 0.46667)
    assert irnn["successes"] == 4 and irnn["best"]["learning_rate"] == 0.1
    assert irnn["best"]["mean"] == pytest.approx(1.52 / 3)
    assert irnn["by_setting"][(0.01, 0.0)] == {"mean": pytest.approx(1.4 / 3), "successes": 1, "runs": 3}


def test_the_best_setting_is_chosen_on_validation_and_reported_on_test():
    # On the test set irnn's best is lr 0.1 (mean 0.50667 > 0.46667); on validation lr 0.01 wins
    # (0.7 > 0.3, a diverged run counting 0), so the table shows test at lr 0.01: 1.4 / 3.
    validation = []
    for lr, values in ((0.01, [0.7, 0.8, 0.6]), (0.1, [0.3, None, 0.6])):
        for seed, value in enumerate(values):
            validation.append({"init": "irnn", "learning_rate": lr, "dropout": 0.0, "seed": seed,
                               "test_accuracy": value, "diverged": value is None})
    on_test = study.variant_summary(records(), "irnn", "test_accuracy", 0.5)
    assert on_test["best"]["learning_rate"] == 0.1 and on_test["best"]["selected_on"] == "test"
    chosen = study.variant_summary(records(), "irnn", "test_accuracy", 0.5, validation=validation)
    assert chosen["best"]["learning_rate"] == 0.01 and chosen["best"]["selected_on"] == "validation"
    assert chosen["best"]["mean"] == pytest.approx(1.4 / 3) and chosen["best"]["max"] == pytest.approx(0.55)
    # success counts and the whole grid do not depend on the selection
    assert (chosen["successes"], chosen["grid"]) == (on_test["successes"], on_test["grid"])
    # np has no validation records here: chosen on test, and said
    assert study.variant_summary(records(), "np", "test_accuracy", 0.5, validation=validation)["best"][
        "selected_on"] == "test"
    with pytest.raises(ValueError, match="validation records' settings"):
        study.variant_summary(records(), "irnn", "test_accuracy", 0.5, validation=validation[:3])


def test_ties_go_to_the_smaller_learning_rate():
    rows = [{"init": "np", "learning_rate": lr, "seed": 0, "test_accuracy": 0.5, "diverged": False}
            for lr in (0.1, 0.01)]
    assert study.variant_summary(rows, "np", "test_accuracy", 0.5)["best"]["learning_rate"] == 0.01


def test_blown_up_runs_are_counted_from_the_step_0_loss():
    rows = [{"init": "irnn", "learning_rate": 0.1, "dropout": 0.0, "seed": seed, "step": step,
             "test_loss": loss, "test_accuracy": 0.0, "diverged": False}
            for seed, losses in enumerate([(1.2, 1e20), (1.0, 99.0), (1.0, 101.0)])
            for step, loss in zip((0, 500), losses)]
    initial = study.initial_losses(rows)
    assert initial == {("irnn", 0.1, 0.0, 0): 1.2, ("irnn", 0.1, 0.0, 1): 1.0, ("irnn", 0.1, 0.0, 2): 1.0}
    final = [r for r in rows if r["step"] == 500]
    # 1e20 > 100 x 1.2 and 101 > 100 x 1.0 blew up; 99 < 100 x 1.0 did not
    assert [study.blew_up(r, initial[study._run_key(r)]) for r in final] == [True, False, True]
    # a diverged run (non-finite) is counted as diverged, not as blown up; no step 0: not judged
    assert not study.blew_up(dict(final[0], diverged=True, test_loss=float("nan")), 1.0)
    assert not study.blew_up(final[0], None)
    s = study.variant_summary(final, "irnn", "test_accuracy", 0.5, initial)
    assert (s["blew_up"], s["diverged"], s["successes"]) == (2, 0, 0)
    assert study.variant_summary(final, "irnn", "test_accuracy", 0.5)["blew_up"] == 0


def test_steps_to_success_and_curves():
    rows = []
    for step, values in ((0, [0.1, 0.1]), (10, [0.6, 0.2]), (20, [0.4, 0.7])):
        for seed, value in enumerate(values):
            rows.append({"init": "np", "learning_rate": 0.01, "dropout": 0.0, "seed": seed, "step": step,
                         "test_accuracy": value, "diverged": False})
    assert study.steps_to_success(rows, "np", 0.01, 0.0, "test_accuracy", 0.5) == {0: 10, 1: 20}
    assert study.steps_to_success(rows, "np", 0.01, 0.0, "test_accuracy", 0.8) == {0: None, 1: None}
    c = study.curve(rows, "np", 0.01, 0.0, "test_accuracy")
    assert c["steps"] == [0, 10, 20] and c["median"] == pytest.approx([0.1, 0.4, 0.55])
    assert c["min"] == pytest.approx([0.1, 0.2, 0.4]) and c["max"] == pytest.approx([0.1, 0.6, 0.7])


def test_verdicts_from_fishers_exact_test():
    def summary(k, n):
        return {"successes": k, "runs": n, "wilson": study.wilson_interval(k, n)}
    # 9/9 vs 0/9: the table and its mirror image, p = 2 / C(18, 9) = 4.11e-05
    text = study.verdict({"np": summary(9, 9), "irnn": summary(0, 9)}, "np", ["irnn"], "np wins")
    assert text.startswith("agrees") and "Fisher p = 4.1e-05" in text
    assert study.verdict({"np": summary(0, 9), "irnn": summary(9, 9)}, "np", ["irnn"], "np wins").startswith(
        "disagrees: irnn")
    # 40/54 vs 35/54: intervals overlap, and the exact test finds no difference (p = 0.40)
    text = study.verdict({"np": summary(40, 54), "irnn_scaled": summary(35, 54)}, "np", ["irnn_scaled"], "x")
    assert text.startswith("cannot tell") and "np 40/54" in text and "irnn_scaled 35/54 (Fisher p = 0.4)" in text
    assert math.isclose(study.wilson_interval(9, 9)[0], 0.70085, abs_tol=1e-4)


def test_fishers_exact_test_against_known_values():
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: two-sided p = 34 / 70 = 0.4857
    assert study.exact_test(3, 4, 1, 4) == pytest.approx(34 / 70, abs=1e-4)
    # [[10, 0], [0, 10]]: p = 2 / C(20, 10) = 1.0825e-05
    assert study.exact_test(10, 10, 0, 10) == pytest.approx(2 / math.comb(20, 10), rel=1e-6)
    assert study.exact_test(5, 10, 5, 10) == pytest.approx(1.0)


def test_a_blown_up_run_is_never_a_success():
    record = {"init": "np", "learning_rate": 0.01, "dropout": 0.0, "seed": 0, "test_accuracy": 0.9,
              "test_loss": 1.4e6, "diverged": False}
    assert study.succeeded(record, "test_accuracy", 0.6)  # without its step-0 loss it cannot be judged
    assert not study.succeeded(record, "test_accuracy", 0.6, initial_loss=1.1)
    s = study.variant_summary([record], "np", "test_accuracy", 0.6, {("np", 0.01, 0.0, 0): 1.1})
    assert (s["successes"], s["blew_up"]) == (0, 1) and s["by_setting"][(0.01, 0.0)]["successes"] == 0


def _write_workdir(path, task_config, summary, rows):
    import json
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"version": 2, "config": task_config, "plan": {"devices": 1},
                                                  "task": {"name": task_config["task"], "num_train": 40}}))
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_from_tiny_workdirs(tmp_path):
    import json
    from experiments.study import page

    summary = records()
    # test loss 1.0 at step 0; at the end irnn seed 2 of lr 0.1 is finite but 1e6 (blew up)
    for r in summary:
        r["test_loss"] = None if r["diverged"] else (1e6 if (r["init"], r["learning_rate"], r["seed"]) ==
                                                     ("irnn", 0.1, 2) else 0.5)
    rows = [dict(r, step=step, **({"test_accuracy": (0.0 if step == 0 else r["test_accuracy"]),
                                    "test_loss": (1.0 if step == 0 else r["test_loss"])}
                                   if not r["diverged"] else {}))
            for r in summary for step in (0, 100)]
    config = {"task": "addition", "seq_len": 150, "inits": ["np", "irnn"], "num_steps": 100, "batch_size": 16,
              "dropout_rates": [0.0], "optimizer": "sgd", "per_init": {}, "learning_rates": [0.01, 0.1],
              "num_seeds": 3, "eval_every": 100}
    root = tmp_path / "cpu"
    _write_workdir(root / "addition_T150", config, summary, rows)
    (root / "jobs.jsonl").write_text(json.dumps({"job": "addition_T150", "seconds": 120.0, "exit": 0}) + "\n")
    jobs = {"addition_T150": ("addition", "cpu_T150", []), "addition_T200": ("addition", "cpu_T200", [])}
    text = page.write(root, jobs, tmp_path / "docs" / "reproduction.md", "cpu")
    # np: paper 95%; best lr 0.01, mean 50.0% (range 0-90); grid mean 35%; 2/6 succeed, Wilson [10, 70]%
    low, high = study.wilson_interval(2, 6)
    assert (f"| np | 95% | lr 0.01 | 50.0% (0.0-90.0) | 35.0% (0.0-90.0) | 2/6 [{100 * low:.0f}, "
            f"{100 * high:.0f}]% | 2/6 | 1 / 0 of 6 | 100 (2/3 seeds crossed) |") in text
    # the chance level of addition T=150's test set (best constant about 7.9%) and the bar halfway to 100%
    assert "Chance level: 7.9% (the best constant prediction); the chance-relative bar, halfway from it to " \
        "100%, is 54.0%" in text
    assert "| 3/6 " in text and "| 0 / 1 of 6 |" in text  # irnn: one finite run blew up: a failure, not a success
    assert "| irnn | 85.5% | lr 0.1 | 50.7% (50.0-52.0) |" in text
    assert "1,600 training sequences, 0.2% of the paper's 1,000,000; 100 updates, 0.0% of the paper's 1,000,000" in text
    assert "Cost on this machine: 2 min" in text
    # the summary at the top: np and IRNN, paper / ours at the best setting, runs succeeding
    assert (f"| addition_T150 | 100 (0.0%) | 95% / 50.0% | 85.5% / 50.7% | 2/6 [{100 * low:.0f}, {100 * high:.0f}]% "
            f"| 3/6 {study.fmt_interval(study.wilson_interval(3, 6))} | cannot tell |") in text
    assert text.index("Generated by") < text.index("## Summary") < text.index("### addition_T150")
    assert "`addition_T200` (addition cpu_T200): not started yet" in text
    assert "**addition_T150**: cannot tell: no difference at p < 0.05 (np 2/6; irnn 3/6 (Fisher p = 1)" in text
    assert "[at 0.0% of the paper's updates]" in text
    # every choice the paper leaves open is declared with our value, read from the job's config
    assert ("Choices the paper does not state (ours, and why): gradient clipping: by global norm "
            "(optax.clip_by_global_norm) at 10") in text or "by global norm" in text
    assert "marker placement: halves: one marker in each half (not stated)" in text
    assert "learning rate at batch 16: 0.01, 0.1 (the paper's 0.001 is for batch 1" in text
    results = json.loads((tmp_path / "docs" / "reproduction" / "results.json").read_text())
    assert {r["init"]: r["successes"] for r in results} == {"np": 2, "irnn": 3}
    assert {r["init"]: r["blew_up"] for r in results} == {"np": 0, "irnn": 1}
    # the records are kept next to the report, and rebuild the same page
    kept = tmp_path / "docs" / "reproduction" / "workdirs" / "cpu"
    assert (kept / "addition_T150" / "summary.json").read_text() == json.dumps(summary)
    assert not (kept / "addition_T200").exists()
    again = page.write(kept, jobs, tmp_path / "again" / "reproduction.md", "cpu")
    assert again.replace("--root=" + str(kept.parent), "--root=" + str(root.parent)) == text
    # ... also in place (the copies are the records then)
    assert page.write(kept, jobs, tmp_path / "docs" / "reproduction.md", "cpu") == again
    # every protocol setting that differs from configs/addition.py:paper_T150, with both values
    assert ("Settings that differ from the paper's protocol (`paper_T150`): batch_size 16 (paper 1); "
            "inits np,irnn (paper np,irnn,irnn_scaled,nrnn,ornn,grnn,np_tanh); learning_rates 0.01,0.1 "
            "(paper 0.001); num_seeds 3 (paper 1); num_steps 100 (paper 1000000); train_size 0 (paper 100000).") in text
    for name in ("addition_T150_lr_variant.png", "addition_T150_curves.png", "addition_T150_paper_vs_ours.png",
                 "results.csv"):
        assert (tmp_path / "docs" / "reproduction" / name).is_file()


def test_the_chance_level_is_the_best_constant_and_the_relative_bar_sits_halfway():
    # targets 0.0, 0.01, 0.05, 0.5, 0.52, 0.53: within 0.04 of one constant at most 3 (0.5-0.53)
    assert tasks.best_constant_share([0.0, 0.01, 0.05, 0.5, 0.52, 0.53], 0.04) == pytest.approx(0.5)
    # the product of two uniforms: the best constant (near 0.04) holds about 28%, the mean 0.25 far less
    rng = np.random.default_rng(0)
    products = rng.uniform(size=100_000) * rng.uniform(size=100_000)
    assert tasks.best_constant_share(products, 0.04) == pytest.approx(0.08 * (1 - np.log(0.08)), abs=0.01)
    assert np.mean(np.abs(products - 0.25) < 0.04) < 0.15
    assert study.chance_relative_bar(0.5) == pytest.approx(0.75)
    assert study.chance_relative_bar(0.078) == pytest.approx(0.539)


def _row(init, seed, step, value, lr=0.001):
    return {"init": init, "learning_rate": lr, "dropout": 0.0, "seed": seed, "step": step,
            "test_accuracy": value, "diverged": False}


def test_last_five_mean_and_its_success_count_by_hand():
    # np seed 0: evaluations 0.1, 0.2, 0.9, 0.3, 0.95, 0.6, 0.4 at steps 0..6 (num_steps 6):
    # final 0.4, last five (0.9, 0.3, 0.95, 0.6, 0.4) mean 0.63. np seed 1 stopped at step 4
    # (an unfinished job): left out. irnn seed 0 diverged at step 5: that evaluation counts 0.
    values = [0.1, 0.2, 0.9, 0.3, 0.95, 0.6, 0.4]
    rows = [_row("np", 0, s, v) for s, v in enumerate(values)]
    rows += [_row("np", 1, s, 0.5) for s in range(5)]
    irnn = [0.5, 0.6, 0.7, 0.8, 0.9, None, 0.9]
    rows += [_row("irnn", 0, s, v) for s, v in enumerate(irnn)]
    rows[-2]["diverged"] = True
    ends = study.run_endpoints(rows, "test_accuracy", num_steps=6)
    assert set(ends) == {("np", 0.001, 0.0, 0), ("irnn", 0.001, 0.0, 0)}
    assert ends[("np", 0.001, 0.0, 0)]["final"] == pytest.approx(0.4)
    assert ends[("np", 0.001, 0.0, 0)]["last"] == pytest.approx(0.63)
    assert ends[("irnn", 0.001, 0.0, 0)]["last"] == pytest.approx((0.7 + 0.8 + 0.9 + 0 + 0.9) / 5)
    summary = study.endpoint_summary(ends, "np", threshold=0.5)
    assert summary == {"runs": 1, "final_mean": pytest.approx(0.4), "last_mean": pytest.approx(0.63),
                       "final_successes": 0, "last_successes": 1}
    assert study.endpoint_summary(ends, "nrnn", 0.5) is None


def test_seed_matched_sign_test_by_hand():
    # np against irnn, seed by seed: seeds 0, 1, 2 at one rate, seed 0 at another; irnn has no
    # seed 3. np wins 2 (seeds 0, 2), loses 1 (seed 1), ties 1 (rate 0.01 seed 0).
    ends = {("np", 0.001, 0.0, 0): {"last": 0.9}, ("irnn", 0.001, 0.0, 0): {"last": 0.5},
            ("np", 0.001, 0.0, 1): {"last": 0.2}, ("irnn", 0.001, 0.0, 1): {"last": 0.8},
            ("np", 0.001, 0.0, 2): {"last": 0.7}, ("irnn", 0.001, 0.0, 2): {"last": 0.6},
            ("np", 0.01, 0.0, 0): {"last": 0.3}, ("irnn", 0.01, 0.0, 0): {"last": 0.3},
            ("np", 0.001, 0.0, 3): {"last": 0.9}}
    pairs = study.seed_matched(ends, "np", "irnn")
    assert len(pairs) == 4
    test = study.sign_test([(x, y) for *_, x, y in pairs])
    # two-sided exact binomial: P(X <= 1 or X >= 2 | n=3, 1/2) = 1
    assert (test["wins"], test["losses"], test["ties"]) == (2, 1, 1) and test["p"] == pytest.approx(1.0)
    # 8 wins of 8: p = 2 / 2^8
    assert study.sign_test([(1, 0)] * 8)["p"] == pytest.approx(2 / 256)
    # 7 of 9: p = 2 * (1 + 9 + 36) / 512
    assert study.sign_test([(1, 0)] * 7 + [(0, 1)] * 2)["p"] == pytest.approx(92 / 512)
    assert study.sign_test([(0.5, 0.5)])["p"] == 1.0


def _fake_job(folder, inits, last_values, num_steps=6, finished=True):
    """A paper-budget addition job's records: each init's seed-0 run evaluated at steps 0..num_steps,
    ending on ``last_values[init]`` (every evaluation after step 0 at that value)."""
    import json
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {"task": "addition", "inits": list(inits),
                                                               "num_steps": num_steps}}))
    rows = [_row(init, 0, s, 0.05 if s == 0 else v) for init, v in last_values.items() for s in range(num_steps + 1)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if finished:
        (folder / "summary.json").write_text("[]")


def test_readings_section_answers_from_the_records(tmp_path):
    from experiments.study import endpoints
    variants = ("np", "irnn", "irnn_scaled", "nrnn", "ornn", "grnn", "np_tanh")
    # today's reading: np below IRNN; whx_input: the paper's pattern; first10: only np and irnn
    # finished (a job still running)
    _fake_job(tmp_path / "addition_T150", variants, {v: 0.3 for v in variants} | {"irnn": 0.9})
    _fake_job(tmp_path / "addition_T150_whx_input", variants,
              {"np": 0.95, "irnn": 0.9, "irnn_scaled": 0.6, "nrnn": 0.7, "ornn": 0.1, "grnn": 0.1, "np_tanh": 0.8})
    _fake_job(tmp_path / "addition_T150_first10", variants, {"np": 0.5, "irnn": 0.4}, finished=False)
    text = "\n".join(endpoints.readings_section(tmp_path, None))
    assert "| irnn_scaled | 84 | 30.0 / 30.0 | 60.0 / 60.0 | ... |" in text
    assert "- `addition_T150` (finished): does not show the paper's pattern: np 30.0% < IRNN 90.0%" in text
    assert "- `addition_T150_whx_input` (finished): shows the paper's pattern" in text
    assert "- `addition_T150_first10` (2 of 7 variants finished): cannot tell yet" in text
    assert "**Answer**: `addition_T150_whx_input` shows the paper's pattern" in text
    assert "`addition_T150_first10` still running." in text
    assert endpoints.readings_section(tmp_path / "none", None) == []


def test_the_report_reads_each_inits_settings_from_its_recorded_run_else_from_the_config():
    import json

    from experiments.study import paper, plan, records
    from nprnn_jax import config as config_lib, experiment

    config = plan.named_config("mnist", "paper")  # np-RNN SGD 1e-4, IRNN RMSprop 1e-6 through per_init
    legacy = {"config": json.loads(json.dumps(config_lib.to_json(config)))}  # a record written before `runs`
    recorded = {**legacy, "runs": json.loads(json.dumps({r.init: r.to_json() for r in experiment.init_runs(config)}))}
    for record in (legacy, recorded):
        assert records.run_setting(record, "irnn", "optimizer") == "rmsprop"
        assert records.run_setting(record, "irnn", "learning_rates") == [1e-6]
        assert records.run_setting(record, "np", "optimizer") == "sgd"
        assert records.run_setting(record, "np", "learning_rates") == [1e-4]
    # The recorded run is what counts: it is read, not resolved again from the config.
    recorded["runs"]["irnn"]["grid"]["learning_rates"] = [0.5]
    recorded["runs"]["irnn"]["train"]["optimizer"] = "adam"
    assert records.run_setting(recorded, "irnn", "learning_rates") == [0.5]
    assert ("RMSprop" in dict((w, o) for w, o, _ in paper.unstated_choices("mnist", legacy)))
    assert ("RMSprop" not in dict((w, o) for w, o, _ in paper.unstated_choices("mnist", recorded)))
    with pytest.raises(KeyError, match="'hidden_size' is not a per-init setting"):
        records.run_setting(legacy, "np", "hidden_size")


def _mnist_job(folder, accuracies, num_steps, train_loss=2.3):
    """A pixel-MNIST paper job's np-RNN rows: evaluations at steps 0, 1, ... with ``accuracies``;
    finished (summary.json) when the last evaluation is at ``num_steps``."""
    import json
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {"task": "mnist", "inits": ["np"],
                                                               "num_steps": num_steps}}))
    rows = [dict(_row("np", 0, s, a), train_loss=None if s == 0 else train_loss) for s, a in enumerate(accuracies)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if len(accuracies) - 1 == num_steps:
        (folder / "summary.json").write_text("[]")


def test_table2_readings_section_from_the_records(tmp_path):
    from experiments.study import endpoints
    _mnist_job(tmp_path / "mnist", [0.11] * 7, num_steps=6, train_loss=2.3011)
    assert endpoints.table2_readings_section(tmp_path, None) == []  # no other reading run: no section
    # running: at update 3 of 6, best 0.40 at update 2
    _mnist_job(tmp_path / "mnist_summed_loss", [0.11, 0.2, 0.4, 0.3], num_steps=6, train_loss=1.5)
    text = "\n".join(endpoints.table2_readings_section(tmp_path, None))
    assert "| the minibatch's mean loss, pixels in [0, 1] (our reading: Table 2 above) | `mnist` | finished | " \
           "11.0 / 11.0 | 11.0 (update 0) | 2.3011 |" in text
    assert "| `mnist_summed_loss` | running (update 3 of 6) | 30.0 so far | 40.0 (update 2) | 1.5000 |" in text
    assert "- `mnist_summed_loss`: not finished yet." in text and "mnist_standardized" not in text
    # finished: last five evaluations 0.85, 0.86, 0.9, 0.88, 0.91 (mean 0.88), within 10 points of 92;
    # standardized: finished at chance
    import shutil
    shutil.rmtree(tmp_path / "mnist_summed_loss")
    _mnist_job(tmp_path / "mnist_summed_loss", [0.11, 0.5, 0.85, 0.86, 0.9, 0.88, 0.91], num_steps=6)
    _mnist_job(tmp_path / "mnist_standardized", [0.11] * 7, num_steps=6)
    text = "\n".join(endpoints.table2_readings_section(tmp_path, None))
    assert "| `mnist_summed_loss` | finished | 91.0 / 88.0 | 91.0 (update 6) | 2.3000 |" in text
    assert ("- `mnist_summed_loss`: np-RNN's last-5 mean is 88.0% (our reading: 11.0%), within 10 points of the "
            "paper's 92%, at or above the success bar (50%): this reading reproduces Table 2's np-RNN (one run, "
            "seed 0).") in text
    assert ("- `mnist_standardized`: np-RNN's last-5 mean is 11.0% (our reading: 11.0%), not within 10 points of "
            "the paper's 92%, below the success bar (50%): this reading does not reproduce") in text

def test_start_section_states_the_horizon_against_the_background_from_the_records(tmp_path):
    import json
    import math

    from experiments.study import endpoints
    assert endpoints.start_section(tmp_path, None) == []

    def stage(horizon, median, norm, loss, g_hh):
        # sensitivity over 200 steps (lag decreasing along the array): 1 at lag 0, 0.5 at lag 10, 0 beyond
        curve = [0.0] * 189 + [0.5] + [0.2] * 9 + [1.0]
        return {"max_abs_eigenvalue": 1.0, "median_abs_eigenvalue": median, "memory_horizon": horizon,
                "sensitivity": curve, "final_state_norm": norm, "final_state_zero_share": 0.25, "loss": loss,
                "gradient_norms": {"W_hh": g_hh, "W_hx": 1e-8}, "batch_size": 4, "trailing_zero_input_steps": 99.5}
    folder = tmp_path / "mnist" / "dynamics"
    folder.mkdir(parents=True)
    (folder / "dynamics.json").write_text(json.dumps({
        "np init": stage(17, 0.31, 1e-7, math.log(10), 3.6e-7), "irnn init": stage(None, 1.0, 82.0, 13.7, 2e4)}))
    text = "\n".join(endpoints.start_section(tmp_path, None, linked=tmp_path))
    assert "| np init | 1.000 / 0.310 | 17 | 1, 0.5, 0 | 1e-07 (25%) | 2.303 | 3.6e-07, 1e-08 |" in text
    assert "| irnn init | 1.000 / 1.000 | > T |" in text
    assert ("On these 4 images the last 100 pixels on average are background (input exactly 0). np-RNN's start "
            "forgets a pixel within 17 steps (IRNN's: beyond the sequence), though both W_hh have the largest "
            "eigenvalue 1.00 and 1.00: its median eigenvalue is 0.31 (IRNN's 1.00). Its last state is 1e-07 in "
            "norm, the loss 2.3026 (ln 10 = 2.3026") in text
    assert "sensitivity.png" not in text  # no figure kept, no link
    # another reading's runs (standardized pixels) join the table, with a sentence on np-RNN's start
    other = tmp_path / "mnist_standardized" / "dynamics"
    other.mkdir(parents=True)
    (other / "dynamics.json").write_text(json.dumps({"np init": stage(19, 0.31, 0.88, 2.28, 0.27)}))
    text = "\n".join(endpoints.start_section(tmp_path, None, linked=tmp_path))
    assert "| `mnist_standardized`: np init | 1.000 / 0.310 | 19 |" in text
    assert ("With standardized pixels (`mnist_standardized`), np-RNN's start keeps a last state of 0.88 in norm "
            "(25% of its units at 0), the loss 2.2800 and the gradient of W_hh 0.27; it forgets a pixel within "
            "19 steps.") in text
    (folder / "sensitivity.png").write_bytes(b"\x89PNG")
    assert "![input sensitivity on mnist](reproduction/workdirs/paper/mnist/dynamics/sensitivity.png)" in \
        "\n".join(endpoints.start_section(tmp_path, None, linked=tmp_path))

