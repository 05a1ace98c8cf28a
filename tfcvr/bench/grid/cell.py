"""What one grid task runs, in a child process of its own:
`python -m tfcvr.bench.grid.cell TASK RESULT`.

TASK is a JSON file `{"task": "cell" | "dataset" | "list_models", ...}`;
the result (always JSON, also on failure) goes to RESULT. Each cell runs in
a process of its own so that its peak memory (`ru_maxrss`) is its own and a
crash or an exception fails one cell, not the grid.

Each task imports the heavy packages it uses inside its function, because
their needs are disjoint: a cell needs TensorFlow, Keras and tf.data, and
its peak RSS is a reported number, so it must not also hold Apache Beam and
the simulator; the dataset task needs only those two (no TensorFlow: about
230 MiB instead of about 1 GiB); `list_models` needs only the model zoo.
"""

import json
import math
import os
import resource
import shutil
import sys
import time
import traceback

import tfcvr
from tfcvr.bench.grid.config import GridCell
from tfcvr.bench.grid.config import SimulatedDataset
from tfcvr.bench.grid.runner import DATA_SUBDIR
from tfcvr.bench.grid.runner import LOGS_SUBDIR
from tfcvr.bench.grid.runner import READY_FILE
from tfcvr.bench.grid.runner import SIMULATION_FILE
from tfcvr.bench.grid.runner import STATUS_FAILED
from tfcvr.bench.grid.runner import STATUS_OK
from tfcvr.bench.grid.runner import error_line
from tfcvr.bench.grid.runner import package_version
from tfcvr.evaluation import json_safe
from tfcvr.features import keys

TRACEBACK_LINES = 40


def peak_rss_mb():
    """Peak resident memory of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def runtime_versions():
    """tfcvr, keras, tensorflow versions and the Keras backend in use.

    Keras is asked only when the task imported it (a task that failed early
    is not slowed down by a TensorFlow import just to report versions).
    """
    versions = {"tfcvr": tfcvr.__version__, "python": sys.version.split()[0]}
    keras = sys.modules.get("keras")
    if keras is not None:
        versions["keras"] = keras.__version__
        versions["backend"] = keras.backend.backend()
    tf = sys.modules.get("tensorflow")
    for name, module in (("keras", keras), ("tensorflow", tf)):
        if name in versions:
            continue
        if module is not None and hasattr(module, "__version__"):
            versions[name] = module.__version__
        else:
            versions[name] = package_version(name)
    return versions


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def run_cell(task):
    """Trains `task["config"]` on `task["data_dir"]` and evaluates it."""
    from tfcvr.data import DatasetDir
    from tfcvr.training.evaluate_dir import evaluate_dir
    from tfcvr.training.throughput_callback import ThroughputCallback

    # The function, not the submodule of the same name.
    from tfcvr.training.trainer import train

    cell = GridCell.from_dict(task["config"])
    data_dir = task["data_dir"]
    settings = cell.train
    train_rows = (DatasetDir(data_dir).summary().get("rows_written") or {}).get(
        keys.TRAIN_SPLIT
    )
    batches = math.ceil(train_rows / settings.batch_size) if train_rows else 40
    # Skip tracing and the first batches, but keep some timed ones on tiny data.
    meter = ThroughputCallback(
        settings.batch_size, warmup_batches=max(1, min(20, batches // 2))
    )
    model, info = train(
        data_dir,
        model=cell.model,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        optimizer=settings.optimizer,
        precision=settings.precision,
        params=cell.model_params(),
        validate=False,
        seed=cell.seed,
        verbose=2,
        callbacks=[meter],
        run_eagerly=bool(task.get("run_eagerly")),
        **settings.controls,
    )
    started = time.perf_counter()
    metrics = evaluate_dir(
        data_dir,
        None,
        split=cell.eval_split,
        batch_size=cell.eval_batch_size,
        progress=False,
        model=model,
    )
    eval_seconds = time.perf_counter() - started
    return {
        "metrics": json_safe(metrics),
        # Eager steps are no throughput measurement.
        "examples_per_second": None if task.get("run_eagerly")
        else _finite_or_none(meter.examples_per_second),
        "train_seconds": float(info["wall_seconds"]),
        "eval_seconds": eval_seconds,
        "final_loss": _finite_or_none((info["history"].get("loss") or [math.nan])[-1]),
    }


def prepare_dataset(task):
    """Simulates logs and runs the Beam job into `task["path"]/data`."""
    from beam_jobs import preprocess
    from tfcvr.simulation import simulate
    from tfcvr.simulation.simulation_config import SimulationConfig

    dataset = SimulatedDataset.from_dict(task["dataset"])
    path = task["path"]
    if os.path.exists(path):
        shutil.rmtree(path)
    logs = os.path.join(path, LOGS_SUBDIR)
    data = os.path.join(path, DATA_SUBDIR)
    started = time.perf_counter()
    simulated = simulate(
        logs,
        rows=dataset.rows,
        seed=dataset.seed,
        selection_bias=float(dataset.selection_bias),
        fmt="csv",
        ctr=dataset.ctr,
        cvr=dataset.cvr,
        num_users=dataset.num_users,
        num_items=dataset.num_items,
        config=None if dataset.cvr_noise is None else SimulationConfig(
            cvr_noise=float(dataset.cvr_noise)),
    )
    print(json.dumps({k: v for k, v in simulated.items() if isinstance(v, (int, float))}),
          flush=True)
    summary = preprocess.run([
        "--input", os.path.join(logs, "*.csv"),
        "--format", "csv",
        "--spec", simulated["spec"],
        "--out", data,
    ])
    # `run` returns the job summary (older versions an exit status).
    if isinstance(summary, int) and not isinstance(summary, bool) and summary != 0:
        raise RuntimeError(f"the Beam job exited with status {summary}")
    written = summary.get("rows_written", {}) if isinstance(summary, dict) else {}
    empty = [split for split, rows in written.items() if not rows]
    if empty:
        raise RuntimeError(
            f"the Beam job wrote no rows to the {', '.join(empty)} split(s); "
            f"simulate more rows"
        )
    # A caller that already holds TensorFlow (`InProcessRunner`, in a
    # notebook) encodes here: a child would spend seconds importing it again.
    encoded = (_encode_here(data) if task.get("encode_in_process")
               else _encode_in_child(data))
    shutil.copy(simulated["simulation"], os.path.join(path, SIMULATION_FILE))
    if not task.get("keep_logs"):
        shutil.rmtree(logs)
    record = {
        "dataset": dataset.to_dict(),
        "key": dataset.key,
        "realised_ctr": simulated["realised_ctr"],
        "realised_cvr_clicked": simulated["realised_cvr_clicked"],
        "seconds": time.perf_counter() - started,
        "encoded": encoded,
    }
    with open(os.path.join(path, READY_FILE), "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    return record


def _encode_here(data_dir):
    """`tfcvr encode DIR` in this process. Returns its one line."""
    from tfcvr.data.encode_splits import describe
    from tfcvr.data.encode_splits import encode_splits

    splits = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)
    manifests = encode_splits(data_dir, splits, required=True)
    line = describe(data_dir, manifests, splits)
    print(line, flush=True)
    return line


def _encode_in_child(data_dir):
    """`tfcvr encode` (what `tfcvr preprocess` does after the job) in a
    process of its own: this task holds no TensorFlow (see the module
    docstring). Returns its one line."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "tfcvr.cli.main", "encode", data_dir],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["?"]
        raise RuntimeError(f"encoding {data_dir} failed: {lines[-1]}")
    line = done.stdout.strip().splitlines()[-1]
    print(line, flush=True)
    return line


def tune_model(task):
    """`tfcvr.training.tuning.tune` of one estimator on one dataset."""
    from tfcvr.training.tuning import tune

    options = task["tuning"]
    best = tune(task["data_dir"], task["model"], task["out"], params=task["params"],
                batch_size=task["batch_size"], **options)
    return {"best": best}


def list_models(task):
    from tfcvr.layers.backbones import BACKBONES
    from tfcvr.models.registry import estimator_arguments
    from tfcvr.models.registry import estimator_names

    names = estimator_names()
    return {"models": names, "backbones": sorted(BACKBONES),
            "arguments": {name: estimator_arguments(name) for name in names}}


TASKS = {"cell": run_cell, "dataset": prepare_dataset, "list_models": list_models,
         "tune": tune_model}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tfcvr.bench.grid.cell TASK.json RESULT.json",
              file=sys.stderr)
        return 2
    task_path, result_path = argv
    result = {"status": STATUS_FAILED, "error": None}
    try:
        with open(task_path) as f:
            task = json.load(f)
        if task.get("task") not in TASKS:
            raise ValueError(
                f"Unknown task {task.get('task')!r}; expected one of {sorted(TASKS)}"
            )
        result.update(TASKS[task["task"]](task))
        result["status"] = STATUS_OK
    except BaseException as error:  # noqa: BLE001 (every failure is recorded)
        result["error"] = error_line(error)
        result["traceback"] = "".join(
            traceback.format_exception(error)[-TRACEBACK_LINES:]
        )
        traceback.print_exc()
    try:
        result["versions"] = runtime_versions()
    except Exception as error:  # noqa: BLE001
        result["versions"] = {"error": error_line(error)}
    result["peak_rss_mb"] = peak_rss_mb()
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, sort_keys=True, default=str)
    os.replace(tmp, result_path)
    return 0 if result["status"] == STATUS_OK else 1


if __name__ == "__main__":
    sys.exit(main())
