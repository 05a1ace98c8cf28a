"""`tfcvr bench train`: steady-state training throughput and peak memory.

The reference setting of the spine issue: ESMM on 16 categorical fields,
embedding 16, towers [256, 128], batch 4096, read from gzip TFRecords.

`--source synthetic` runs on any Keras backend on a machine without
TensorFlow (the GPU machines have JAX only): this module imports nothing
that imports TensorFlow, and the TFRecord and memory sources import it
where they run.
"""

import json
import os
import resource
import shutil
import time

import keras
import numpy as np

from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.models import build_estimator
from tfcvr.training.params import parse_params
from tfcvr.training.pretraining import plan_pretraining
from tfcvr.training.throughput_callback import ThroughputCallback

NUM_FIELDS = 16
# Vocabulary sizes of the 16 fields: a few large id fields, many small ones.
VOCAB_SIZES = (100_000, 100_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500,
               200, 100, 50, 20, 10, 10, 5, 3)


def add_arguments(parser):
    parser.add_argument("--model", default="esmm")
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--source", default="tfrecord", choices=("tfrecord", "memory", "synthetic"),
                        help="tfrecord: gzip TFRecords through tf.data; memory: the same rows "
                             "parsed once into numpy; synthetic: encoded numpy rows made without "
                             "TensorFlow (any Keras backend, e.g. KERAS_BACKEND=jax on a GPU)")
    parser.add_argument("--cache", action="store_true",
                        help="cache parsed TFRecord batches after the first epoch")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", default=None,
                        help="where to write the benchmark TFRecords (default: bench_output/train_data)")
    parser.add_argument("--out", default=None, help="append the result as JSON lines to this file")


def bench_schema():
    return Schema(
        features=[
            FeatureSpec(f"f{i}", keys.CATEGORICAL_INT, vocab_size=size,
                        vocab_file=f"{keys.VOCAB_DIR}/f{i}.txt")
            for i, size in enumerate(VOCAB_SIZES)
        ],
        user_id="f0",
        item_id="f1",
    )


def _raw_columns(rows, seed=0):
    rng = np.random.default_rng(seed)
    columns = {}
    for i, size in enumerate(VOCAB_SIZES):
        # Zipf-like popularity, folded into the vocabulary range.
        columns[f"f{i}"] = (rng.zipf(1.3, rows) - 1) % size
    logit = -3.0 + 0.5 * np.sin(columns["f2"]) + 0.5 * np.cos(columns["f3"])
    click = rng.random(rows) < 1 / (1 + np.exp(-logit))
    conversion = click & (rng.random(rows) < 0.1)
    return columns, click.astype(np.int64), conversion.astype(np.int64)


def write_bench_data(path, rows, seed=0):
    """Writes a dataset directory with the benchmark schema; reused if present."""
    # TensorFlow (the encoder too) only here: see the module docstring.
    import tensorflow as tf

    from beam_jobs.example_encoder import ExampleEncoder

    schema = bench_schema()
    marker = os.path.join(path, "rows.txt")
    if os.path.exists(marker) and open(marker).read().strip() == str(rows):
        return Schema.load(path)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.join(path, keys.VOCAB_DIR))
    columns, click, conversion = _raw_columns(rows, seed)
    for spec in schema.features:
        with open(os.path.join(path, spec.vocab_file), "w") as f:
            f.write("\n".join(str(v) for v in range(spec.vocab_size)) + "\n")
    schema.save(path)
    shards = 4
    for split, share in ((keys.TRAIN_SPLIT, slice(0, rows)),):
        os.makedirs(os.path.join(path, split))
        index = np.arange(rows)[share]
        for shard in range(shards):
            part = index[shard::shards]
            names = list(columns)
            cols = [columns[n][part] for n in names]
            encoder = ExampleEncoder(schema)
            with tf.io.TFRecordWriter(
                os.path.join(path, split, f"part-{shard:05d}.tfrecord.gz"),
                tf.io.TFRecordOptions(compression_type="GZIP"),
            ) as writer:
                for j in range(len(part)):
                    writer.write(encoder.encode(
                        {**{n: int(c[j]) for n, c in zip(names, cols)},
                         keys.CLICK: int(click[part[j]]),
                         keys.CONVERSION: int(conversion[part[j]])}
                    ))
    with open(marker, "w") as f:
        f.write(str(rows))
    return schema


def synthetic_encoded(rows, seed=0):
    """Already-encoded `(features, labels)` numpy dicts (no TensorFlow)."""
    columns, click, conversion = _raw_columns(rows, seed)
    # Encoded index of raw value v is v + 2 (0 padding, 1 OOV) in this schema.
    features = {name: (values + 2).astype("int32") for name, values in columns.items()}
    labels = {keys.CLICK: click.astype("float32"),
              keys.CONVERSION: conversion.astype("float32")}
    return features, labels


def run(args):
    params = {"embedding_dim": 16, "backbone_config": {"hidden_units": [256, 128]}}
    params.update(parse_params(args.param))
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(args.precision)
    if args.source == "synthetic":
        schema = bench_schema()
        features, labels = synthetic_encoded(args.rows)
        train_ds = features
        fit_kwargs = {"y": labels, "batch_size": args.batch_size, "shuffle": True}
    else:
        # tf.data: see the module docstring.
        from tfcvr.data import DatasetDir

        data_dir = args.data_dir or os.path.join("bench_output", "train_data")
        print(f"writing/reusing {args.rows} benchmark rows in {data_dir} ...", flush=True)
        write_bench_data(data_dir, args.rows)
        data = DatasetDir(data_dir)
        schema = data.schema
    if args.source == "tfrecord":
        train_ds = data.dataset(keys.TRAIN_SPLIT, args.batch_size,
                                drop_remainder=True, cache=args.cache)
        fit_kwargs = {}
    elif args.source == "memory":
        features, labels = {}, {}
        for x, y in data.dataset(keys.TRAIN_SPLIT, 65536, training=False):
            for k, v in x.items():
                features.setdefault(k, []).append(v.numpy())
            for k, v in y.items():
                labels.setdefault(k, []).append(v.numpy())
        features = {k: np.concatenate(v) for k, v in features.items()}
        labels = {k: np.concatenate(v) for k, v in labels.items()}
        train_ds = features
        fit_kwargs = {"y": labels, "batch_size": args.batch_size, "shuffle": True}
    # A two-stage estimator (e.g. CSTWA) first trains its first-stage model
    # on the same rows; its time is reported apart and in total_seconds.
    stage, params = plan_pretraining(args.model, schema, params)
    if stage is not None:
        def fit_first_stage(model, params, epochs, model_dir):
            first = build_estimator(model, schema, params)
            first.compile(optimizer=keras.optimizers.Adam(1e-3),
                          steps_per_execution=args.steps_per_execution)
            first.fit(train_ds, epochs=epochs, verbose=0, **fit_kwargs)
            return first

        stage.run(fit_first_stage, None, schema, epochs=args.epochs)
    model = build_estimator(args.model, schema, params)
    model.build()
    if stage is not None:
        stage.hand_over(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  steps_per_execution=args.steps_per_execution)
    batches = args.rows // args.batch_size
    meter = ThroughputCallback(
        args.batch_size,
        warmup_batches=max(1, min(20, batches // 2) // args.steps_per_execution),
        steps_per_execution=args.steps_per_execution,
    )
    start = time.perf_counter()
    model.fit(train_ds, epochs=args.epochs, callbacks=[meter], verbose=0, **fit_kwargs)
    wall = time.perf_counter() - start
    keras.mixed_precision.set_global_policy("float32")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "train",
        "model": args.model,
        "source": args.source + ("+cache" if args.cache else ""),
        "precision": args.precision,
        "steps_per_execution": args.steps_per_execution,
        "batch_size": args.batch_size,
        "rows": args.rows,
        "epochs": args.epochs,
        "examples_per_second": round(meter.examples_per_second, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "wall_seconds": round(wall, 2),
        "total_seconds": round(
            wall + (stage.seconds + stage.hand_over_seconds if stage else 0), 2),
        "backend": keras.backend.backend(),
    }
    if stage is not None:
        result["pretraining"] = stage.record()
    print(json.dumps(result))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
    return 0
