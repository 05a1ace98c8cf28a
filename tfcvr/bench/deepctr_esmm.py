"""DeepCTR's ESMM on the benchmark's encoded rows, for `tfcvr bench train
--against deepctr`: run as its own process (`python -m
tfcvr.bench.deepctr_esmm --data rows.npz ...`) because DeepCTR needs
tf-keras (Keras 2) behind `tf.keras`, which `TF_USE_LEGACY_KERAS=1` selects
before TensorFlow is imported. Prints one JSON line; exits with
`NOT_INSTALLED` when DeepCTR or tf-keras is missing.

Install them with `pip install -e .[peers]` (or into another environment
and pass its Python as `--peer-python`).
"""

import argparse
import importlib.util
import json
import os
import resource
import sys
import time

import numpy as np

NOT_INSTALLED = 3
MISSING = ("deepctr", "tf_keras")


def missing_packages():
    return [name for name in MISSING if importlib.util.find_spec(name) is None]


def steady_rate(times, examples_per_call, warmup_calls):
    """Examples per second between batch-end times, the first
    `min(warmup_calls, n // 2)` calls left out (as `ThroughputCallback`)."""
    skip = min(warmup_calls, len(times) // 2)
    timed = len(times) - 1 - skip
    if timed < 1:
        return float("nan")
    return timed * examples_per_call / (times[-1] - times[skip])


def train(data, batch_size, epochs, rounds, steps_per_execution, precision,
          embedding_dim=16, hidden_units=(256, 128), learning_rate=1e-3):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    from deepctr.feature_column import SparseFeat
    from deepctr.models import ESMM

    names = [str(n) for n in data["names"]]
    if precision != "float32":
        tf.keras.mixed_precision.set_global_policy(precision)
    tf.keras.utils.set_random_seed(0)
    columns = [SparseFeat(n, int(v), embedding_dim=embedding_dim)
               for n, v in zip(names, data["input_dims"])]
    model = ESMM(columns, tower_dnn_hidden_units=tuple(hidden_units))
    model.compile(tf.keras.optimizers.Adam(learning_rate),
                  loss=["binary_crossentropy", "binary_crossentropy"],
                  steps_per_execution=steps_per_execution)
    x = {n: data["ids"][:, i] for i, n in enumerate(names)}
    click = data["click"].astype("float32")
    y = [click, click * data["conversion"].astype("float32")]

    class Times(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times, self.cpu_times = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            self.cpu_times.append(time.process_time())

    meter = Times()
    # Tracing and the first steps, then each round alone.
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0,
              steps_per_epoch=min(len(click) // batch_size, 4 * steps_per_execution))
    rates, cpu_rates = [], []
    for _ in range(rounds):
        model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True,
                  verbose=0, callbacks=[meter])
        per_call = batch_size * steps_per_execution
        rates.append(steady_rate(meter.times, per_call, 1))
        cpu_rates.append(steady_rate(meter.cpu_times, per_call, 1))
    return rates, cpu_rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="npz of ids, input_dims, names, click, conversion")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(json.dumps({"skipped": f"not installed: {', '.join(missing)}"}))
        return NOT_INSTALLED
    with np.load(args.data) as data:
        rates, cpu_rates = train(dict(data), args.batch_size, args.epochs, args.rounds,
                                 args.steps_per_execution, args.precision)
    import deepctr

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"examples_per_second": [round(r, 1) for r in rates],
                      "examples_per_cpu_second": [round(r, 1) for r in cpu_rates],
                      "peak_rss_mb": round(peak, 1),
                      "deepctr": deepctr.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
