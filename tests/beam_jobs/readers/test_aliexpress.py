import collections

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from beam_jobs.readers.aliexpress import ReadAliExpressCsv
from beam_jobs.readers.input_files import content_key
from tfcvr.features import keys


def header(num_categorical=2, num_numerical=2):
    names = ["search_id"]
    names += [f"categorical_{i}" for i in range(1, num_categorical + 1)]
    names += [f"numerical_{i}" for i in range(1, num_numerical + 1)]
    return ",".join(names + ["click", "conversion"])


def write_lines(path, lines):
    path.write_bytes(
        b"".join(
            (x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n"
            for x in lines
        )
    )
    return path


def reasons_are(expected):
    expected = sorted(expected)

    def check(actual):
        got = sorted((r["reason"], r["source"]) for r in actual)
        if got != expected:
            raise BeamAssertException(f"dead letters {got} != {expected}")

    return check


def run_reader(reader, rows_matcher, rejected_matcher):
    pipeline = TestPipeline(runner="FnApiRunner")
    outputs = pipeline | reader
    assert_that(outputs["rows"], rows_matcher, label="CheckRows")
    assert_that(outputs["rejected"], rejected_matcher, label="CheckRejected")
    result = pipeline.run()
    result.wait_until_finish()
    counters = collections.Counter()
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        counters[counter.key.metric.name] += counter.committed
    return counters


def row(search_id, line, c1, c2, n1, n2, click, conversion, split=None):
    result = {
        "categorical_1": c1,
        "categorical_2": c2,
        "numerical_1": n1,
        "numerical_2": n2,
        keys.CLICK: click,
        keys.CONVERSION: conversion,
        "__key__": f"{search_id}:{content_key(line.encode())}",
    }
    if split is not None:
        result["__split__"] = split
    return result


def test_rows_keys_dead_letters_and_accounting(tmp_path):
    name = "aliexpress_train.csv"
    # Two impressions of one search session share search_id 7; the content
    # hash keeps their keys apart.
    good = ["7,3,0,0.5,0.0,1,1", "7,4,1,,0.25,0,0"]
    bad = [
        "7,3,0,0.5,0.0,1",  # wrong_field_count
        "7,3,0,0.5,0.0,1,5",  # bad_label
        "7,3,0,0.5,0.0,0,1",  # click0_conversion1
        "7,c,0,0.5,0.0,0,0",  # bad_categorical
        "7,3,0,0.5,x,0,0",  # bad_numeric
        b"7,3,0,0.5,\xc3(,0,0",  # non_utf8
    ]
    write_lines(tmp_path / name, [header()] + good + ["   "] + bad)
    expected = [
        row(7, good[0], 3, 0, 0.5, 0.0, 1, 1),
        row(7, good[1], 4, 1, None, 0.25, 0, 0),
    ]
    assert expected[0]["__key__"] != expected[1]["__key__"]
    rejected = [
        ("wrong_field_count", name),
        ("bad_label", name),
        ("click0_conversion1", name),
        ("bad_categorical", name),
        ("bad_numeric", name),
        ("non_utf8", name),
    ]
    counters = run_reader(
        ReadAliExpressCsv(str(tmp_path)), equal_to(expected), reasons_are(rejected)
    )
    assert counters["rows_read"] == len(expected) + len(rejected)


def test_split_by_filename(tmp_path):
    write_lines(tmp_path / "ae_train.csv", [header(), "1,3,0,0.5,0.0,1,0"])
    write_lines(tmp_path / "ae_test.csv", [header(), "2,3,0,0.5,0.0,0,0"])
    expected = [
        row(1, "1,3,0,0.5,0.0,1,0", 3, 0, 0.5, 0.0, 1, 0, keys.TRAIN_SPLIT),
        row(2, "2,3,0,0.5,0.0,0,0", 3, 0, 0.5, 0.0, 0, 0, keys.EVAL_SPLIT),
    ]
    run_reader(
        ReadAliExpressCsv(str(tmp_path / "ae_*.csv"), split_by_filename=True),
        equal_to(expected),
        reasons_are([]),
    )


def test_spec_follows_the_header(tmp_path):
    write_lines(tmp_path / "a.csv", [header(16, 63)])
    spec = ReadAliExpressCsv(str(tmp_path / "a.csv")).spec
    assert len(spec.columns) == 79
    assert "search_id" not in spec.columns
    assert spec.columns["categorical_16"] == {"kind": keys.CATEGORICAL_INT}
    assert spec.columns["numerical_63"] == {"kind": keys.NUMERIC}
    assert spec.labels == {keys.CLICK: "click", keys.CONVERSION: "conversion"}
    assert spec.user_id is None and spec.item_id is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("search_id,categorical_1,price,click,conversion", "unexpected column 'price'"),
        ("categorical_1,click,conversion", "Missing: \\['search_id'\\]"),
        ("search_id,categorical_1,click", "Missing: \\['conversion'\\]"),
        ("search_id,click,conversion", "at least one feature column"),
    ],
)
def test_bad_headers_fail_with_one_line(tmp_path, text, message):
    write_lines(tmp_path / "a.csv", [text])
    with pytest.raises(ValueError, match=message) as info:
        ReadAliExpressCsv(str(tmp_path / "a.csv"))
    assert "\n" not in str(info.value)
