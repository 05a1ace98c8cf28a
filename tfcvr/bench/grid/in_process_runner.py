"""Runs grid tasks in this process (a notebook, a small grid)."""

import os
import time
import traceback

from tfcvr.bench.grid.cell import TRACEBACK_LINES
from tfcvr.bench.grid.cell import peak_rss_mb
from tfcvr.bench.grid.cell import prepare_dataset
from tfcvr.bench.grid.cell import run_cell
from tfcvr.bench.grid.cell import runtime_versions
from tfcvr.bench.grid.runner import STATUS_FAILED
from tfcvr.bench.grid.runner import STATUS_OK
from tfcvr.bench.grid.runner import error_line


class InProcessRunner:
    """A `GridRunner` executor that runs every task in the calling process.

    The same tasks as `SubprocessRunner` (`tfcvr.bench.grid.cell`), without
    a child process per task: no interpreter and TensorFlow start-up per
    cell, which is most of a cell on tiny data, so a small grid fits in a
    notebook. What it gives up: a crash takes the caller down with it, there
    is no timeout, and `peak_rss_mb` is the peak of the whole process so
    far (the cells' memory is not their own). A task that raises gives a
    failed result with its one-line error, like a failed child. A dataset
    is encoded for training in this process too (a child dataset task
    starts one more process for it, to keep TensorFlow out of its own).

    Args:
        keep_logs: bool. Keep the simulated raw CSV logs next to each
            dataset. Defaults to False.
        run_eagerly: bool. Train without tracing graphs (to debug a cell);
            the rows then report no examples/s. A traced fit is the faster
            already on a notebook-sized grid (one epoch of 18 batches: about
            3 s against 5 s). Defaults to False.
    """

    def __init__(self, keep_logs=False, run_eagerly=False):
        self.keep_logs = bool(keep_logs)
        self.run_eagerly = bool(run_eagerly)

    def _run(self, function, task):
        started = time.perf_counter()
        result = {"status": STATUS_FAILED, "error": None}
        try:
            result.update(function(task))
            result["status"] = STATUS_OK
        except Exception as error:  # noqa: BLE001 (a failure fails one task)
            result["error"] = error_line(error)
            result["traceback"] = "".join(
                traceback.format_exception(error)[-TRACEBACK_LINES:])
        result["versions"] = runtime_versions()
        result["peak_rss_mb"] = peak_rss_mb()
        result["wall_seconds"] = time.perf_counter() - started
        result["log"] = None
        return result

    def prepare_dataset(self, dataset, path, work_dir):
        os.makedirs(work_dir, exist_ok=True)
        task = {"task": "dataset", "dataset": dataset.to_dict(), "path": path,
                "keep_logs": self.keep_logs, "encode_in_process": True}
        return self._run(prepare_dataset, task)

    def run_cell(self, cell, data_dir, work_dir):
        task = {"task": "cell", "config": cell.to_dict(), "data_dir": data_dir,
                "cell_id": cell.cell_id, "run_eagerly": self.run_eagerly}
        return self._run(run_cell, task)
