"""`bench grid --tuned`: each estimator's cells take its own tuned setting."""

import json
import os

from tfcvr.bench.grid import GridConfig
from tfcvr.bench.grid import GridRunner
from tfcvr.bench.grid import TrainSettings
from tfcvr.bench.grid.runner import READY_FILE
from tfcvr.bench.grid.tuning import tune_grid

BEST = {
    "naive": {"epochs": 3, "learning_rate": 0.002, "weight_decay": 0.0, "embedding_l2": 0.0,
              "propensity": "model", "propensity_calibration": None,
              "params": {"backbone_config": {"hidden_units": [8], "dropout": 0.1}}},
    "multi_ipw": {"epochs": 2, "learning_rate": 0.0005, "weight_decay": 1e-4,
                  "embedding_l2": 1e-6, "propensity": "ctr_model",
                  "propensity_calibration": "platt",
                  "params": {"backbone_config": {"hidden_units": [8], "dropout": 0.0}}},
}


class TuningExecutor:
    def __init__(self):
        self.tasks = []

    def prepare_dataset(self, dataset, path, work_dir):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, READY_FILE), "w") as f:
            json.dump({"key": dataset.key}, f)
        return {"status": "ok"}

    def run_task(self, task, work_dir, timeout=None):
        self.tasks.append(task)
        best = dict(BEST[task["model"]], model=task["model"],
                    tuning={"value": 0.7, "objective": "val_ctcvr_auc"})
        return {"status": "ok", "best": best}


def _config():
    return GridConfig(models=("naive", "multi_ipw"), seeds=(0, 1, 2), selection_biases=(2.0,),
                      rows=1000, train=TrainSettings(embedding_dim=4,
                                                     backbone_config={"hidden_units": [8]}))


def test_cells_take_their_estimators_tuned_setting_and_tuning_is_reused(tmp_path):
    config, executor = _config(), TuningExecutor()
    runner = GridRunner(config, tmp_path, executor=executor, progress=False)
    options = {"trials": 2, "max_epochs": 3}
    tuned, table = tune_grid(config, runner, options, say=lambda line: None)
    # One tuning per estimator, on the first seed's data, at the grid's seed.
    assert sorted(t["model"] for t in executor.tasks) == ["multi_ipw", "naive"]
    assert all("-seed0-" in t["data_dir"] for t in executor.tasks)
    assert all(t["tuning"]["seed"] == 0 for t in executor.tasks)
    cells = tuned.cells()
    assert len(cells) == 6
    for cell in cells:
        best = BEST[cell.model]
        assert cell.train.epochs == best["epochs"]
        assert cell.train.learning_rate == best["learning_rate"]
        assert cell.train.backbone_config == best["params"]["backbone_config"]
    ipw = next(c for c in cells if c.model == "multi_ipw").train
    assert ipw.controls == {"weight_decay": 1e-4, "embedding_l2": 1e-6,
                            "propensity": "ctr_model", "propensity_calibration": "platt"}
    assert next(c for c in cells if c.model == "naive").train.controls == {}
    assert "ctr_model+platt" in table
    # An untuned grid keeps its cell ids (controls stay out of the hash).
    assert "controls" not in config.cells()[0].to_dict()["train"]
    executor.tasks.clear()
    again, _ = tune_grid(config, runner, options, say=lambda line: None)
    assert executor.tasks == []
    assert [c.cell_id for c in again.cells()] == [c.cell_id for c in cells]
