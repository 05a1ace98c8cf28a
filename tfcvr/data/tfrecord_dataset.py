import glob as globlib

import tensorflow as tf

from tfcvr.data.feature_transform import FeatureTransform


def make_dataset(
    file_pattern,
    schema,
    batch_size,
    vocab_dir=None,
    training=True,
    shuffle_buffer=None,
    num_epochs=1,
    include_extra=False,
    cache=False,
    seed=None,
    drop_remainder=False,
    transform=None,
    compression="GZIP",
    num_parallel_reads=None,
):
    """A `tf.data.Dataset` of `(features, labels)` batches for `fit`.

    Reads gzip TFRecords written by the Beam jobs: files are listed and
    interleaved, records are shuffled (training only), batched and then
    parsed in one `tf.io.parse_example` call per batch (much cheaper than
    per-record parsing), transformed by `FeatureTransform`, then prefetched.

    Args:
        file_pattern: str or list of str. Glob(s) of TFRecord files.
        schema: `tfcvr.features.Schema`.
        batch_size: int.
        vocab_dir: str or None. Directory of the schema's vocabulary files.
        training: bool. Shuffle files and records.
        shuffle_buffer: int or None. Record shuffle buffer; defaults to
            `16 * batch_size` when training.
        num_epochs: int or None. Passes over the data; None repeats forever.
        include_extra: bool. Also return the schema's extra columns (row id,
            ground truth) in `labels`, for evaluation.
        cache: bool. Cache parsed batches in memory after the first pass (the
            whole split must fit in memory).
        seed: int or None. Shuffle seed.
        drop_remainder: bool. Drop the last partial batch.
        transform: `FeatureTransform` or None. Reuse an existing transform.

    Returns:
        A dataset of `(features, labels)`: `features` maps each schema
        feature to its model input (see `FeatureTransform`), `labels` maps
        each schema label to a float32 `(batch,)` tensor (and each extra
        column when `include_extra`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(
        file_pattern
    )
    files = sorted({f for p in patterns for f in globlib.glob(p)})
    if not files:
        raise ValueError(f"No TFRecord files match {patterns}")
    transform = transform or FeatureTransform(schema, vocab_dir)
    parse_spec = transform.parse_spec(include_extra=include_extra)
    label_names = tuple(schema.labels) + (
        tuple(schema.extra_columns) if include_extra else ()
    )

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, parse_spec)
        labels = {
            name: tf.cast(parsed.pop(name), tf.float32) for name in label_names
        }
        return transform(parsed), labels

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
        cycle_length=num_parallel_reads or min(len(files), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    if cache:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if training:
            ds = ds.shuffle(64, seed=seed, reshuffle_each_iteration=True)
    else:
        if training:
            ds = ds.shuffle(
                shuffle_buffer or 16 * batch_size,
                seed=seed,
                reshuffle_each_iteration=True,
            )
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    return ds.prefetch(tf.data.AUTOTUNE)

