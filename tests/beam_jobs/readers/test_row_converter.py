import datetime

import pytest

from beam_jobs.example_logs import impression_spec
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import content_key
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.readers.row_converter import RowConverter
from tfcvr.features import keys
from tfcvr.features.input_spec import InputSpec


def _record(**changes):
    record = {
        "row_id": "7",
        "user_id": "3",
        "item_id": "11",
        "city": "oslo",
        "hist": "4|5|6",
        "tags": "t1:0.5;t2:2",
        "price": "12.5",
        "age": "",
        "timestamp": "1700000000",
        "click": "1",
        "conversion": "0",
        "true_ctr": "0.25",
        "true_cvr": "0.5",
        "conversion_if_clicked": "0",
    }
    record.update(changes)
    return record


@pytest.fixture
def converter():
    return RowConverter(InputSpec.from_dict(impression_spec()))


def test_converts_text_fields_to_contract_types(converter):
    row = converter.convert(_record())
    assert row == {
        keys.CLICK: 1,
        keys.CONVERSION: 0,
        "user_id": 3,
        "item_id": 11,
        "city": "oslo",
        "hist": [4, 5, 6],
        "tags": ["t1", "t2"],
        "tags__weight": [0.5, 2.0],
        "price": 12.5,
        "age": None,
        "row_id": 7.0,
        "true_ctr": 0.25,
        "true_cvr": 0.5,
        "conversion_if_clicked": 0.0,
        TIMESTAMP_FIELD: 1700000000.0,
        KEY_FIELD: "7",
    }


def test_converts_typed_values(converter):
    row = converter.convert(
        _record(
            row_id=7.0,
            user_id=3.0,
            item_id=11,
            hist=[4, "5", 6.0],
            tags=[["t1", 0.5]],
            price=3,
            age=float("nan"),
            timestamp=datetime.datetime(2023, 11, 14, 22, 13, 20),
            click=True,
            conversion=1.0,
        )
    )
    assert row["user_id"] == 3 and row["hist"] == [4, 5, 6]
    assert row["tags"] == ["t1"] and row["tags__weight"] == [0.5]
    assert row["age"] is None and row["price"] == 3.0
    assert row[TIMESTAMP_FIELD] == 1700000000.0
    assert (row[keys.CLICK], row[keys.CONVERSION]) == (1, 1)
    assert row[KEY_FIELD] == "7"


def test_missing_feature_values_are_allowed(converter):
    row = converter.convert(
        _record(user_id="", city=" ", hist="", tags=None, price="nan")
    )
    assert row["user_id"] is None and row["city"] is None
    assert row["hist"] == [] and row["tags"] == [] and row["tags__weight"] == []
    assert row["price"] is None


def test_multi_valued_keeps_order_and_truncates(converter):
    row = converter.convert(_record(hist="9||8|7|6|5|4|3", tags="a:1;b:2;c:3;d:4"))
    assert row["hist"] == [9, 8, 7, 6, 5]  # max_len 5, empty token dropped
    assert row["tags"] == ["a", "b", "c"]


def test_iso_timestamps_are_utc_seconds(converter):
    row = converter.convert(_record(timestamp="2023-11-14T22:13:20Z"))
    assert row[TIMESTAMP_FIELD] == 1700000000.0
    row = converter.convert(_record(timestamp="2023-11-14 22:13:20"))
    assert row[TIMESTAMP_FIELD] == 1700000000.0


def test_content_hash_key_without_row_key():
    spec = InputSpec.from_dict(impression_spec(row_key=False))
    converter = RowConverter(spec)
    row = converter.convert(_record(), raw_for_key="the,raw,line")
    assert row[KEY_FIELD] == content_key("the,raw,line")


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"click": ""}, dl.MISSING_LABEL),
        ({"conversion": None}, dl.MISSING_LABEL),
        ({"click": "2"}, dl.BAD_LABEL),
        ({"click": "yes"}, dl.BAD_LABEL),
        ({"click": 0.5}, dl.BAD_LABEL),
        ({"click": "0", "conversion": "1"}, dl.CLICK0_CONVERSION1),
        ({"price": "abc"}, dl.BAD_NUMERIC),
        ({"price": "inf"}, dl.BAD_NUMERIC),
        ({"price": "1e39"}, dl.BAD_NUMERIC),
        ({"true_ctr": "high"}, dl.BAD_NUMERIC),
        ({"user_id": "1.5"}, dl.BAD_CATEGORICAL),
        ({"user_id": "u7"}, dl.BAD_CATEGORICAL),
        ({"user_id": str(2**64)}, dl.BAD_CATEGORICAL),
        ({"user_id": [1, 2]}, dl.BAD_CATEGORICAL),
        ({"city": "two\nlines"}, dl.BAD_CATEGORICAL),
        ({"hist": "1|x|3"}, dl.BAD_CATEGORICAL),
        ({"hist": {"a": 1}}, dl.BAD_CATEGORICAL),
        ({"tags": "t1"}, dl.BAD_WEIGHT),
        ({"tags": "t1:heavy"}, dl.BAD_WEIGHT),
        ({"tags": "t1:"}, dl.BAD_WEIGHT),
        ({"timestamp": ""}, dl.MISSING_TIMESTAMP),
        ({"timestamp": "yesterday"}, dl.BAD_TIMESTAMP),
        ({"row_id": ""}, dl.MISSING_ROW_KEY),
        ({"city": b"\xffparis"}, dl.NON_UTF8),
        ({"city": "x" * 2**20}, dl.VALUE_TOO_LONG),
        ({"city": b"x" * 1025}, dl.VALUE_TOO_LONG),
        # 600 characters, 1200 bytes: the cap counts UTF-8 bytes.
        ({"tags": "t1:0.5;" + "\u00e9" * 600 + ":1"}, dl.VALUE_TOO_LONG),
    ],
)
def test_every_bad_value_has_its_reason(converter, changes, reason):
    with pytest.raises(dl.DeadLetter) as info:
        converter.convert(_record(**changes))
    assert info.value.reason == reason
    assert "\n" not in info.value.detail


def test_click0_conversion1_can_be_kept():
    spec = InputSpec.from_dict(impression_spec())
    row = RowConverter(spec, drop_click0_conversion1=False).convert(
        _record(click="0", conversion="1")
    )
    assert (row[keys.CLICK], row[keys.CONVERSION]) == (0, 1)


def test_renamed_label_sources():
    config = impression_spec()
    config["labels"] = {keys.CLICK: "clk", keys.CONVERSION: "buy"}
    converter = RowConverter(InputSpec.from_dict(config))
    record = _record(clk="1", buy="1")
    del record["click"], record["conversion"]
    row = converter.convert(record)
    assert (row[keys.CLICK], row[keys.CONVERSION]) == (1, 1)
    assert "clk" not in row and "buy" not in row


def test_the_value_cap_is_inclusive_and_set_by_the_spec():
    default = RowConverter(InputSpec.from_dict(impression_spec()))
    assert default.convert(_record(city="x" * 1024))["city"] == "x" * 1024
    spec = InputSpec.from_dict({**impression_spec(), "max_value_bytes": 4})
    small = RowConverter(spec)
    assert small.convert(_record(city=" oslo "))["city"] == "oslo"
    with pytest.raises(dl.DeadLetter) as info:
        small.convert(_record(city="paris"))
    assert info.value.reason == dl.VALUE_TOO_LONG
    assert info.value.detail == (
        "column 'city' value is 5 bytes, more than max_value_bytes=4"
    )
    # Integer ids are bounded by int64, not by the cap.
    assert small.convert(_record(user_id="123456"))["user_id"] == 123456


def test_features_only_reads_features_and_the_row_key():
    spec = InputSpec.from_dict(impression_spec())
    converter = RowConverter(spec, features_only=True)
    record = _record(click="", conversion="7", true_cvr="x", timestamp="")
    row = converter.convert(record)
    assert set(row) == set(spec.columns) | {"tags__weight", KEY_FIELD}
    assert row[KEY_FIELD] == "7" and row["item_id"] == 11
    with pytest.raises(dl.DeadLetter) as info:
        converter.convert(_record(price="cheap", click=""))
    assert info.value.reason == dl.BAD_NUMERIC
