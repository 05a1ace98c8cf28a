import tensorflow as tf

from tfcvr.features import keys


def check_training_split(data):
    """The rows of the training split of `data` (a `DatasetDir`) from its
    `summary.json`, or None when no summary counts them; a split with no
    rows is a one-line ValueError naming the split and the directory (with
    no summary, one record is read to tell)."""
    split = keys.TRAIN_SPLIT
    rows = (data.summary().get("rows_written") or {}).get(split)
    if rows == 0:
        raise ValueError(
            f"The {split!r} split of {data.path} has no rows ({keys.SUMMARY_FILE}:"
            f" 0 rows written); there is nothing to train on."
        )
    files = data.files(split)
    if rows is None:
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        if not any(True for _ in records.take(1)):
            raise ValueError(
                f"The {split!r} split of {data.path} has no rows (its "
                f"{len(files)} TFRecord file(s) are empty); there is nothing "
                f"to train on."
            )
    return rows
