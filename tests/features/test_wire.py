import math

import numpy as np
import pytest

from tfcvr.features import wire

SPECS = {
    "item": ("DT_INT64", 1),
    "city": ("DT_STRING", 1),
    "price": ("DT_FLOAT", 1),
    "history": ("DT_INT64", 2),
    "history__weight": ("DT_FLOAT", 2),
    "tags": ("DT_STRING", 2),
}


def test_missing_values():
    assert wire.missing_value("DT_INT64", 1) == -(2**63)
    assert wire.missing_value("DT_INT64", 2) == -1
    assert wire.missing_value("DT_STRING", 1) == ""
    assert wire.missing_value("DT_STRING", 2) == ""
    assert math.isnan(wire.missing_value("DT_FLOAT", 1))
    with pytest.raises(ValueError):
        wire.missing_value("DT_BOOL", 1)


def test_complete_instances_fills_and_pads():
    rows = wire.complete_instances(
        [{"item": 1, "history": [5, 6, 7], "tags": "solo"},
         {"item": 2, "history": [None], "city": None, "extra": 9}],
        SPECS,
    )
    assert rows[0]["history"] == [5, 6, 7]
    assert rows[1]["history"] == [-1, -1, -1]
    assert rows[0]["tags"] == ["solo"]  # a scalar for a list input
    assert rows[1]["tags"] == [""]
    assert rows[0]["city"] == rows[1]["city"] == ""
    assert rows[1]["item"] == 2 and rows[1]["extra"] == 9
    assert math.isnan(rows[0]["price"])
    assert len(rows[0]["history__weight"]) == 1
    assert math.isnan(rows[0]["history__weight"][0])


def test_complete_columns_fills_and_pads():
    columns = wire.complete_columns(
        {"item": [1, 2], "history": [[4], []]}, SPECS, batch_size=2
    )
    assert columns["history"] == [[4], [-1]]
    assert columns["city"] == ["", ""]
    assert columns["item"] == [1, 2]
    assert wire.batch_size_of({"item": [1, 2, 3]}) == 3


def test_input_specs_from_metadata():
    metadata = {"metadata": {"signature_def": {"signature_def": {
        "serving_default": {"inputs": {
            "a": {"dtype": "DT_INT64", "tensor_shape": {"dim": [{"size": "-1"}]}},
            "b": {"dtype": "DT_STRING", "tensor_shape": {
                "dim": [{"size": "-1"}, {"size": "-1"}]}},
        }}}}}}
    assert wire.input_specs_from_metadata(metadata) == {
        "a": ("DT_INT64", 1), "b": ("DT_STRING", 2)}
    with pytest.raises(ValueError, match="no signature"):
        wire.input_specs_from_metadata(metadata, "other")
    with pytest.raises(ValueError, match="signature_def"):
        wire.input_specs_from_metadata({})


def test_int_missing_is_the_int64_minimum_tf_data_parses_to():
    import numpy as np

    assert wire.INT_MISSING == np.iinfo(np.int64).min


def test_numeric_value_keeps_finite_float32_numbers():
    assert wire.numeric_value(12.5) == 12.5
    assert wire.numeric_value(-3) == -3.0
    assert wire.numeric_value(wire.FLOAT32_MAX) == wire.FLOAT32_MAX
    assert wire.numeric_value(-wire.FLOAT32_MAX) == -wire.FLOAT32_MAX
    assert wire.numeric_value(float("nan")) is None
    assert wire.FLOAT32_MAX == float(np.finfo(np.float32).max)


@pytest.mark.parametrize("number,shown", [
    (float("inf"), "got inf"),
    (float("-inf"), "got -inf"),
    (1e308, "got 1e+308"),
    (-1e39, "got -1e+39"),
    (10**40, "got 1e+40"),
    (10**400, "got an integer of 1329 bits"),
    # Just past the largest float32: float32 rounds it to infinity.
    (3.4028236e38, "got 3.4028236e+38"),
])
def test_numeric_value_refuses_what_float32_cannot_hold(number, shown):
    with pytest.raises(ValueError) as info:
        wire.numeric_value(number)
    assert str(info.value) == f"needs a finite float32 number; {shown}"
