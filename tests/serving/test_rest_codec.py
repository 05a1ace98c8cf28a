import json
import math

import numpy as np
import pytest

from tfcvr.serving import TFServingError
from tfcvr.serving.rest_codec import decode_predict_request
from tfcvr.serving.rest_codec import encode_predict_response
from tfcvr.serving.rest_codec import to_array

SPECS = {"item": ("DT_INT64", 1), "city": ("DT_STRING", 1),
         "price": ("DT_FLOAT", 1), "tags": ("DT_STRING", 2)}


def test_row_and_columnar_give_the_same_arrays():
    rows, row_format = decode_predict_request(
        {"instances": [{"item": 1, "city": "a", "price": 1.5, "tags": ["x"]},
                       {"item": 2, "city": "b", "price": 2, "tags": ["y", "z"]}]},
        SPECS,
    )
    columns, columnar = decode_predict_request(
        {"inputs": {"item": [1, 2], "city": ["a", "b"], "price": [1.5, 2],
                    "tags": [["x"], ["y", "z"]]}},
        SPECS,
    )
    assert row_format and not columnar
    for name in SPECS:
        assert rows[name].tolist() == columns[name].tolist()
    assert rows["item"].dtype == np.int64 and rows["price"].dtype == np.float32
    assert rows["city"].tolist() == [b"a", b"b"]
    assert rows["tags"].tolist() == [[b"x", b""], [b"y", b"z"]]


def test_strict_mode_refuses_absent_inputs_and_ragged_lists():
    with pytest.raises(TFServingError, match="Missing input"):
        decode_predict_request({"instances": [{"item": 1}]}, SPECS, strict=True)
    with pytest.raises(TFServingError, match="different lengths"):
        decode_predict_request(
            {"inputs": {"item": [1, 2], "city": ["a", "b"], "price": [1, 2],
                        "tags": [["x"], ["y", "z"]]}}, SPECS, strict=True)


def test_b64_strings():
    arrays, _ = decode_predict_request(
        {"instances": [{"b64": "AP8="}]}, {"examples": ("DT_STRING", 1)})
    assert arrays["examples"].tolist() == [b"\x00\xff"]


@pytest.mark.parametrize("values,dtype,rank,words", [
    ([True], "DT_INT64", 1, "integers"),
    ([1.0], "DT_INT64", 1, "integers"),
    ([2**63], "DT_INT64", 1, "range"),
    ([2**31], "DT_INT32", 1, "range"),
    (["1"], "DT_FLOAT", 1, "numbers"),
    ([1], "DT_STRING", 1, "strings"),
    ([[1]], "DT_INT64", 1, "one value"),
    ([1], "DT_INT64", 2, "a list per row"),
    ([[]], "DT_INT64", 2, "empty"),
    ("abc", "DT_INT64", 1, "list of rows"),
])
def test_to_array_errors(values, dtype, rank, words):
    with pytest.raises(TFServingError, match=words) as info:
        to_array(values, dtype, rank, "x")
    assert info.value.status == 400


def test_encode_formats():
    outputs = {"ctr": np.array([0.5, 0.25], np.float32),
               "cvr": np.array([0.1, float("nan")], np.float32)}
    rows = encode_predict_response(outputs, row_format=True)
    assert rows["predictions"][0] == {"ctr": 0.5, "cvr": pytest.approx(0.1)}
    assert math.isnan(rows["predictions"][1]["cvr"])
    columns = encode_predict_response(outputs, row_format=False)
    assert columns["outputs"]["ctr"] == [0.5, 0.25]
    single = encode_predict_response({"y": np.array([1.0])}, row_format=True)
    assert single == {"predictions": [1.0]}
    assert encode_predict_response({"y": np.array([1.0])}, False) == {
        "outputs": [1.0]}


# JSON numbers as a client sends them, and as a CSV or JSONL log holds them.
NUMERIC_LITERALS = ["Infinity", "-Infinity", "1e308", "-1e39", "1" + "0" * 40,
                    "1" + "0" * 400, "NaN", "3.4028234663852886e38",
                    "-3.4e38", "0", "12.5"]


@pytest.mark.parametrize("literal", NUMERIC_LITERALS)
def test_float_inputs_follow_the_preprocessing_rule(literal):
    # One rule: what the Beam job sends to the dead letters as bad_numeric
    # gets 400 here, what it reads as missing is missing here too.
    from beam_jobs.readers import dead_letter as dl
    from beam_jobs.readers.row_converter import to_float

    value = json.loads(literal)
    beam = []
    for raw in (literal, value):  # a CSV field, a JSONL value
        try:
            beam.append(to_float(raw, "price"))
        except dl.DeadLetter as e:
            assert e.reason == dl.BAD_NUMERIC
            beam.append("rejected")
    assert beam[0] == beam[1]
    body = json.loads('{"instances": [{"item": 1, "city": "a", "tags": ["x"], '
                      '"price": ' + literal + '}]}')
    if beam[0] == "rejected":
        with pytest.raises(TFServingError) as info:
            decode_predict_request(body, SPECS)
        assert info.value.status == 400
        assert info.value.message.startswith(
            "Input `price` needs a finite float32 number; got ")
    else:
        arrays, _ = decode_predict_request(body, SPECS)
        served = arrays["price"][0]
        if beam[0] is None:
            assert math.isnan(served)
        else:
            assert served == np.float32(beam[0]) and np.isfinite(served)
