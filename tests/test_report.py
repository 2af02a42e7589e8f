import json

import numpy as np
import pytest

from nprnn_jax import report


def records():
    rows = []
    for init, mses in (("np", [0.005, 0.02, None]), ("irnn", [0.1, 0.2, 0.3])):
        for seed, mse in enumerate(mses):
            rows.append({"init": init, "learning_rate": 0.01, "seed": seed, "test_mse": mse,
                         "test_accuracy": None if mse is None else 1 - mse, "solved": None if mse is None else mse < 0.01,
                         "diverged": mse is None, "diverged_step": 7 if mse is None else None})
    return rows


def test_results_table_numbers():
    table = report.results_table(records(), "test_mse", higher_is_better=False)
    lines = table.splitlines()
    assert lines[0].startswith("| init | learning rate | seeds | test_mse mean | test_mse std")
    np_row = lines[2].split(" | ")
    # the diverged seed is left out of the mean and std, and counted
    assert float(np_row[3]) == pytest.approx(0.0125)
    assert float(np_row[4]) == pytest.approx(0.0075)
    assert np_row[6] == "1/3" and np_row[7].startswith("1/3")
    irnn_row = lines[3].split(" | ")
    assert float(irnn_row[3]) == pytest.approx(0.2) and float(irnn_row[4]) == pytest.approx(np.std([0.1, 0.2, 0.3]), rel=1e-3)
    assert irnn_row[6] == "0/3" and irnn_row[7].startswith("0/3")


def test_classification_table_has_best_seed():
    rows = [{"init": "np", "learning_rate": 1e-3, "seed": s, "test_accuracy": a, "diverged": False}
            for s, a in enumerate([0.5, 0.75])]
    table = report.results_table(rows, "test_accuracy", higher_is_better=True)
    assert "best seed" in table and "| np | 0.001 | 2 | 0.625 | 0.125 | 0.75 | 0/2 |" in table


def test_write_report(tmp_path):
    summary = records()
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    metrics = [dict(r, step=step, train_loss=0.1) for r in summary for step in (0, 10)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    table = report.write_report(tmp_path, "test_mse", False, "toy")
    assert (tmp_path / "results.md").read_text().startswith("# toy")
    assert table in (tmp_path / "results.md").read_text()
    for name in ("learning_curves.png", "lr_sensitivity.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
