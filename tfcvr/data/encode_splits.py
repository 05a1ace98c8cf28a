"""Materialised training inputs: a split's raw TFRecords, encoded once.

`tfcvr train` would otherwise parse raw values and look them up in the
vocabularies on every batch of every epoch. `encode_split` runs the raw
pipeline once (`make_dataset`, i.e. `tf.io.parse_example` and the same
`FeatureTransform` the SavedModel serves with, never a second
implementation) and writes its output, chunk by chunk, to
`DIR/encoded/<split>/part-*.tfrecord`: one uncompressed record per
`chunk_rows` rows holding every model input, label and extra column as raw
little-endian bytes, plus `manifest.json` (`EncodedManifest`). Reading
them back is `make_encoded_dataset`; `DatasetDir.dataset` picks them when
they are valid for the directory.

Chunks are dealt round-robin to the shards in the raw path's
deterministic order, so reading the shards back one chunk at a time
reproduces that order row for row. A split is written into a temporary
directory and renamed into place, so an interrupted encoding leaves the
previous state (nothing, or the old valid shards), never half a split.
"""

import os
import shutil
import time
import uuid

import numpy as np
import tensorflow as tf

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.data.encoded_manifest import EncodedManifest
from tfcvr.data.encoded_manifest import encoded_columns
from tfcvr.data.encoded_manifest import raw_file_list
from tfcvr.data.encoded_manifest import split_dir
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint

DEFAULT_CHUNK_ROWS = 1024
# Encoded shards per split at most (each is read by one interleave slot).
MAX_SHARDS = 64
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


def encode_split(data, split, chunk_rows=DEFAULT_CHUNK_ROWS, num_shards=None):
    """Encodes one split of a dataset directory; returns its manifest.

    Args:
        data: `DatasetDir` or str (its path).
        split: str. A split with raw TFRecords.
        chunk_rows: int. Rows per encoded record.
        num_shards: int or None. Encoded shards; defaults to the number of
            raw shards (at most 64 and at most the number of chunks), so
            sharding files over workers splits the work as before.

    Raises:
        ValueError: the split has no raw TFRecords, or bad arguments.
        RuntimeError: the rows encoded differ from the records read.
    """
    data = data if isinstance(data, DatasetDir) else DatasetDir(data)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer. Received: chunk_rows={chunk_rows!r}")
    if num_shards is not None and (not isinstance(num_shards, int) or num_shards < 1):
        raise ValueError(f"num_shards must be a positive integer. Received: num_shards={num_shards!r}")
    start = time.perf_counter()
    raw_files = data.files(split)
    fingerprint = vocab_fingerprint.directory_fingerprint(data.path)
    columns = encoded_columns(data.schema)
    records_in = _count_records(raw_files)
    chunks = max(1, -(-records_in // chunk_rows))
    shards = num_shards or max(1, min(len(raw_files), MAX_SHARDS, chunks))
    root = os.path.join(data.path, keys.ENCODED_DIR)
    os.makedirs(root, exist_ok=True)
    _remove_leftovers(root, split)
    tmp = os.path.join(root, f"{_TMP_PREFIX}{split}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        names = [f"part-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
        counts = [[0, 0] for _ in range(shards)]
        writers = [tf.io.TFRecordWriter(os.path.join(tmp, n)) for n in names]
        try:
            batches = data.dataset(split, chunk_rows, training=False,
                                   include_extra=True, input_format="raw")
            for k, (features, labels) in enumerate(batches):
                values = {**features, **labels}
                n = int(tf.shape(labels[data.schema.labels[0]])[0])
                writers[k % shards].write(_chunk_record(values, columns))
                counts[k % shards][0] += n
                counts[k % shards][1] += 1
        finally:
            for writer in writers:
                writer.close()
        rows = sum(c[0] for c in counts)
        if rows != records_in:
            raise RuntimeError(
                f"Encoding {split} of {data.path}: {records_in} records read "
                f"but {rows} rows encoded."
            )
        manifest = EncodedManifest(
            split=split,
            rows=rows,
            chunk_rows=chunk_rows,
            columns=columns,
            shards=[
                {"file": n, "rows": r, "chunks": c,
                 "bytes": os.path.getsize(os.path.join(tmp, n))}
                for n, (r, c) in zip(names, counts)
            ],
            raw_files=raw_file_list(data.path, raw_files),
            vocab_fingerprint=fingerprint,
            seconds=round(time.perf_counter() - start, 3),
        )
        manifest.save(tmp)
        _replace(tmp, split_dir(data.path, split), root, split)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def encode_splits(path, splits=(keys.TRAIN_SPLIT, keys.EVAL_SPLIT),
                  chunk_rows=DEFAULT_CHUNK_ROWS, required=False):
    """Encodes the named splits of a dataset directory.

    Returns `{split: manifest}` for the splits encoded; a split without raw
    TFRecords is skipped (there is nothing to read either way) unless
    `required`, when it is a one-line ValueError.

    Args:
        path: str. The dataset directory.
        splits: tuple of str.
        chunk_rows: int. Rows per encoded record.
        required: bool. Every split must have raw TFRecords.
    """
    data = DatasetDir(path)
    manifests = {}
    for split in splits:
        if not data.has_split(split):
            if required:
                raise ValueError(f"No TFRecords for split {split!r} in {path}")
            continue
        manifests[split] = encode_split(data, split, chunk_rows=chunk_rows)
    return manifests


def describe(path, manifests, splits):
    """One line about an `encode_splits` result: rows and seconds per split,
    and the splits it skipped."""
    parts = [f"{split} {m.rows:,} rows in {m.seconds:.1f}s"
             for split, m in manifests.items()]
    skipped = [s for s in splits if s not in manifests]
    if skipped:
        parts.append(f"{', '.join(skipped)} skipped (no TFRecords)")
    where = os.path.join(path, keys.ENCODED_DIR)
    return f"encoded for training: {'; '.join(parts) or 'nothing'} -> {where}"


def _count_records(files):
    # Batched: `reduce` costs ~100 µs per element it folds.
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    return int(ds.reduce(np.int64(0), lambda count, batch: count + tf.size(
        batch, out_type=tf.int64)))


def _chunk_record(values, columns):
    feature = {}
    for c in columns:
        array = np.ascontiguousarray(values[c["name"]].numpy(), dtype="<" + (
            "i4" if c["dtype"] == "int32" else "f4"))
        feature[c["name"]] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[array.tobytes()])
        )
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def _remove_leftovers(root, split):
    """Temporary directories of an earlier interrupted encoding."""
    for name in os.listdir(root):
        if name.startswith((f"{_TMP_PREFIX}{split}-", f"{_OLD_PREFIX}{split}-")):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _replace(tmp, final, root, split):
    """Moves `tmp` to `final`; an existing `final` is renamed away first,
    so a reader sees the old split or the new one."""
    old = None
    if os.path.exists(final):
        old = os.path.join(root, f"{_OLD_PREFIX}{split}-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

