import collections

import numpy as np
import pytest

from tfcvr.data import DatasetDir
from tfcvr.data import EncodedManifest
from tfcvr.features import keys



def _columns(ds):
    """`{name: concatenated numpy column}` of a `(features, labels)` dataset,
    and the batch sizes."""
    columns, sizes = collections.defaultdict(list), []
    for features, labels in ds:
        for name, value in {**features, **labels}.items():
            columns[name].append(value.numpy())
        sizes.append(len(labels[keys.CLICK]))
    return {k: np.concatenate(v) for k, v in columns.items()}, sizes


def _dataset(path, input_format, split, batch_size, **kwargs):
    return DatasetDir(path, input_format=input_format).dataset(
        split, batch_size, include_extra=True, **kwargs)


@pytest.mark.parametrize("split", [keys.TRAIN_SPLIT, keys.EVAL_SPLIT])
def test_evaluation_order_and_values_equal_the_raw_path(encoded_dir, split):
    # 50 is no multiple of the 64-row chunks: batches straddle chunks.
    raw, raw_sizes = _columns(_dataset(encoded_dir, "raw", split, 50, training=False))
    enc, enc_sizes = _columns(_dataset(encoded_dir, "encoded", split, 50, training=False))
    assert enc_sizes == raw_sizes
    assert sorted(enc) == sorted(raw)
    rows = 600 if split == keys.TRAIN_SPLIT else 150
    assert len(raw[keys.ROW_ID]) == rows
    for name, expected in raw.items():
        assert enc[name].dtype == expected.dtype and enc[name].shape == expected.shape, name
        if expected.dtype == np.int32 or name in (keys.CLICK, keys.CONVERSION, keys.ROW_ID):
            np.testing.assert_array_equal(enc[name], expected, err_msg=name)
        else:
            # Float transforms differ by an ulp between batch layouts.
            np.testing.assert_allclose(enc[name], expected, rtol=1e-6, atol=1e-6,
                                       err_msg=name)
    # The fixture has every kind of input, and they carry information.
    assert enc["history"].shape == (rows, 4) and enc["history__weight"].shape == (rows, 4)
    assert (enc["history"] > 0).any() and (enc["tags"] > 0).any()
    assert len(np.unique(enc["device"])) > 1 and np.isfinite(enc["price"]).all()


def test_labels_without_extra_columns_and_remainders(encoded_dir):
    data = DatasetDir(encoded_dir, input_format="encoded")
    ds = data.dataset(keys.EVAL_SPLIT, 40, training=False)
    _, labels = next(iter(ds))
    assert sorted(labels) == [keys.CLICK, keys.CONVERSION]
    _, sizes = _columns(ds)
    assert sizes == [40, 40, 40, 30]
    _, sizes = _columns(data.dataset(keys.EVAL_SPLIT, 40, training=False,
                                     drop_remainder=True))
    assert sizes == [40, 40, 40]


def test_training_order_is_a_shuffled_pass_over_every_row(encoded_dir):
    ds = _dataset(encoded_dir, "encoded", keys.TRAIN_SPLIT, 96, seed=3,
                  shuffle_buffer=128, num_epochs=2)
    columns, sizes = _columns(ds)
    ids = columns[keys.ROW_ID]
    assert len(ids) == 1200 and set(sizes) <= {96, 1200 % 96 or 96, 600 % 96}
    first, second = ids[:600], ids[600:]
    # Each epoch holds every row once, in an order of its own.
    assert sorted(first) == sorted(second) == list(range(600))
    assert not np.array_equal(first, second)
    in_order, _ = _columns(_dataset(encoded_dir, "encoded", keys.TRAIN_SPLIT, 96,
                                    training=False))
    assert not np.array_equal(first, in_order[keys.ROW_ID])
    # Rows are permuted within windows, not only chunks reordered: rows
    # next to each other in the raw order are rarely next to each other.
    position = {row: i for i, row in enumerate(in_order[keys.ROW_ID])}
    neighbours = np.mean([abs(position[a] - position[b]) == 1
                          for a, b in zip(first[:-1], first[1:])])
    assert neighbours < 0.2, neighbours
    # Features stay with their row.
    by_id = dict(zip(in_order[keys.ROW_ID], in_order["user"]))
    assert all(by_id[r] == u for r, u in zip(first, columns["user"][:600]))


def test_cached_training_keeps_every_row(encoded_dir):
    ds = _dataset(encoded_dir, "encoded", keys.TRAIN_SPLIT, 100, cache=True,
                  num_epochs=2, seed=0)
    ids = _columns(ds)[0][keys.ROW_ID]
    assert sorted(ids[:600]) == sorted(ids[600:]) == list(range(600))


def test_auto_reads_the_encoded_shards_and_raw_ones_without_them(encoded_dir, tmp_path):
    data = DatasetDir(encoded_dir)
    assert data.format_of(keys.TRAIN_SPLIT) == "encoded"
    manifest = EncodedManifest.load(encoded_dir, keys.TRAIN_SPLIT)
    assert data.input_files(keys.TRAIN_SPLIT) == manifest.files(encoded_dir)
    assert data.format_of(keys.TRAIN_SPLIT, "raw") == "raw"
    assert data.input_files(keys.TRAIN_SPLIT, "raw") == data.files(keys.TRAIN_SPLIT)


def test_unknown_input_format_is_refused(encoded_dir):
    with pytest.raises(ValueError, match="input_format must be one of"):
        DatasetDir(encoded_dir, input_format="parquet")
