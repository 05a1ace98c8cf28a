import pytest
from apache_beam.testing.util import equal_to

from beam_jobs.readers.aliccp import ReadAliCCPCsv
from beam_jobs.readers.aliccp import ReadAliExpressCsv
from beam_jobs.readers.input_files import content_key
from tfcvr.features import keys

# === torch-rechub Ali-CCP CSV ===

HEADER = "click,purchase,101,205,150_14,D150_14,D508"
TORCH_RECHUB_HEADER = (
    "click,purchase,101,121,122,124,125,126,127,128,129,205,206,207,210,216,"
    "508,509,702,853,301,109_14,110_14,127_14,150_14,D109_14,D110_14,D127_14,"
    "D150_14,D508,D509,D702,D853"
)


def expected_row(file_name, line, click, purchase, values, split=None):
    row = dict(values)
    row[keys.CLICK] = click
    row[keys.CONVERSION] = purchase
    row["__key__"] = f"{file_name}:{content_key(line.encode())}"
    if split is not None:
        row["__split__"] = split
    return row


def test_rows_dead_letters_and_accounting(
    tmp_path, reasons_are, run_reader, write_lines
):
    name = "ali_ccp_train.csv"
    good = ["1,1,7,30,2,0.5,0.25", "0,0,8,31,1,,nan"]
    bad = [
        "1,0,7,30,2,0.5",  # wrong_field_count
        "2,0,7,30,2,0.5,0.25",  # bad_label
        ",0,7,30,2,0.5,0.25",  # missing_label
        "0,1,7,30,2,0.5,0.25",  # click0_conversion1
        "0,0,7,3.5,2,0.5,0.25",  # bad_categorical
        "0,0,x,30,2,0.5,0.25",  # bad_categorical
        "0,0,7,30,2,abc,0.25",  # bad_numeric
        "0,0,7,30,2,0.5,inf",  # bad_numeric
    ]
    lines = [HEADER] + good + [""] + bad + [b"0,0,7,30,2,0.5,0.2\xff"]
    write_lines(tmp_path / name, lines)
    expected = [
        expected_row(
            name,
            good[0],
            1,
            1,
            {"f101": 7, "f205": 30, "f150_14": 2, "D150_14": 0.5, "D508": 0.25},
        ),
        expected_row(
            name,
            good[1],
            0,
            0,
            {"f101": 8, "f205": 31, "f150_14": 1, "D150_14": None, "D508": None},
        ),
    ]
    rejected = [
        ("wrong_field_count", name),
        ("bad_label", name),
        ("missing_label", name),
        ("click0_conversion1", name),
        ("bad_categorical", name),
        ("bad_categorical", name),
        ("bad_numeric", name),
        ("bad_numeric", name),
        ("non_utf8", name),
    ]
    counters = run_reader(
        ReadAliCCPCsv(str(tmp_path / name)), equal_to(expected), reasons_are(rejected)
    )
    assert counters["rows_read"] == len(expected) + len(rejected) == 11
    assert counters["blank_lines_skipped"] == 1


def test_a_byte_order_mark_before_the_header(
    tmp_path, reasons_are, run_reader, write_lines
):
    name = "ali_ccp_train.csv"
    line = "1,1,7,30,2,0.5,0.25"
    write_lines(tmp_path / name, [b"\xef\xbb\xbf" + HEADER.encode(), line])
    reader = ReadAliCCPCsv(str(tmp_path / name))
    assert reader.header[0] == "click"
    values = {"f101": 7, "f205": 30, "f150_14": 2, "D150_14": 0.5, "D508": 0.25}
    run_reader(
        reader, equal_to([expected_row(name, line, 1, 1, values)]), reasons_are([])
    )


def test_split_by_filename_and_cleaning_off(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(tmp_path / "x_train.csv", [HEADER, "0,1,7,30,2,0.5,0.25"])
    write_lines(tmp_path / "x_test.csv", [HEADER, "1,0,9,32,2,0.5,0.25"])
    expected = [
        expected_row(
            "x_train.csv",
            "0,1,7,30,2,0.5,0.25",
            0,
            1,
            {"f101": 7, "f205": 30, "f150_14": 2, "D150_14": 0.5, "D508": 0.25},
            split=keys.TRAIN_SPLIT,
        ),
        expected_row(
            "x_test.csv",
            "1,0,9,32,2,0.5,0.25",
            1,
            0,
            {"f101": 9, "f205": 32, "f150_14": 2, "D150_14": 0.5, "D508": 0.25},
            split=keys.EVAL_SPLIT,
        ),
    ]
    reader = ReadAliCCPCsv(
        str(tmp_path), split_by_filename=True, drop_click0_conversion1=False
    )
    run_reader(reader, equal_to(expected), reasons_are([]))
    write_lines(tmp_path / "x_val.csv", [HEADER])
    with pytest.raises(ValueError, match="exactly one of 'train' or 'test'"):
        ReadAliCCPCsv(str(tmp_path), split_by_filename=True)


def test_spec_from_the_torch_rechub_header(tmp_path, write_lines):
    write_lines(tmp_path / "a.csv", [TORCH_RECHUB_HEADER])
    reader = ReadAliCCPCsv(str(tmp_path / "a.csv"))
    spec = reader.spec
    assert len(spec.columns) == 31
    assert spec.columns["f109_14"] == {"kind": keys.CATEGORICAL_INT}
    assert spec.columns["D853"] == {"kind": keys.NUMERIC}
    assert list(spec.columns)[:2] == ["f101", "f121"]
    assert spec.labels == {keys.CLICK: "click", keys.CONVERSION: "purchase"}
    assert (spec.user_id, spec.item_id) == ("f101", "f205")
    spec = ReadAliCCPCsv(
        str(tmp_path / "a.csv"), column_overrides={"D508": {"log": True}}
    ).spec
    assert spec.columns["D508"]["log"] is True


@pytest.mark.parametrize(
    "header, message",
    [
        ("click,purchase,101,age", "unexpected column 'age'"),
        ("click,101,205", "Missing: \\['purchase'\\]"),
        ("click,purchase", "at least one field column"),
        ("click,purchase,101,101", "repeats columns"),
        ("label,purchase,101", "unexpected column 'label'"),
    ],
)
def test_bad_headers_fail_with_one_line(
    tmp_path, header, message, write_lines
):
    write_lines(tmp_path / "a.csv", [header])
    with pytest.raises(ValueError, match=message) as info:
        ReadAliCCPCsv(str(tmp_path / "a.csv"))
    assert "\n" not in str(info.value)


def test_an_empty_file_is_named_not_parsed_as_a_header(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"")
    with pytest.raises(
        ValueError, match="a.csv is empty: every Ali-CCP CSV file starts with"
    ):
        ReadAliCCPCsv(str(tmp_path / "a.csv"))


def test_files_must_share_one_header(tmp_path, write_lines):
    write_lines(tmp_path / "a.csv", [HEADER])
    write_lines(tmp_path / "b.csv", ["click,purchase,101"])
    with pytest.raises(ValueError, match="same header"):
        ReadAliCCPCsv(str(tmp_path))
    with pytest.raises(ValueError, match="builds its own input spec"):
        ReadAliCCPCsv(str(tmp_path / "a.csv"), spec={"columns": {}})


# === AliExpress ===


def aliexpress_header(num_categorical=2, num_numerical=2):
    names = ["search_id"]
    names += [f"categorical_{i}" for i in range(1, num_categorical + 1)]
    names += [f"numerical_{i}" for i in range(1, num_numerical + 1)]
    return ",".join(names + ["click", "conversion"])


def aliexpress_row(search_id, line, c1, c2, n1, n2, click, conversion, split=None):
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


def test_aliexpress_rows_keys_dead_letters_and_accounting(
    tmp_path, reasons_are, run_reader, write_lines
):
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
    write_lines(tmp_path / name, [aliexpress_header()] + good + ["   "] + bad)
    expected = [
        aliexpress_row(7, good[0], 3, 0, 0.5, 0.0, 1, 1),
        aliexpress_row(7, good[1], 4, 1, None, 0.25, 0, 0),
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


def test_aliexpress_split_by_filename(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(tmp_path / "ae_train.csv", [aliexpress_header(), "1,3,0,0.5,0.0,1,0"])
    write_lines(tmp_path / "ae_test.csv", [aliexpress_header(), "2,3,0,0.5,0.0,0,0"])
    expected = [
        aliexpress_row(1, "1,3,0,0.5,0.0,1,0", 3, 0, 0.5, 0.0, 1, 0, keys.TRAIN_SPLIT),
        aliexpress_row(2, "2,3,0,0.5,0.0,0,0", 3, 0, 0.5, 0.0, 0, 0, keys.EVAL_SPLIT),
    ]
    run_reader(
        ReadAliExpressCsv(str(tmp_path / "ae_*.csv"), split_by_filename=True),
        equal_to(expected),
        reasons_are([]),
    )


def test_aliexpress_spec_follows_the_header(tmp_path, write_lines):
    write_lines(tmp_path / "a.csv", [aliexpress_header(16, 63)])
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
def test_aliexpress_bad_headers_fail_with_one_line(
    tmp_path, text, message, write_lines
):
    write_lines(tmp_path / "a.csv", [text])
    with pytest.raises(ValueError, match=message) as info:
        ReadAliExpressCsv(str(tmp_path / "a.csv"))
    assert "\n" not in str(info.value)
