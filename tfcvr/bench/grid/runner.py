"""How a grid runs: the resumable `GridRunner`, the `SubprocessRunner` that
gives every task a child process (`python -m tfcvr.bench.grid.cell`), the
append-only `ResultsStore` and the `DirectoryLock` of an output directory.

Nothing here imports TensorFlow or Keras: the parent only plans, starts
children and appends rows.
"""

import concurrent.futures
import datetime
import fcntl
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata

from tqdm.auto import tqdm

import tfcvr
from tfcvr.bench.grid.config import GridConfig
from tfcvr.bench.grid.config import SimulatedDataset
from tfcvr.bench.grid.config import check_int
from tfcvr.evaluation.json_safe import json_safe

STATUS_OK = "ok"
STATUS_FAILED = "failed"

# === On-disk layout (shared with the child, `tfcvr.bench.grid.cell`) ===

RESULTS_FILE = "results.jsonl"
DATASETS_DIR = "datasets"
CELLS_DIR = "cells"
# Inside OUT/datasets/<name>/: the marker of a built dataset, the dataset
# directory, the raw logs (removed unless --keep-logs), the simulator record.
READY_FILE = "READY.json"
DATA_SUBDIR = "data"
LOGS_SUBDIR = "logs"
SIMULATION_FILE = "simulation.json"
# Inside a task's work directory.
TASK_FILE = "task.json"
RESULT_FILE = "result.json"
LOG_FILE = "log.txt"
CHILD_MODULE = "tfcvr.bench.grid.cell"
MAX_ERROR_CHARS = 500
# What a row keeps from a cell result besides the metrics.
_RESULT_FIELDS = ("examples_per_second", "peak_rss_mb", "train_seconds",
                  "eval_seconds", "wall_seconds", "final_loss")
# The directory holding the `tfcvr` and `beam_jobs` packages.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


def error_line(error):
    """`"Type: message"` on one line, at most MAX_ERROR_CHARS characters."""
    text = " ".join(str(error).split()) or "(no message)"
    line = f"{type(error).__name__}: {text}"
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def package_version(name):
    """The installed version of distribution `name`, None if absent."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_versions():
    """Versions known without importing TensorFlow (for rows of cells that
    never started); a child's own report replaces them."""
    versions = {"tfcvr": tfcvr.__version__, "python": sys.version.split()[0],
                "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    for package in ("keras", "tensorflow"):
        versions[package] = package_version(package)
    return versions


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _one_line(text):
    return " ".join(str(text).split())


# === Output directory ===


class DirectoryLock:
    """An exclusive `flock` on `DIR/.grid.lock`: two grids must not append
    to one results file at once."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".grid.lock")
        self._file = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._file = open(self.path, "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            self._file = None
            raise ValueError(
                f"Another `tfcvr bench grid` is running in "
                f"{os.path.dirname(self.path)}; wait for it or use another --out."
            ) from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        return False


class ResultsStore:
    """`results.jsonl`: one JSON row per run, appended, never rewritten.

    A row has `cell_id`, `status` ("ok" or "failed") and whatever the runner
    records. The last row of a cell wins, except that a failure never hides
    an earlier success. Lines that do not parse (a run killed mid-write)
    are skipped and counted in `skipped_lines`.

    Args:
        path: str. The JSONL file (created on the first append).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.skipped_lines = 0

    def rows(self):
        self.skipped_lines = 0
        if not os.path.exists(self.path):
            return []
        rows = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    self.skipped_lines += 1
                    continue
                if not isinstance(row, dict) or "cell_id" not in row:
                    self.skipped_lines += 1
                    continue
                rows.append(row)
        return rows

    def latest(self, rows=None):
        """cell_id -> the row that stands for that cell."""
        out = {}
        for row in self.rows() if rows is None else rows:
            previous = out.get(row["cell_id"])
            if (
                previous is not None
                and previous.get("status") == STATUS_OK
                and row.get("status") != STATUS_OK
            ):
                continue
            out[row["cell_id"]] = row
        return out

    def finished_ids(self):
        return {
            cell_id
            for cell_id, row in self.latest().items()
            if row.get("status") == STATUS_OK
        }

    def append(self, row):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        line = json.dumps(row, sort_keys=True, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


# === Child processes ===


def _last_log_line(path):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def _describe_exit(code):
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


class SubprocessRunner:
    """Runs grid tasks in child processes (`python -m tfcvr.bench.grid.cell`).

    Every task gets a work directory with `task.json`, `result.json` and
    `log.txt` (the child's stdout and stderr). A child that crashes, is
    killed or outlives `timeout` gives a failed result with a one-line
    error; it never raises. Thread-safe: the grid runs `jobs` tasks at once
    from a thread pool. The child sees `TF_CPP_MIN_LOG_LEVEL=2` unless
    set, and the project root on `PYTHONPATH`.

    Args:
        python: str. Interpreter of the children. Defaults to this one.
        timeout: float or None. Seconds before a cell or dataset task is
            killed. Defaults to None (no limit).
        keep_logs: bool. Keep the simulated raw CSV logs next to each
            dataset. Defaults to False.
    """

    def __init__(self, python=None, timeout=None, keep_logs=False):
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be None or > 0. Received: timeout={timeout!r}")
        self.python = python or sys.executable
        self.timeout = timeout
        self.keep_logs = keep_logs
        self._active = set()
        self._lock = threading.Lock()
        self._terminated = False

    def terminate(self):
        """Kills every running child and refuses new tasks (Ctrl-C)."""
        with self._lock:
            self._terminated = True
            active = list(self._active)
        for process in active:
            self._kill(process)

    def _env(self):
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("ABSL_MIN_LOG_LEVEL", "2")
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = _PROJECT_ROOT + (os.pathsep + path if path else "")
        return env

    def run_task(self, task, work_dir, timeout=None):
        """Runs one task; returns its result dict (never raises for the task)."""
        os.makedirs(work_dir, exist_ok=True)
        task_path = os.path.join(work_dir, TASK_FILE)
        result_path = os.path.join(work_dir, RESULT_FILE)
        log_path = os.path.join(work_dir, LOG_FILE)
        if os.path.exists(result_path):
            os.remove(result_path)
        with open(task_path, "w") as f:
            json.dump(task, f, indent=2, sort_keys=True)
        started = time.perf_counter()
        timed_out = False
        with self._lock:
            if self._terminated:
                return {"status": STATUS_FAILED, "error": "the grid was interrupted",
                        "wall_seconds": 0.0, "returncode": None, "log": log_path}
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [self.python, "-m", CHILD_MODULE, task_path, result_path],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self._env(),
                    start_new_session=True,
                )
            self._active.add(process)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill(process)
            code = process.wait()
        except BaseException:
            self._kill(process)
            process.wait()
            raise
        finally:
            with self._lock:
                self._active.discard(process)
        wall = time.perf_counter() - started
        result = None
        if os.path.exists(result_path):
            try:
                with open(result_path) as f:
                    result = json.load(f)
            except ValueError as error:
                result = {"status": STATUS_FAILED,
                          "error": f"unreadable {RESULT_FILE}: {error_line(error)}"}
        if timed_out:
            result = {"status": STATUS_FAILED,
                      "error": f"TimeoutError: the task ran longer than {timeout:g} s "
                               f"and was killed"}
        elif result is None:
            last = _last_log_line(log_path)
            result = {
                "status": STATUS_FAILED,
                "error": f"the task process {_describe_exit(code)} without a result"
                         + (f"; last log line: {last}" if last else ""),
            }
        elif result.get("status") == STATUS_OK and code != 0:
            result["status"] = STATUS_FAILED
            result["error"] = f"the task process {_describe_exit(code)}"
        result["wall_seconds"] = wall
        result["returncode"] = code
        result["log"] = log_path
        return result

    @staticmethod
    def _kill(process):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # === Tasks ===

    def list_models(self, work_dir):
        """`{"models": [...], "backbones": [...], "arguments": {name: [...]}}`
        registered in a fresh process (`arguments`: each estimator's
        constructor argument names)."""
        result = self.run_task({"task": "list_models"}, work_dir, timeout=600)
        if result["status"] != STATUS_OK:
            raise ValueError(
                f"Could not list the registered estimators: {result['error']} "
                f"(log: {result['log']})"
            )
        return {"models": result["models"], "backbones": result["backbones"],
                "arguments": result.get("arguments")}

    def prepare_dataset(self, dataset, path, work_dir):
        task = {"task": "dataset", "dataset": dataset.to_dict(), "path": path,
                "keep_logs": self.keep_logs}
        return self.run_task(task, work_dir, timeout=self.timeout)

    def run_cell(self, cell, data_dir, work_dir):
        task = {"task": "cell", "config": cell.to_dict(), "data_dir": data_dir,
                "cell_id": cell.cell_id}
        return self.run_task(task, work_dir, timeout=self.timeout)


# === The grid ===


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
        check_int("jobs", jobs, 1)
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

    def prepare_datasets(self):
        """Builds the simulated datasets of the grid that are not built yet
        (the cells then reuse them); returns `{dataset: data_dir}` in build
        order. Raises ValueError naming a dataset that could not be built."""
        with DirectoryLock(self.out_dir):
            self._reset_dataset_state()
            out = {}
            for dataset in self.config.simulated_datasets():
                error = self._ensure_dataset(
                    dataset, lambda text: print(text, file=sys.stderr, flush=True))
                if error:
                    raise ValueError(error)
                out[dataset] = self.data_dir(dataset)
            return out

    def _reset_dataset_state(self):
        self._dataset_locks = {}
        self._dataset_errors = {}
        self._locks_guard = threading.Lock()
    def ensure_dataset(self, dataset, say):
        """Builds `dataset` unless ready (e.g. before tuning on it); None,
        or the error line of a failed build."""
        if not hasattr(self, "_locks_guard"):
            self._dataset_locks = {}
            self._dataset_errors = {}
            self._locks_guard = threading.Lock()
        return self._ensure_dataset(dataset, say)

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
        self._reset_dataset_state()
        bar = None
        if self.progress:
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
            "label": cell.label,
            "overrides": cell.overrides,
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
        parts = [f"ok {row.get('label') or row['model']} seed={row['seed']} {row['dataset']}:"]
        for name in ("cvr_auc_true", "cvr_bias_unclicked", "ctcvr_auc"):
            value = metrics.get(name)
            if isinstance(value, (int, float)):
                parts.append(f"{name}={value:.4f}")
        if row.get("wall_seconds") is not None:
            parts.append(f"({row['wall_seconds']:.0f} s)")
        return " ".join(parts)
