import json
import os
import stat

import pytest

from tfcvr.bench.grid import GridConfig
from tfcvr.bench.grid import GridRunner
from tfcvr.bench.grid import ResultsStore
from tfcvr.bench.grid import SubprocessRunner
from tfcvr.bench.grid import TrainSettings
from tfcvr.bench.grid.runner import READY_FILE
from tfcvr.bench.grid.runner import DirectoryLock


class FakeExecutor:
    """Builds datasets by writing the READY marker; fakes cell metrics."""

    def __init__(self, fail_models=(), fail_datasets=()):
        self.fail_models = set(fail_models)
        self.fail_datasets = set(fail_datasets)
        self.cells = []
        self.datasets = []

    def prepare_dataset(self, dataset, path, work_dir):
        self.datasets.append(dataset)
        if dataset.selection_bias in self.fail_datasets:
            return {"status": "failed", "error": "RuntimeError: no disk", "log": "x.log"}
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, READY_FILE), "w") as f:
            json.dump({"key": dataset.key}, f)
        return {"status": "ok"}

    def run_cell(self, cell, data_dir, work_dir):
        self.cells.append(cell)
        assert data_dir.endswith("data")
        if cell.model in self.fail_models:
            return {"status": "failed", "error": "ValueError: bad\nparams", "traceback": "tb"}
        return {
            "status": "ok",
            "metrics": {"cvr_auc_true": 0.6 + 0.01 * cell.seed, "ctr_auc": float("nan")},
            "examples_per_second": 1000.0,
            "peak_rss_mb": 500.0,
            "versions": {"backend": "jax", "keras": "9.9"},
        }


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _config(**overrides):
    fields = dict(models=("naive", "esmm"), seeds=(0, 1), selection_biases=(0.0, 1.0),
                  rows=1000, data_seed=0, train=TrainSettings(embedding_dim=4))
    fields.update(overrides)
    return GridConfig(**fields)


def test_second_run_runs_zero_cells(tmp_path):
    fake = FakeExecutor()
    summary = GridRunner(_config(), tmp_path, executor=fake, progress=False).run()
    assert summary["ran"] == summary["ok"] == 8 and summary["skipped"] == 0
    assert len(fake.cells) == 8
    assert len(fake.datasets) == 2  # one build per (bias, data seed)
    rows = ResultsStore(tmp_path / "results.jsonl").rows()
    assert len(rows) == 8
    row = rows[0]
    assert row["status"] == "ok" and row["error"] is None
    assert row["config"]["train"]["embedding_dim"] == 4
    assert row["versions"]["backend"] == "jax" and row["versions"]["keras"] == "9.9"
    assert row["versions"]["tfcvr"]
    assert row["metrics"]["ctr_auc"] is None  # NaN stored as null
    assert row["peak_rss_mb"] == 500.0

    again = FakeExecutor()
    summary = GridRunner(_config(), tmp_path, executor=again, progress=True).run()
    assert summary["ran"] == 0 and summary["skipped"] == 8
    assert again.cells == [] and again.datasets == []
    assert len(ResultsStore(tmp_path / "results.jsonl").rows()) == 8

    # A grown grid runs only the new cells.
    bigger = FakeExecutor()
    summary = GridRunner(_config(seeds=(0, 1, 2)), tmp_path, executor=bigger,
                         progress=False).run()
    assert summary["ran"] == 4 and {c.seed for c in bigger.cells} == {2}
    assert bigger.datasets == []  # data seed 0 datasets are cached


def test_failed_cell_is_recorded_and_retried(tmp_path):
    fake = FakeExecutor(fail_models={"esmm"})
    summary = GridRunner(_config(), tmp_path, executor=fake, progress=False).run()
    assert summary["ok"] == 4 and summary["failed"] == 4
    failed = [r for r in ResultsStore(tmp_path / "results.jsonl").rows() if r["status"] == "failed"]
    assert len(failed) == 4
    assert failed[0]["error"] == "ValueError: bad params"  # one line
    assert failed[0]["traceback"] == "tb" and failed[0]["metrics"] == {}

    no_retry = FakeExecutor()
    runner = GridRunner(_config(), tmp_path, executor=no_retry, progress=False,
                        retry_failed=False)
    assert runner.run()["ran"] == 0

    retry = FakeExecutor()
    summary = GridRunner(_config(), tmp_path, executor=retry, progress=False).run()
    assert summary["ran"] == 4 and {c.model for c in retry.cells} == {"esmm"}
    latest = ResultsStore(tmp_path / "results.jsonl").latest()
    assert len(latest) == 8 and all(r["status"] == "ok" for r in latest.values())


def test_dataset_that_cannot_be_built_fails_its_cells_only(tmp_path):
    fake = FakeExecutor(fail_datasets={1.0})
    summary = GridRunner(_config(), tmp_path, executor=fake, progress=False).run()
    assert summary["ok"] == 4 and summary["failed"] == 4
    assert len([d for d in fake.datasets if d.selection_bias == 1.0]) == 1  # not per cell
    errors = {r["error"] for r in summary["failures"]}
    assert len(errors) == 1 and "could not be built: RuntimeError: no disk" in errors.pop()


def test_stale_dataset_marker_is_rebuilt(tmp_path):
    config = _config(selection_biases=(0.0,), seeds=(0,), models=("naive",))
    runner = GridRunner(config, tmp_path, executor=FakeExecutor(), progress=False)
    dataset = config.simulated_datasets()[0]
    os.makedirs(runner.dataset_path(dataset))
    with open(os.path.join(runner.dataset_path(dataset), READY_FILE), "w") as f:
        json.dump({"key": "something else"}, f)
    assert not runner.dataset_ready(dataset)
    runner.run()
    assert runner.dataset_ready(dataset)


def test_corrupt_result_lines_are_skipped(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append({"cell_id": "a", "status": "ok"})
    with open(store.path, "a") as f:
        f.write('{"cell_id": "b", "sta\n[1, 2]\n')
    store.append({"cell_id": "a", "status": "failed"})
    store.append({"cell_id": "c", "status": "failed"})
    assert [r["cell_id"] for r in store.rows()] == ["a", "a", "c"]
    assert store.skipped_lines == 2
    # A later failure never hides an earlier success.
    assert store.finished_ids() == {"a"}


def test_one_grid_per_directory(tmp_path):
    with DirectoryLock(str(tmp_path)):
        runner = GridRunner(_config(), tmp_path, executor=FakeExecutor(), progress=False)
        with pytest.raises(ValueError, match="Another `tfcvr bench grid` is running"):
            runner.run()


def test_killed_child_is_reported_with_its_signal(tmp_path):
    python = _script(tmp_path / "crash.sh", 'echo "about to die"; kill -9 $$')
    result = SubprocessRunner(python=python).run_task({"task": "cell"}, str(tmp_path / "w"))
    assert result["status"] == "failed"
    assert "killed by SIGKILL (out of memory?)" in result["error"]
    assert "about to die" in result["error"]


def test_timeout_kills_the_child(tmp_path):
    python = _script(tmp_path / "slow.sh", "sleep 30")
    result = SubprocessRunner(python=python).run_task(
        {"task": "cell"}, str(tmp_path / "w"), timeout=0.5)
    assert result["status"] == "failed" and "longer than 0.5 s" in result["error"]
    assert result["wall_seconds"] < 20


def test_prepare_datasets_builds_each_once_and_the_grid_reuses_them(tmp_path):
    fake = FakeExecutor()
    runner = GridRunner(_config(), tmp_path, executor=fake, progress=False)
    dirs = runner.prepare_datasets()
    assert [d.selection_bias for d in dirs] == [0.0, 1.0]
    assert all(path.endswith("data") and path.startswith(str(tmp_path))
               for path in dirs.values())
    assert len(fake.datasets) == 2
    summary = runner.run()
    assert summary["ok"] == 8 and len(fake.datasets) == 2


def test_prepare_datasets_names_a_dataset_that_fails(tmp_path):
    runner = GridRunner(_config(), tmp_path, executor=FakeExecutor(fail_datasets=(1.0,)),
                        progress=False)
    with pytest.raises(ValueError, match="sim-bias1.*could not be built: RuntimeError: no disk"):
        runner.prepare_datasets()
