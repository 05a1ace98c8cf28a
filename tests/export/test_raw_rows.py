import math

import numpy as np

from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.export.raw_rows import rows_from_examples
from tfcvr.export.raw_rows import serving_input_specs
from tfcvr.testing.tiny_model import tiny_log_schema
from tfcvr.testing.tiny_model import tiny_raw_rows
from tfcvr.features import wire


def _schema():
    return tiny_log_schema(tiny_raw_rows(64, seed=0))


def test_serving_input_specs():
    specs = serving_input_specs(_schema())
    assert specs["user"] == ("DT_INT64", 1)
    assert specs["city"] == ("DT_STRING", 1)
    assert specs["history"] == ("DT_INT64", 2)
    assert specs["history__weight"] == ("DT_FLOAT", 2)
    assert specs["tags"] == ("DT_STRING", 2)
    assert specs["price"] == ("DT_FLOAT", 1)


def test_columns_fill_markers_and_pad():
    schema = _schema()
    rows = [
        {"user": 3, "item": 1001, "history": [1001, 1002, 1003],
         "tags": ["news"], "city": "paris", "price": 2.5},
        {"item": 1002, "history": [], "tags": None, "age": None},
    ]
    columns = columns_from_rows(rows, schema)
    assert columns["user"].tolist() == [3, wire.INT_MISSING]
    assert columns["user"].dtype == np.int64
    assert columns["city"].tolist() == [b"paris", b""]
    assert columns["history"].tolist() == [[1001, 1002, 1003], [-1, -1, -1]]
    assert columns["tags"].tolist() == [[b"news"], [b""]]
    # Absent weights: NaN (weight 1.0 in the model, aligned to the ids).
    weights = columns["history__weight"]
    assert weights.shape == (2, 1) and np.all(np.isnan(weights))
    assert columns["price"][0] == np.float32(2.5)
    assert math.isnan(columns["price"][1]) and math.isnan(columns["age"][0])


def test_example_round_trip():
    schema = _schema()
    rows = [
        {"user": 3, "item": 1001, "history": [1001, 1002],
         "history__weight": [0.5, 2.0], "tags": ["news", "food"],
         "city": "paris", "device": "ios", "price": 2.5, "age": 30.0},
        {"item": 1002},
    ]
    serialized = [example_from_row(r, schema).SerializeToString() for r in rows]
    back = rows_from_examples(serialized, schema)
    assert back[0] == rows[0]
    assert back[1]["item"] == 1002
    assert back[1]["user"] is None and back[1]["city"] is None
    assert back[1]["price"] is None
    assert back[1]["history"] == [] and back[1]["history__weight"] == []
