import json
import os
import signal
import subprocess
import sys
import threading
import time

from tfcvr.bench.grid._shared import error_line
from tfcvr.bench.grid.results_store import STATUS_FAILED
from tfcvr.bench.grid.results_store import STATUS_OK

CHILD_MODULE = "tfcvr.bench.grid.cell"
TASK_FILE = "task.json"
RESULT_FILE = "result.json"
LOG_FILE = "log.txt"
# The directory holding the `tfcvr` and `beam_jobs` packages.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


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
        """`{"models": [...], "backbones": [...]}` registered in a fresh process."""
        result = self.run_task({"task": "list_models"}, work_dir, timeout=600)
        if result["status"] != STATUS_OK:
            raise ValueError(
                f"Could not list the registered estimators: {result['error']} "
                f"(log: {result['log']})"
            )
        return {"models": result["models"], "backbones": result["backbones"]}

    def prepare_dataset(self, dataset, path, work_dir):
        task = {"task": "dataset", "dataset": dataset.to_dict(), "path": path,
                "keep_logs": self.keep_logs}
        return self.run_task(task, work_dir, timeout=self.timeout)

    def run_cell(self, cell, data_dir, work_dir):
        task = {"task": "cell", "config": cell.to_dict(), "data_dir": data_dir,
                "cell_id": cell.cell_id}
        return self.run_task(task, work_dir, timeout=self.timeout)
