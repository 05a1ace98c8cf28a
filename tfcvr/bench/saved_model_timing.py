"""Timing an exported SavedModel in process (used by the serving benchmark)."""

import time

import numpy as np
import tensorflow as tf

from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.features import wire


def percentiles(seconds):
    """p50/p99/mean in milliseconds of a list of durations in seconds."""
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def time_saved_model(saved_model, schema, rows, iterations=1000,
                     batch_size=256, throughput_seconds=5.0):
    """Latency at batch 1 and throughput at `batch_size`, in process.

    The inputs are built once, so the figures are the signature calls
    through `tf.saved_model.load` (what TF Serving runs per request, minus
    its request decoding).

    Returns:
        `{"serving_default_batch1": {p50_ms, p99_ms, mean_ms, calls},
        "predict_examples_batch1": {...},
        "serving_default_batch<batch_size>": {rows_per_s, ms_per_batch,
        calls}}`.
    """
    loaded = tf.saved_model.load(saved_model)
    serve = loaded.signatures[wire.SERVING_DEFAULT]
    examples = loaded.signatures[wire.PREDICT_EXAMPLES]
    names = {s.name: a for a, s in serve.structured_input_signature[1].items()}

    def feed(batch):
        columns = columns_from_rows(batch, schema)
        return {names[k]: tf.constant(v) for k, v in columns.items()}

    one = feed(rows[:1])
    one_example = {
        wire.EXAMPLES_INPUT: tf.constant(
            [example_from_row(rows[0], schema).SerializeToString()]
        )
    }
    results = {}
    for label, call in (
        ("serving_default_batch1", lambda: serve(**one)),
        ("predict_examples_batch1", lambda: examples(**one_example)),
    ):
        for _ in range(min(50, iterations)):
            call()
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        results[label] = dict(percentiles(times), calls=len(times))
    big = feed((rows * (batch_size // len(rows) + 1))[:batch_size])
    serve(**big)
    calls = 0
    start = time.perf_counter()
    while calls == 0 or time.perf_counter() - start < throughput_seconds:
        serve(**big)
        calls += 1
    elapsed = time.perf_counter() - start
    results[f"serving_default_batch{batch_size}"] = {
        "rows_per_s": calls * batch_size / elapsed,
        "ms_per_batch": elapsed / calls * 1e3,
        "calls": calls,
    }
    return results
