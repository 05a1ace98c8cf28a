"""`tfcvr bench train`: steady-state training throughput and peak memory.

The reference setting of the spine issue: ESMM on 16 categorical fields,
embedding 16, towers [256, 128], batch 4096, read from the dataset
directory as `tfcvr train` reads it by default (`--source tfrecord`): the
encoded shards, written with the benchmark data as `tfcvr preprocess`
writes them; `--input-format raw` measures the raw-value path (gzip
TFRecords parsed and looked up on every batch).

`--against yardstick` also trains a bare functional Keras ESMM of the same
shape (`tfcvr.bench.yardstick`) on the same rows, already encoded, in the
same process, alternating with tfcvr round by round (the machine is
noisy), and prints tfcvr's ratio to it; `--against deepctr` does the same
with DeepCTR's ESMM in a process of its own (`tfcvr.bench.deepctr_esmm`).

`--source synthetic` runs on any Keras backend on a machine without
TensorFlow (the GPU machines have JAX only): this module imports nothing
that imports TensorFlow, and the TFRecord and memory sources import it
where they run.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np

from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.bench import deepctr_esmm
from tfcvr.bench import yardstick
from tfcvr.features import keys
from tfcvr.models import build_estimator
from tfcvr.models.cvr_model import DEFAULT_TRAIN_METRICS
from tfcvr.models.cvr_model import TRAIN_METRICS
from tfcvr.training.optimizer import OPTIMIZERS
from tfcvr.training.optimizer import make_optimizer
from tfcvr.training.params import parse_params
from tfcvr.training.pretraining import plan_pretraining
from tfcvr.training.throughput_callback import ThroughputCallback

PEERS = ("yardstick", "deepctr")
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
                        help="tfrecord: the dataset directory through tf.data as `tfcvr train` "
                             "reads it (the encoded shards; --input-format raw: the gzip TFRecords "
                             "of raw values); memory: the same rows parsed once into numpy; "
                             "synthetic: encoded numpy rows made without TensorFlow (any Keras "
                             "backend, e.g. KERAS_BACKEND=jax on a GPU)")
    parser.add_argument("--input-format", default="auto", choices=("auto", "raw", "encoded"),
                        help="with --source tfrecord: what `tfcvr train --input-format` would read "
                             "(auto: the encoded shards, written with the benchmark data)")
    parser.add_argument("--cache", action="store_true",
                        help="cache parsed TFRecord batches after the first epoch")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--optimizer", default=OPTIMIZERS[0], choices=OPTIMIZERS,
                        help="tfcvr's optimizer, as tfcvr train --optimizer (the yardstick runs "
                             "Keras' Adam, DeepCTR tf.keras' Adam)")
    parser.add_argument("--train-metrics", default=DEFAULT_TRAIN_METRICS, choices=TRAIN_METRICS,
                        help="auc: the approximate AUCs logged during fit; none: the loss and its terms only")
    parser.add_argument("--against", action="append", default=[], choices=PEERS,
                        help="also train this peer on the same encoded rows and print tfcvr's "
                             "ratio to it (repeatable): yardstick (a bare functional Keras ESMM), "
                             "deepctr (DeepCTR's ESMM, pip install -e .[peers])")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --against: alternating rounds of each implementation")
    parser.add_argument("--yardstick-inputs", default="matrix", choices=yardstick.INPUT_KINDS,
                        help="the yardstick's input: one (batch, fields) matrix, or one input "
                             "per field stacked inside the model")
    parser.add_argument("--peer-python", default=sys.executable,
                        help="the Python that runs DeepCTR (default: this one)")
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
        _encode_bench_data(path)
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
    _encode_bench_data(path)
    return schema


def _encode_bench_data(path):
    """The train split encoded as `tfcvr preprocess` leaves it (kept while
    valid; written by data made before encoding existed)."""
    from tfcvr.data import DatasetDir
    from tfcvr.data import encode_splits
    from tfcvr.data.dataset_dir import ENCODED

    if DatasetDir(path).format_of(keys.TRAIN_SPLIT) != ENCODED:
        encode_splits(path, (keys.TRAIN_SPLIT,))


def synthetic_encoded(rows, seed=0):
    """Already-encoded `(features, labels)` numpy dicts (no TensorFlow)."""
    columns, click, conversion = _raw_columns(rows, seed)
    # Encoded index of raw value v is v + 2 (0 padding, 1 OOV) in this schema.
    features = {name: (values + 2).astype("int32") for name, values in columns.items()}
    labels = {keys.CLICK: click.astype("float32"),
              keys.CONVERSION: conversion.astype("float32")}
    return features, labels


def _encoded_rows(data, batch_size=65536):
    """The TFRecords of `data`'s train split parsed once into numpy."""
    features, labels = {}, {}
    for x, y in data.dataset(keys.TRAIN_SPLIT, batch_size, training=False):
        for k, v in x.items():
            features.setdefault(k, []).append(v.numpy())
        for k, v in y.items():
            labels.setdefault(k, []).append(v.numpy())
    return ({k: np.concatenate(v) for k, v in features.items()},
            {k: np.concatenate(v) for k, v in labels.items()})


def load_data(args):
    """`(schema, fit_input, fit_kwargs, encoded)`: what tfcvr's `fit` reads,
    and the same rows encoded as numpy `(features, labels)` (None for
    TFRecords unless a peer needs them)."""
    if args.source == "synthetic":
        encoded = synthetic_encoded(args.rows)
        return bench_schema(), encoded[0], _array_kwargs(args, encoded[1]), encoded
    # tf.data: see the module docstring.
    from tfcvr.data import DatasetDir

    data_dir = args.data_dir or os.path.join("bench_output", "train_data")
    print(f"writing/reusing {args.rows} benchmark rows in {data_dir} ...", flush=True)
    write_bench_data(data_dir, args.rows)
    data = DatasetDir(data_dir)
    args.input_format_used = data.format_of(keys.TRAIN_SPLIT, args.input_format)
    encoded = _encoded_rows(data) if args.source == "memory" or args.against else None
    if args.source == "memory":
        return data.schema, encoded[0], _array_kwargs(args, encoded[1]), encoded
    train_ds = data.dataset(keys.TRAIN_SPLIT, args.batch_size,
                            drop_remainder=True, cache=args.cache,
                            input_format=args.input_format)
    return data.schema, train_ds, {}, encoded


def _array_kwargs(args, labels):
    return {"y": labels, "batch_size": args.batch_size, "shuffle": True}


def _meter(args, warmup_batches=None):
    batches = args.rows // args.batch_size
    if warmup_batches is None:
        warmup_batches = max(1, min(20, batches // 2) // args.steps_per_execution)
    return ThroughputCallback(args.batch_size, warmup_batches=warmup_batches,
                              steps_per_execution=args.steps_per_execution)


def build_tfcvr(args, schema, fit_input, fit_kwargs):
    """`(model, stage)`: tfcvr's estimator compiled for the benchmark, and
    the first stage of a two-stage estimator (e.g. CSTWA), already trained
    on the same rows and handed over (None for one-stage estimators); its
    time is reported apart and in total_seconds."""
    params = {"embedding_dim": 16, "backbone_config": {"hidden_units": [256, 128]}}
    params.update(parse_params(args.param))
    stage, params = plan_pretraining(args.model, schema, params)
    if stage is not None:
        def fit_first_stage(model, params, epochs, model_dir):
            first = build_estimator(model, schema, params)
            first.compile(optimizer=make_optimizer(1e-3, optimizer=args.optimizer),
                          steps_per_execution=args.steps_per_execution)
            first.fit(fit_input, epochs=epochs, verbose=0, **fit_kwargs)
            return first

        stage.run(fit_first_stage, None, schema, epochs=args.epochs)
    model = build_estimator(args.model, schema, params)
    model.build()
    if stage is not None:
        stage.hand_over(model)
    model.compile(optimizer=make_optimizer(1e-3, optimizer=args.optimizer),
                  steps_per_execution=args.steps_per_execution,
                  train_metrics=args.train_metrics)
    return model, stage


def run(args):
    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1. Received: {args.rounds}")
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(args.precision)
    distribution = keras.distribution.distribution()
    try:
        _distribute(args)
        schema, fit_input, fit_kwargs, encoded = load_data(args)
        model, stage = build_tfcvr(args, schema, fit_input, fit_kwargs)
        if args.against:
            return run_against(args, schema, model, fit_input, fit_kwargs, encoded)
        meter = _meter(args)
        start = time.perf_counter()
        model.fit(fit_input, epochs=args.epochs, callbacks=[meter], verbose=0, **fit_kwargs)
        wall = time.perf_counter() - start
    finally:
        keras.mixed_precision.set_global_policy("float32")
        keras.distribution.set_distribution(distribution)
    extra = {"wall_seconds": wall, "total_seconds": wall + (
        stage.seconds + stage.hand_over_seconds if stage else 0)}
    if stage is not None:
        extra["pretraining"] = stage.record()
    _emit(args, _result(args, "tfcvr", meter.examples_per_second, **extra))
    return 0


def _distribute(args):
    """On JAX with several devices (a GPU machine), data parallelism over
    all of them: `keras.distribution.DataParallel`, no TensorFlow."""
    args.devices = 1
    if keras.backend.backend() != "jax":
        return
    devices = keras.distribution.list_devices()
    if len(devices) > 1:
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices))
        args.devices = len(devices)


def _result(args, implementation, examples_per_second, **extra):
    return {
        "benchmark": "train",
        "implementation": implementation,
        "model": args.model if implementation == "tfcvr" else "esmm",
        "source": (_source(args) if implementation == "tfcvr" else "encoded numpy"),
        "precision": args.precision,
        "steps_per_execution": args.steps_per_execution,
        "train_metrics": args.train_metrics if implementation == "tfcvr" else "none",
        "optimizer": {"tfcvr": args.optimizer, "deepctr": "tf.keras adam"}.get(
            implementation, "keras_adam"),
        "batch_size": args.batch_size,
        "rows": args.rows,
        "epochs": args.epochs,
        "examples_per_second": round(examples_per_second, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "backend": "tensorflow (tf-keras)" if implementation == "deepctr"
        else keras.backend.backend(),
        "devices": 1 if implementation == "deepctr" else getattr(args, "devices", 1),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in extra.items()},
    }


def _source(args):
    """The tfcvr source as results name it, e.g. `tfrecord:encoded+cache`."""
    source = args.source
    if source == "tfrecord":
        source += ":" + getattr(args, "input_format_used", args.input_format)
    return source + ("+cache" if args.cache else "")


def _emit(args, result):
    print(json.dumps(result), flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")


def run_against(args, schema, model, fit_input, fit_kwargs, encoded):
    """Alternating rounds of tfcvr and each peer; prints the median ratio
    of examples/s and of examples per CPU-second over the rounds."""
    names = [spec.name for spec in schema.features]
    if not all(spec.is_categorical and not spec.is_multi_valued
               for spec in schema.features):
        raise ValueError("--against needs single-valued categorical fields only.")
    dims = [spec.input_dim for spec in schema.features]
    runners = {"tfcvr": _keras_runner(args, model, fit_input, fit_kwargs)}
    if "yardstick" in args.against:
        ys_model = yardstick.compile_yardstick(
            yardstick.yardstick_esmm(dims, names, inputs=args.yardstick_inputs),
            steps_per_execution=args.steps_per_execution)
        x, y = yardstick.yardstick_arrays(*encoded, names, inputs=args.yardstick_inputs)
        runners["yardstick"] = _keras_runner(
            args, ys_model, x, {"y": y, "batch_size": args.batch_size, "shuffle": True})
    rates = {name: [] for name in runners}
    cpu_rates = {name: [] for name in runners}
    skipped = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "deepctr" in args.against:
            runners["deepctr"] = _deepctr_runner(args, encoded, names, dims, tmp)
            rates["deepctr"], cpu_rates["deepctr"] = [], []
        for round_ in range(1, args.rounds + 1):
            for name, runner in runners.items():
                if name in skipped:
                    continue
                try:
                    rate, cpu_rate, extra = runner()
                except PeerSkipped as e:
                    skipped[name] = str(e)
                    continue
                rates[name].append(rate)
                cpu_rates[name].append(cpu_rate)
                _emit(args, _result(args, name, rate, round=round_,
                                    examples_per_cpu_second=round(cpu_rate, 1), **extra))
    summary = {"benchmark": "train_against", "model": args.model,
               "source": _source(args),
               "precision": args.precision, "train_metrics": args.train_metrics,
               "steps_per_execution": args.steps_per_execution,
               "backend": keras.backend.backend(), "ratios": {}, "ratio": {},
               "cpu_ratio": {}}
    for peer in args.against:
        if peer in skipped:
            print(f"{peer}: skipped ({skipped[peer]})", flush=True)
            summary["ratios"][peer] = summary["ratio"][peer] = None
            summary["cpu_ratio"][peer] = None
            continue
        ratios = [t / p for t, p in zip(rates["tfcvr"], rates[peer])]
        cpu = float(np.median([t / p for t, p in zip(cpu_rates["tfcvr"], cpu_rates[peer])]))
        summary["ratios"][peer] = [round(r, 3) for r in ratios]
        summary["ratio"][peer] = round(float(np.median(ratios)), 3)
        summary["cpu_ratio"][peer] = round(cpu, 3)
        print(f"tfcvr {args.model} / {peer}: {np.median(ratios):.2f}x examples/s, "
              f"{cpu:.2f}x examples/CPU-s (medians of {len(ratios)} alternating "
              f"rounds; tfcvr median {np.median(rates['tfcvr']) / 1e3:.1f}k, {peer} "
              f"{np.median(rates[peer]) / 1e3:.1f}k examples/s; round ratios "
              f"{', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    _emit(args, summary)
    return 0


class PeerSkipped(Exception):
    """A peer that cannot run here; the message says why."""


def _keras_runner(args, model, fit_input, fit_kwargs):
    """A callable training one measured round; traces on the first call's
    warm-up so every round is steady state."""
    warm = []

    def one_round():
        if not warm:
            # A cache fills on a whole first pass only.
            steps = None if args.cache else min(max(2, 2 * args.steps_per_execution),
                                                args.rows // args.batch_size)
            model.fit(fit_input, epochs=1, verbose=0, steps_per_epoch=steps, **fit_kwargs)
            warm.append(True)
        meter = _meter(args, warmup_batches=1)
        model.fit(fit_input, epochs=args.epochs, callbacks=[meter], verbose=0, **fit_kwargs)
        return meter.examples_per_second, meter.examples_per_cpu_second, {}

    return one_round


def _deepctr_runner(args, encoded, names, dims, tmp):
    """A callable running one round of DeepCTR's ESMM in its own process."""
    features, labels = encoded
    path = os.path.join(tmp, "rows.npz")
    np.savez(path, ids=np.stack([features[n] for n in names], axis=1),
             input_dims=np.array(dims), names=np.array(names),
             click=labels[keys.CLICK], conversion=labels[keys.CONVERSION])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    command = [args.peer_python, "-m", "tfcvr.bench.deepctr_esmm", "--data", path,
               "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
               "--steps-per-execution", str(args.steps_per_execution),
               "--precision", args.precision]

    def one_round():
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = done.stdout.strip().splitlines()
        if done.returncode == deepctr_esmm.NOT_INSTALLED:
            raise PeerSkipped(
                f"{json.loads(lines[-1])['skipped']} in {args.peer_python}; "
                "pip install -e .[peers], or pass --peer-python")
        if done.returncode != 0 or not lines:
            raise PeerSkipped(
                "its process failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
        result = json.loads(lines[-1])
        return (result["examples_per_second"][0], result["examples_per_cpu_second"][0],
                {"peak_rss_mb": result["peak_rss_mb"], "deepctr": result["deepctr"]})

    return one_round
