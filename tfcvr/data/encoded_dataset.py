import math

import tensorflow as tf

from tfcvr.data.encoded_manifest import EXTRA
from tfcvr.data.encoded_manifest import FEATURE
from tfcvr.data.encoded_manifest import INT32

# Chunks of the shuffled stream a training window is drawn from, per chunk
# of the window: a chunk waits at most this many windows before it is used.
_CHUNK_BUFFER_WINDOWS = 2
# Encoded shards read at once when training (order is shuffled anyway).
_TRAINING_CYCLE = 16


def make_encoded_dataset(
    files,
    columns,
    batch_size,
    chunk_rows,
    training=True,
    shuffle_buffer=None,
    num_epochs=1,
    include_extra=False,
    cache=False,
    seed=None,
    drop_remainder=False,
):
    """`make_dataset`'s `(features, labels)` batches from encoded shards.

    Reads the chunked records `tfcvr.data.encode_splits` writes (one record
    per `chunk_rows` rows, every column raw little-endian bytes): a window
    of chunks is parsed and decoded with one `tf.io.decode_raw` per column,
    so a row costs a few bytes of copying instead of `tf.io.parse_example`
    and the vocabulary lookups, then the windows are re-batched to
    `batch_size` (`Dataset.rebatch`; any size, the remainder kept unless
    `drop_remainder`).

    Not training, the shards are interleaved one chunk at a time in file
    order, which is the order the encoder dealt the chunks out, so the rows
    come in exactly the order `make_dataset(..., training=False)` gives on
    the raw shards: evaluation sees the same batches.

    Training: shard order is shuffled, chunks of up to 16 shards are
    interleaved and shuffled in a buffer of `2 * window` chunks, and the
    rows of each window of `window = ceil(shuffle_buffer / chunk_rows)`
    chunks are permuted in-graph (one `stateless_shuffle` and one gather
    per column per window). The raw path's buffer of `16 * batch_size` rows
    lets a row move about that far from its place in the interleaved
    files; here a window holds as many rows (the default `shuffle_buffer`
    is the same) drawn from chunks of many shards, every row placed
    uniformly within it, and the chunk order itself is shuffled beyond the
    window; what stays together is a chunk's rows, which share a window
    (a batch of 4096 from a 65536-row window takes ~64 rows of each of its
    64 chunks, as the raw buffer takes runs of rows adjacent in a file).

    Args:
        files: list of str. Encoded shards (`EncodedManifest.files`).
        columns: list of dict. `EncodedManifest.columns`.
        batch_size: int.
        chunk_rows: int. Rows per record.
        training: bool. Shuffle shards, chunks and rows.
        shuffle_buffer: int or None. Rows of a shuffle window; defaults to
            `16 * batch_size` (the raw path's record buffer).
        num_epochs: int or None. Passes over the data; None repeats forever.
        include_extra: bool. Also return the extra columns in `labels`.
        cache: bool. Cache decoded windows in memory after the first pass
            (then only the window order and the rows within each window
            change from one pass to the next).
        seed: int, int64 tensor or None. Shuffle seed.
        drop_remainder: bool. Drop the last partial batch.

    Returns:
        A dataset of `(features, labels)` as `make_dataset` returns.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
    if not files:
        raise ValueError("No encoded shards to read.")
    kept = [c for c in columns if include_extra or c["role"] != EXTRA]
    spec = {c["name"]: tf.io.FixedLenFeature([], tf.string) for c in kept}
    rows = (shuffle_buffer or 16 * batch_size) if training else batch_size
    window = max(1, math.ceil(rows / chunk_rows))

    def decode(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        features, labels = {}, {}
        for c in kept:
            dtype = tf.int32 if c["dtype"] == INT32 else tf.float32
            # One string per window: the chunks' bytes back to back.
            flat = tf.io.decode_raw(tf.strings.reduce_join(parsed[c["name"]]),
                                    dtype, little_endian=True)
            value = tf.reshape(flat, [-1, *c["shape"]])
            (features if c["role"] == FEATURE else labels)[c["name"]] = value
        return features, labels

    ds = tf.data.Dataset.from_tensor_slices(list(files))
    if training and not cache:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), _TRAINING_CYCLE) if training else len(files),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    if training and not cache:
        ds = ds.shuffle(_CHUNK_BUFFER_WINDOWS * window, seed=seed,
                        reshuffle_each_iteration=True)
    ds = ds.batch(window).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
        if training:
            ds = ds.shuffle(64, seed=seed, reshuffle_each_iteration=True)
    if training:
        ds = ds.enumerate().map(_permuter(seed),
                                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    return ds.prefetch(tf.data.AUTOTUNE)


def _permuter(seed):
    """`(index, (features, labels)) -> (features, labels)` with the rows of
    the window in a random order, keyed by the seed and the window index."""

    def permute(index, batch):
        features, labels = batch
        n = tf.shape(next(iter(labels.values())))[0]
        if seed is None:
            order = tf.random.shuffle(tf.range(n))
        else:
            key = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(tf.range(n), key)
        return tuple(
            {k: tf.gather(v, order) for k, v in part.items()}
            for part in (features, labels)
        )

    return permute
