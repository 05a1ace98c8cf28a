import concurrent.futures
import datetime
import json
import os
import platform
import sys
import threading
from importlib import metadata

from tfcvr.bench.grid._shared import DATA_SUBDIR
from tfcvr.bench.grid._shared import READY_FILE
from tfcvr.bench.grid._shared import error_line
from tfcvr.bench.grid.directory_lock import DirectoryLock
from tfcvr.bench.grid.grid_config import GridConfig
from tfcvr.bench.grid.results_store import STATUS_FAILED
from tfcvr.bench.grid.results_store import STATUS_OK
from tfcvr.bench.grid.results_store import ResultsStore
from tfcvr.bench.grid.simulated_dataset import SimulatedDataset
from tfcvr.bench.grid.subprocess_runner import SubprocessRunner
from tfcvr.evaluation.json_safe import json_safe

RESULTS_FILE = "results.jsonl"
DATASETS_DIR = "datasets"
CELLS_DIR = "cells"
# What a row keeps from a cell result besides the metrics.
_RESULT_FIELDS = ("examples_per_second", "peak_rss_mb", "train_seconds",
                  "eval_seconds", "wall_seconds", "final_loss")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def installed_versions():
    """Versions known without importing TensorFlow (for rows of cells that
    never started); a child's own report replaces them."""
    import tfcvr

    versions = {"tfcvr": tfcvr.__version__, "python": sys.version.split()[0],
                "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    for package in ("keras", "tensorflow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _one_line(text):
    return " ".join(str(text).split())


class GridRunner:
    """Runs the cells of a `GridConfig` that `OUT/results.jsonl` lacks.

    For each dataset with pending cells it builds the simulated dataset
    once under `OUT/datasets/<name>/` (reused while its `READY.json`
    exists), then runs each cell through `executor.run_cell` and appends
    one row per run to `results.jsonl`: the cell id and full config, the
    versions, the metrics, examples/s, the child's peak RSS and timings, or
    the one-line error of a failure. A dataset that cannot be built fails
    its cells, not the grid. Finished cells (status "ok") are never rerun;
    failed ones are retried unless `retry_failed=False`.

    Args:
        config: `GridConfig`.
        out_dir: str. Output directory.
        executor: object with `prepare_dataset(dataset, path, work_dir)` and
            `run_cell(cell, data_dir, work_dir)` returning result dicts (see
            `SubprocessRunner`, the default).
        progress: bool. Show a tqdm bar over cells (stderr).
        retry_failed: bool. Rerun cells whose last run failed.
        jobs: int. Cells run at once. Defaults to 1; more shortens the grid
            but the runs then share the CPU, so examples/s are only
            comparable between runs made with the same `jobs` (each row
            records it).
    """

    def __init__(self, config, out_dir, executor=None, progress=True,
                 retry_failed=True, jobs=1):
        if not isinstance(config, GridConfig):
            raise ValueError(
                f"config must be a GridConfig. Received: {type(config).__name__}"
            )
        self.config = config
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.executor = executor if executor is not None else SubprocessRunner()
        self.progress = progress
        self.retry_failed = retry_failed
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be an integer >= 1. Received: jobs={jobs!r}")
        self.jobs = jobs
        self.store = ResultsStore(os.path.join(self.out_dir, RESULTS_FILE))

    @property
    def results_path(self):
        return self.store.path

    def cells(self):
        return self.config.cells()

    def plan(self):
        """`(cells, pending)`: every cell, and those that will run."""
        cells = self.cells()
        latest = self.store.latest()
        pending = []
        for cell in cells:
            row = latest.get(cell.cell_id)
            if row is None:
                pending.append(cell)
            elif row.get("status") != STATUS_OK and self.retry_failed:
                pending.append(cell)
        return cells, pending

    def dataset_path(self, dataset):
        if isinstance(dataset, SimulatedDataset):
            return os.path.join(self.out_dir, DATASETS_DIR, dataset.dir_name)
        return dataset.path

    def data_dir(self, dataset):
        if isinstance(dataset, SimulatedDataset):
            return os.path.join(self.dataset_path(dataset), DATA_SUBDIR)
        return dataset.path

    def dataset_ready(self, dataset):
        if not isinstance(dataset, SimulatedDataset):
            return True
        ready = os.path.join(self.dataset_path(dataset), READY_FILE)
        if not os.path.exists(ready):
            return False
        try:
            with open(ready) as f:
                return json.load(f).get("key") == dataset.key
        except (OSError, ValueError):
            return False

    def run(self):
        """Runs the pending cells; returns a summary dict."""
        with DirectoryLock(self.out_dir):
            return self._run()

    def _ensure_dataset(self, dataset, say):
        """None when `dataset` is ready (building it if needed), else the
        error that fails its cells. Thread-safe: one build per dataset."""
        key = (dataset.kind, dataset.key)
        with self._locks_guard:
            lock = self._dataset_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._dataset_errors:
                return self._dataset_errors[key]
            error = None
            if not self.dataset_ready(dataset):
                say(f"building dataset {dataset.dir_name} ({dataset.rows:,} rows)")
                result = self.executor.prepare_dataset(
                    dataset, self.dataset_path(dataset),
                    os.path.join(self.out_dir, DATASETS_DIR, "_tasks", dataset.dir_name),
                )
                if result.get("status") != STATUS_OK:
                    error = (f"dataset {dataset.dir_name} could not be built: "
                             f"{result.get('error')} (log: {result.get('log')})")
                    say(f"FAILED {error}")
                elif not self.dataset_ready(dataset):
                    error = (f"dataset {dataset.dir_name} reported success but has "
                             f"no {READY_FILE}")
            self._dataset_errors[key] = error
            return error

    def _run_one(self, cell, say):
        error = self._ensure_dataset(cell.dataset, say)
        if error:
            return {"status": STATUS_FAILED, "error": error}
        return self.executor.run_cell(
            cell, self.data_dir(cell.dataset),
            os.path.join(self.out_dir, CELLS_DIR, cell.cell_id),
        )

    def _run(self):
        cells, pending = self.plan()
        summary = {"cells": len(cells), "skipped": len(cells) - len(pending),
                   "ran": 0, "ok": 0, "failed": 0, "failures": []}
        self._dataset_locks = {}
        self._dataset_errors = {}
        self._locks_guard = threading.Lock()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cells), initial=summary["skipped"], unit="cell",
                       desc="grid", file=sys.stderr, dynamic_ncols=True)
        print_lock = threading.Lock()

        def say(text):
            with print_lock:
                if bar is not None:
                    bar.write(text, file=sys.stderr)
                else:
                    print(text, file=sys.stderr, flush=True)

        running = []
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs)
        try:
            futures = {pool.submit(self._run_one, cell, say): cell for cell in pending}
            # Runs start in plan order; the bar shows the oldest unfinished.
            running = list(futures)
            for future in concurrent.futures.as_completed(futures):
                cell = futures[future]
                running.remove(future)
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 (an executor bug fails one cell)
                    result = {"status": STATUS_FAILED, "error": error_line(error)}
                row = self._row(cell, result)
                self.store.append(row)
                summary["ran"] += 1
                if row["status"] == STATUS_OK:
                    summary["ok"] += 1
                    say(self._ok_line(row))
                else:
                    summary["failed"] += 1
                    summary["failures"].append(row)
                    say(f"FAILED {cell.describe()}: {row['error']}")
                if bar is not None:
                    bar.update(1)
                    if running:
                        bar.set_postfix_str(futures[running[0]].describe(), refresh=False)
        except BaseException:
            terminate = getattr(self.executor, "terminate", None)
            if terminate is not None:
                terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        return summary

    def _row(self, cell, result):
        status = STATUS_OK if result.get("status") == STATUS_OK else STATUS_FAILED
        versions = installed_versions()
        child_versions = result.get("versions") or {}
        if "error" not in child_versions:
            versions.update(child_versions)
        row = {
            "cell_id": cell.cell_id,
            "group_id": cell.group_id,
            "status": status,
            "error": None if status == STATUS_OK else _one_line(
                result.get("error") or "unknown error"),
            "model": cell.model,
            "seed": cell.seed,
            "dataset": cell.dataset.label,
            "dataset_kind": cell.dataset.kind,
            "selection_bias": cell.dataset.selection_bias,
            "data_seed": cell.dataset.seed,
            "aliccp": cell.dataset.aliccp,
            "has_ground_truth": cell.dataset.has_ground_truth,
            "config": cell.to_dict(),
            "metrics": (result.get("metrics") or {}) if status == STATUS_OK else {},
            "versions": versions,
            "host": platform.node(),
            "finished_at": _now(),
            "log": result.get("log"),
            "jobs": self.jobs,
        }
        for field in _RESULT_FIELDS:
            row[field] = result.get(field)
        if status != STATUS_OK and result.get("traceback"):
            row["traceback"] = result["traceback"][-4000:]
        return json_safe(row)

    @staticmethod
    def _ok_line(row):
        metrics = row["metrics"]
        parts = [f"ok {row['model']} seed={row['seed']} {row['dataset']}:"]
        for name in ("cvr_auc_true", "cvr_bias_unclicked", "ctcvr_auc"):
            value = metrics.get(name)
            if isinstance(value, (int, float)):
                parts.append(f"{name}={value:.4f}")
        if row.get("wall_seconds") is not None:
            parts.append(f"({row['wall_seconds']:.0f} s)")
        return " ".join(parts)
