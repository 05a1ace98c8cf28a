import numpy as np
import pytest
import tensorflow as tf

from beam_jobs import example_encoder as ee
from beam_jobs.example_encoder import ExampleEncoder
from beam_jobs.example_logs import impression_spec
from tfcvr.features.input_spec import InputSpec

SCHEMA = InputSpec.from_dict(impression_spec()).to_schema()

FULL = {
    "user_id": 2**40, "item_id": -7, "city": "São Paulo",
    "hist": [1, 300, 70000, 2**63 - 1], "tags": ["a", "b"],
    "tags__weight": [0.5, 1.25], "price": 12.5, "age": -3.0,
    "click": 1, "conversion": 0, "row_id": 17.0, "true_ctr": 0.25,
    "true_cvr": 0.75, "conversion_if_clicked": 1.0,
}
EMPTY = {
    "user_id": None, "item_id": None, "city": None, "hist": [], "tags": [],
    "tags__weight": [], "price": None, "age": None, "click": 0,
    "conversion": 0, "row_id": None, "true_ctr": None, "true_cvr": None,
    "conversion_if_clicked": None,
}


def _reference(row):
    """The same Example built with TF's own proto classes."""
    feature = {}

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def strings(v):
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[s.encode() for s in v])
        )

    # Missing scalars are absent keys; lists are always present.
    for name, make in (("user_id", ints), ("item_id", ints), ("city", strings)):
        if row[name] is not None:
            feature[name] = make([row[name]])
    feature["hist"] = ints(row["hist"])
    feature["tags"] = strings(row["tags"])
    feature["tags__weight"] = floats(row["tags__weight"])
    for name in ("price", "age", "row_id", "true_ctr", "true_cvr",
                 "conversion_if_clicked"):
        if row[name] is not None:
            feature[name] = floats([row[name]])
    feature["click"] = ints([row["click"]])
    feature["conversion"] = ints([row["conversion"]])
    return tf.train.Example(features=tf.train.Features(feature=feature))


@pytest.mark.parametrize("row", [FULL, EMPTY], ids=["full", "empty"])
def test_bytes_decode_to_the_reference_example(row):
    encoded = ExampleEncoder(SCHEMA).encode(row)
    assert tf.train.Example.FromString(encoded) == _reference(row)


def test_parse_example_reads_values_and_missing():
    encoder = ExampleEncoder(SCHEMA)
    serialized = [encoder.encode(FULL), encoder.encode(EMPTY)]
    spec = {
        "user_id": tf.io.FixedLenFeature([], tf.int64, -1),
        "city": tf.io.FixedLenFeature([], tf.string, ""),
        "hist": tf.io.RaggedFeature(tf.int64),
        "tags__weight": tf.io.RaggedFeature(tf.float32),
        "price": tf.io.FixedLenFeature([], tf.float32, np.nan),
        "click": tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = tf.io.parse_example(serialized, spec)
    assert parsed["user_id"].numpy().tolist() == [2**40, -1]
    assert parsed["city"].numpy().tolist() == ["São Paulo".encode(), b""]
    assert parsed["hist"].to_list() == [[1, 300, 70000, 2**63 - 1], []]
    assert parsed["tags__weight"].to_list() == [[0.5, 1.25], []]
    assert parsed["price"].numpy()[0] == 12.5 and np.isnan(parsed["price"].numpy()[1])
    assert parsed["click"].numpy().tolist() == [1, 0]


def test_encoding_is_deterministic():
    a = ExampleEncoder(SCHEMA).encode(dict(FULL))
    b = ExampleEncoder(SCHEMA).encode(dict(reversed(list(FULL.items()))))
    assert a == b


def test_memoised_encodings_match_the_reference():
    # Values and lists seen before are served from caches; a cache that
    # fills up is emptied. Neither may change a byte, and -0.0 (equal to
    # 0.0 as a dict key) must keep its sign.
    rng = np.random.default_rng(0)
    encoder = ExampleEncoder(SCHEMA)
    rows = []
    for i in range(400):
        hist = [int(v) for v in rng.integers(-(2**40), 2**40, rng.integers(0, 4))]
        weights = [float(w) for w in rng.choice([0.0, -0.0, 0.5, 2.0], 2)]
        rows.append({**FULL, "user_id": int(rng.integers(0, 2**35)), "hist": hist,
                     "tags__weight": weights})
    rows += rows[:50]  # repeats hit the caches
    old_sizes = ee._CACHE_SIZE, ee._LIST_CACHE_SIZE
    try:
        ee._CACHE_SIZE, ee._LIST_CACHE_SIZE = 0x4000 + 16, 8
        for row in rows:
            assert tf.train.Example.FromString(encoder.encode(row)) == _reference(row)
            assert encoder.encode(row) == ExampleEncoder(SCHEMA).encode(row)
    finally:
        ee._CACHE_SIZE, ee._LIST_CACHE_SIZE = old_sizes
    assert len(ee._VARINTS) <= old_sizes[0]
    negative_zero = encoder.encode({**FULL, "tags__weight": [-0.0, 1.0]})
    positive_zero = encoder.encode({**FULL, "tags__weight": [0.0, 1.0]})
    assert negative_zero != positive_zero
    parsed = tf.io.parse_example(
        [negative_zero], {"tags__weight": tf.io.RaggedFeature(tf.float32)})
    assert np.signbit(parsed["tags__weight"].to_list()[0][0])
