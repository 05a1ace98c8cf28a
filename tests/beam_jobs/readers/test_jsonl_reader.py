import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import content_key
from beam_jobs.readers.jsonl_reader import JsonlReader
from beam_jobs.readers.row_converter import KEY_FIELD

SPEC = {
    "columns": {
        "user_id": {"kind": "categorical_int"},
        "hist": {"kind": "multi_categorical", "value_dtype": "string", "max_len": 3},
        "price": {"kind": "numeric"},
    },
    "labels": {"click": "clk", "conversion": "buy"},
}


def test_rows_lists_missing_keys_and_dead_letters(tmp_path, make_pipeline):
    good = [
        {"user_id": 1, "hist": ["a", "b"], "price": 1.5, "clk": 1, "buy": 1},
        {"user_id": 2, "clk": 0, "buy": 0},  # absent keys are missing values
    ]
    lines = [json.dumps(r) for r in good]
    bad = [
        "{not json",
        "[1, 2]",
        json.dumps({"user_id": 3, "clk": 1}),  # missing label
        json.dumps({"user_id": "three", "clk": 1, "buy": 0}),
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines + bad) + "\n")
    with make_pipeline() as p:
        out = p | JsonlReader(str(path), spec=SPEC)
        assert_that(
            out["rows"],
            equal_to([
                {"click": 1, "conversion": 1, "user_id": 1, "hist": ["a", "b"],
                 "price": 1.5, KEY_FIELD: content_key(lines[0])},
                {"click": 0, "conversion": 0, "user_id": 2, "hist": [],
                 "price": None, KEY_FIELD: content_key(lines[1])},
            ]),
        )
        assert_that(
            out["rejected"] | beam.Map(lambda r: r["reason"]),
            equal_to([dl.BAD_JSON, dl.BAD_JSON, dl.MISSING_LABEL,
                      dl.BAD_CATEGORICAL]),
            label="rejected",
        )


def test_a_column_absent_from_every_sampled_line_is_an_error(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps({"user_id": 1, "hist": [], "clk": 0, "buy": 0}))
    with pytest.raises(ValueError, match=r"does not have: \['price'\]"):
        JsonlReader(str(path), spec=SPEC)
