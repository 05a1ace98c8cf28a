from tfcvr.bench.grid import GridConfig
from tfcvr.bench.grid import GridRunner
from tfcvr.bench.grid import InProcessRunner
from tfcvr.bench.grid import TrainSettings
from tfcvr.bench.grid import in_process_runner


def _config():
    return GridConfig(models=("naive",), seeds=(0,), selection_biases=(0.0,), rows=500,
                      data_seed=0, train=TrainSettings(embedding_dim=4))


def test_a_task_that_raises_fails_its_cell_with_one_line(tmp_path, monkeypatch):
    def boom(task):
        raise RuntimeError("no\nspace left")

    monkeypatch.setattr(in_process_runner, "run_cell", boom)
    cell = _config().cells()[0]
    result = InProcessRunner().run_cell(cell, str(tmp_path / "data"), str(tmp_path / "w"))
    assert result["status"] == "failed"
    assert result["error"] == "RuntimeError: no space left"
    assert "RuntimeError" in result["traceback"]
    assert result["peak_rss_mb"] > 0 and result["versions"]["tfcvr"]


def test_cells_get_the_eager_flag_and_rows_keep_the_result(tmp_path, monkeypatch):
    seen = []

    def fake_dataset(task):
        import json
        import os

        from tfcvr.bench.grid.runner import READY_FILE

        os.makedirs(task["path"], exist_ok=True)
        with open(os.path.join(task["path"], READY_FILE), "w") as f:
            json.dump({"key": _config().simulated_datasets()[0].key}, f)
        return {"key": "built"}

    def fake_cell(task):
        seen.append(task)
        return {"metrics": {"cvr_auc_true": 0.61}, "train_seconds": 1.0}

    monkeypatch.setattr(in_process_runner, "prepare_dataset", fake_dataset)
    monkeypatch.setattr(in_process_runner, "run_cell", fake_cell)
    runner = GridRunner(_config(), tmp_path, executor=InProcessRunner(run_eagerly=True),
                        progress=False)
    summary = runner.run()
    assert summary["ok"] == 1
    assert seen[0]["run_eagerly"] is True and seen[0]["config"]["model"] == "naive"
    [row] = runner.store.latest().values()
    assert row["metrics"]["cvr_auc_true"] == 0.61 and row["status"] == "ok"


def test_datasets_are_encoded_in_this_process(tmp_path, monkeypatch):
    from tfcvr.bench.grid import cell
    from tfcvr.data import DatasetDir
    from tfcvr.features import keys
    from tfcvr.testing.tiny_model import write_tiny_dataset_dir

    seen = []
    monkeypatch.setattr(in_process_runner, "prepare_dataset", seen.append)
    [dataset] = _config().simulated_datasets()
    InProcessRunner().prepare_dataset(dataset, str(tmp_path / "d"), str(tmp_path / "w"))
    assert seen[0]["encode_in_process"] is True
    # What the dataset task then runs instead of `tfcvr encode` in a child.
    data_dir = write_tiny_dataset_dir(str(tmp_path / "data"), rows=64, eval_rows=16)
    line = cell._encode_here(data_dir)
    assert line.startswith("encoded for training: train 64 rows in ")
    assert "eval 16 rows" in line
    data = DatasetDir(data_dir)
    for split in (keys.TRAIN_SPLIT, keys.EVAL_SPLIT):
        assert data.format_of(split) == "encoded", split
