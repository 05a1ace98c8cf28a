"""The child process of the grid (`python -m tfcvr.bench.grid.cell`): its
error report, and a tiny real grid (simulator -> Beam -> train/evaluate in
child processes)."""

import json
import math
import os
import sys

import pytest

from tfcvr.bench.grid import GridConfig
from tfcvr.bench.grid import GridRunner
from tfcvr.bench.grid import ResultsStore
from tfcvr.bench.grid import SubprocessRunner
from tfcvr.bench.grid import TrainSettings
from tfcvr.bench.grid import write_report


def test_child_exception_becomes_a_failed_result(tmp_path):
    result = SubprocessRunner(python=sys.executable).run_task(
        {"task": "no_such_task"}, str(tmp_path / "work"))
    assert result["status"] == "failed"
    assert result["error"].startswith("ValueError: Unknown task 'no_such_task'")
    assert "Traceback" in result["traceback"]
    assert result["returncode"] == 1 and result["peak_rss_mb"] > 0
    assert os.path.exists(result["log"])


def test_list_models_reports_each_estimators_arguments(tmp_path):
    registry = SubprocessRunner(python=sys.executable).list_models(str(tmp_path / "work"))
    assert "cstwa" in registry["models"] and "towers" in registry["backbones"]
    assert set(registry["arguments"]) == set(registry["models"])
    assert "use_curse_escaper" in registry["arguments"]["cstwa"]
    assert "align_weight" in registry["arguments"]["choruscvr"]
    assert "align_weight" not in registry["arguments"]["esmm"]


@pytest.mark.large
def test_tiny_grid_end_to_end(tmp_path):
    config = GridConfig(
        models=("naive", "esmm"), seeds=(0,), selection_biases=(1.0,), rows=3000,
        ctr=0.1, cvr=0.1, num_users=300, num_items=500, data_seed=0,
        train=TrainSettings(epochs=1, batch_size=256, embedding_dim=4,
                            backbone_config={"hidden_units": [8]}),
    )
    runner = GridRunner(config, tmp_path, executor=SubprocessRunner(timeout=600),
                        progress=False, jobs=2)
    summary = runner.run()
    rows = ResultsStore(runner.results_path).rows()
    errors = [r["error"] for r in rows if r["status"] != "ok"]
    assert summary["ok"] == 2, errors
    assert sorted(r["model"] for r in rows) == ["esmm", "naive"]
    for row in rows:
        assert row["dataset"] == "sim-bias1" and row["has_ground_truth"]
        metrics = row["metrics"]
        assert metrics["num_rows"] == 300  # the last 10% by time
        assert 0.0 <= metrics["cvr_auc_true"] <= 1.0
        assert math.isfinite(metrics["cvr_bias_unclicked"])
        assert metrics["cvr_bias_by_ctr_decile_unclicked"]["bias"]
        assert row["peak_rss_mb"] > 100 and row["train_seconds"] > 0
        assert row["versions"]["backend"] and row["versions"]["keras"]
        assert row["config"]["train"]["embedding_dim"] == 4
        assert os.path.exists(row["log"])
    written = write_report(rows, str(tmp_path), model_order=list(config.models))
    text = open(written["report"]).read()
    assert "| sim-bias1 " in text and "naive" in text and "esmm" in text
    assert len(written["plots"]) == 3
    # Resumable: nothing left to run, the dataset is not rebuilt.
    again = GridRunner(config, tmp_path, executor=SubprocessRunner(), progress=False)
    assert again.plan()[1] == []
    assert again.run()["ran"] == 0
    built = [d for d in os.listdir(tmp_path / "datasets") if d.startswith("sim-")]
    assert len(built) == 1
    with open(tmp_path / "datasets" / built[0] / "READY.json") as f:
        assert json.load(f)["dataset"]["rows"] == 3000
