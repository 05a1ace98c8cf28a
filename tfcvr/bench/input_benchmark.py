"""`tfcvr bench input`: where the `tfcvr train` input paths spend their
time, stage by stage, on `tfcvr bench train`'s TFRecords.

Each of the raw path's stages adds one step of `tfcvr.data.make_dataset` to
the one before; every stage is drained alone (no model) for `--epochs`
passes and prints its rows/s, to compare with the model's own training
step on the same rows already in memory (`tfcvr bench train --source
memory`):

1. `read`: the gzip shards interleaved, records counted (decompression);
2. `read_uncompressed`: the same records from uncompressed copies;
3. `parse`: + shuffle buffer, `batch`, one `tf.io.parse_example` per batch;
4. `transform`: + `FeatureTransform` (vocabulary lookups, casts);
5. `make_dataset`: the whole raw pipeline (`tfcvr train --input-format raw`);
6. `encoded`: the encoded shards as `tfcvr train` reads them by default
   (`make_encoded_dataset`, training order: shards, chunks and rows
   shuffled); the one-time encoding's seconds are printed before.
"""

import json
import os
import time

import tensorflow as tf

from tfcvr.bench import train_benchmark
from tfcvr.data import DatasetDir
from tfcvr.data import EncodedManifest
from tfcvr.data.dataset_dir import ENCODED
from tfcvr.data.dataset_dir import RAW
from tfcvr.features import keys

STAGES = ("read", "read_uncompressed", "parse", "transform", "make_dataset",
          "encoded")


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--data-dir", default=None,
                        help="benchmark TFRecords (default: bench_output/train_data, "
                             "shared with tfcvr bench train)")
    parser.add_argument("--out", default=None, help="append the results as JSON lines")


def uncompressed_copy(files, directory):
    """Uncompressed copies of gzip TFRecord `files` (reused if present)."""
    os.makedirs(directory, exist_ok=True)
    copies = []
    for path in files:
        copy = os.path.join(directory, os.path.basename(path).replace(".gz", ""))
        if not os.path.exists(copy):
            with tf.io.TFRecordWriter(copy + ".tmp") as writer:
                for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                    writer.write(record.numpy())
            os.replace(copy + ".tmp", copy)
        copies.append(copy)
    return copies


def stage_dataset(stage, data, files, batch_size):
    """The pipeline up to `stage` (see the module docstring)."""
    if stage == "make_dataset":
        return data.dataset(keys.TRAIN_SPLIT, batch_size, input_format=RAW)
    if stage == "encoded":
        return data.dataset(keys.TRAIN_SPLIT, batch_size, input_format=ENCODED)
    compression = None if stage == "read_uncompressed" else "GZIP"
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
        cycle_length=min(len(files), 4), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False)
    if stage in ("read", "read_uncompressed"):
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    transform = data.transform
    spec = transform.parse_spec()

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        labels = {n: tf.cast(parsed.pop(n), tf.float32) for n in data.schema.labels}
        return (transform(parsed) if stage == "transform" else parsed), labels

    ds = ds.shuffle(16 * batch_size).batch(batch_size)
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def drain(ds, epochs):
    """Rows per second over `epochs` passes after one warm-up pass."""
    def rows_of(batch):
        first = batch[1][keys.CLICK] if isinstance(batch, tuple) else batch
        return int(tf.shape(first)[0])

    for batch in ds.take(2):
        rows_of(batch)
    rows, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in ds:
            rows += rows_of(batch)
    return rows / (time.perf_counter() - start)


def run(args):
    data_dir = args.data_dir or os.path.join("bench_output", "train_data")
    print(f"writing/reusing {args.rows} benchmark rows in {data_dir} ...", flush=True)
    train_benchmark.write_bench_data(data_dir, args.rows)
    data = DatasetDir(data_dir)
    files = data.files(keys.TRAIN_SPLIT)
    if "read_uncompressed" in args.stages:
        plain = uncompressed_copy(files, os.path.join(data_dir, "uncompressed"))
    if "encoded" in args.stages:
        manifest = EncodedManifest.load(data_dir, keys.TRAIN_SPLIT)
        print(json.dumps({"benchmark": "input", "stage": "encode (once)",
                          "rows": manifest.rows, "seconds": manifest.seconds,
                          "rows_per_second": round(manifest.rows / max(manifest.seconds, 1e-9), 1)}),
              flush=True)
    for stage in args.stages:
        stage_files = plain if stage == "read_uncompressed" else files
        rate = drain(stage_dataset(stage, data, stage_files, args.batch_size), args.epochs)
        result = {"benchmark": "input", "stage": stage, "rows": args.rows,
                  "batch_size": args.batch_size, "rows_per_second": round(rate, 1)}
        print(json.dumps(result), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
    return 0
