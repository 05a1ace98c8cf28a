import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.parquet_reader import ParquetReader
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD

SPEC = {
    "columns": {
        "user_id": {"kind": "categorical_int"},
        "hist": {"kind": "multi_categorical", "max_len": 2},
        "city": {"kind": "categorical_string"},
        "price": {"kind": "numeric"},
    },
    "labels": {"click": "click", "conversion": "conversion"},
    "timestamp": "ts",
    "row_key": "row_id",
}


def _frame():
    return pd.DataFrame({
        "row_id": [1, 2, 3, 4],
        "user_id": [10.0, np.nan, 12.0, 13.0],  # pandas: nullable ints as float
        "hist": [[1, 2, 3], [], [4], [5]],
        "city": ["oslo", None, "lima", "pune"],
        "price": [1.5, np.nan, 2.0, 3.0],
        "ts": pd.to_datetime(
            ["2023-11-14 22:13:20", "2023-11-14 22:13:21",
             "2023-11-14 22:13:22", "2023-11-14 22:13:23"]
        ),
        "click": [1, 0, 2, 0],
        "conversion": [0, 0, 0, 1],
        "unused": ["a", "b", "c", "d"],
    })


def test_arrow_values_become_rows(tmp_path, make_pipeline):
    _frame().to_parquet(tmp_path / "log.parquet")
    with make_pipeline() as p:
        out = p | ParquetReader(str(tmp_path / "log.parquet"), spec=SPEC)
        assert_that(
            out["rows"],
            equal_to([
                {"click": 1, "conversion": 0, "user_id": 10, "hist": [1, 2],
                 "city": "oslo", "price": 1.5, TIMESTAMP_FIELD: 1700000000.0,
                 KEY_FIELD: "1"},
                {"click": 0, "conversion": 0, "user_id": None, "hist": [],
                 "city": None, "price": None, TIMESTAMP_FIELD: 1700000001.0,
                 KEY_FIELD: "2"},
            ]),
        )
        assert_that(
            out["rejected"] | beam.Map(lambda r: (r["reason"], r["source"])),
            equal_to([(dl.BAD_LABEL, "log.parquet"),
                      (dl.CLICK0_CONVERSION1, "log.parquet")]),
            label="rejected",
        )


def test_missing_column_and_unreadable_file(tmp_path):
    _frame().drop(columns=["city"]).to_parquet(tmp_path / "log.parquet")
    with pytest.raises(ValueError, match=r"does not have: \['city'\]"):
        ParquetReader(str(tmp_path / "log.parquet"), spec=SPEC)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        ParquetReader(str(tmp_path / "bad.parquet"), spec=SPEC)
