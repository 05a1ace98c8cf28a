import pytest
from apache_beam.testing.util import equal_to

from beam_jobs.readers.aliccp import ReadPaddleRec
from tfcvr.features import keys

FIELDS = ["101", "205", "210", "150_14"]


def row(key, click, conversion, user, item, intents, history, split=None):
    result = {
        "f101": user,
        "f205": item,
        "f210": list(intents),
        "f150_14": list(history),
        keys.CLICK: click,
        keys.CONVERSION: conversion,
        "__key__": key,
    }
    if split is not None:
        result["__split__"] = split
    return result


def test_multi_valued_rows_dead_letters_and_accounting(
    tmp_path, reasons_are, run_reader, write_lines
):
    name = "small.txt"
    lines = [
        # the fourth column is skipped (PaddleRec's reader does the same);
        # 999 is not a selected field; 150_14 repeats
        "1,1,1,205:77,210:5,101:12,205:6,150_14:20,150_14:21,999:3,150_14:22",
        # 210 occurs once but is multi-valued; 150_14 absent
        "2,0,0,x,210:8,101:13",
        "",
        "3,1,0",  # wrong_field_count
        "4,1,2,x,101:1",  # bad_label
        "5,0,1,x,101:1",  # click0_conversion1
        "6,0,0,x,101:a",  # bad_feature_list
        "7,0,0,x,101",  # bad_feature_list
        "8,0,0,x,:4",  # bad_feature_list
        b"9,0,0,x,101:1\x80",  # non_utf8
    ]
    write_lines(tmp_path / name, lines)
    expected = [
        row("small.txt:1", 1, 1, 12, 6, [5], [20, 21, 22]),
        row("small.txt:2", 0, 0, 13, None, [8], []),
    ]
    rejected = [
        ("wrong_field_count", name),
        ("bad_label", name),
        ("click0_conversion1", name),
        ("bad_feature_list", name),
        ("bad_feature_list", name),
        ("bad_feature_list", name),
        ("non_utf8", name),
    ]
    counters = run_reader(
        ReadPaddleRec(str(tmp_path / name), fields=FIELDS),
        equal_to(expected),
        reasons_are(rejected),
    )
    assert counters["rows_read"] == len(expected) + len(rejected) == 9
    assert counters["blank_lines_skipped"] == 1


def test_keep_fourth_column_max_len_and_split(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(
        tmp_path / "train_small.txt",
        ["1,1,0,205:77,150_14:1,150_14:2,150_14:3,101:5"],
    )
    write_lines(tmp_path / "test_small.txt", ["1,0,0,205:78,101:6"])
    expected = [
        row("train_small.txt:1", 1, 0, 5, 77, [], [1, 2], keys.TRAIN_SPLIT),
        row("test_small.txt:1", 0, 0, 6, 78, [], [], keys.EVAL_SPLIT),
    ]
    reader = ReadPaddleRec(
        str(tmp_path),
        fields=FIELDS,
        keep_fourth_column=True,
        max_len=2,
        split_by_filename=True,
    )
    run_reader(reader, equal_to(expected), reasons_are([]))


def test_a_byte_order_mark_is_not_part_of_the_sample_id(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(tmp_path / "part.txt", [b"\xef\xbb\xbf1,1,0,x,101:5,205:6"])
    run_reader(
        ReadPaddleRec(str(tmp_path / "part.txt"), fields=FIELDS),
        equal_to([row("part.txt:1", 1, 0, 5, 6, [], [])]),
        reasons_are([]),
    )


@pytest.mark.parametrize(
    "on_repeated, expected_item", [("first", 6), ("last", 7), ("reject", None)]
)
def test_repeated_single_valued_field(
    tmp_path, on_repeated, expected_item, reasons_are, run_reader, write_lines
):
    write_lines(tmp_path / "a.txt", ["1,0,0,x,205:6,101:1,205:7"])
    reader = ReadPaddleRec(
        str(tmp_path), fields=["101", "205"], on_repeated_field=on_repeated
    )
    if expected_item is None:
        rows, rejected = [], [("repeated_single_valued_field", "a.txt")]
    else:
        rows = [
            {
                "f101": 1,
                "f205": expected_item,
                keys.CLICK: 0,
                keys.CONVERSION: 0,
                "__key__": "a.txt:1",
            }
        ]
        rejected = []
    counters = run_reader(reader, equal_to(rows), reasons_are(rejected))
    assert counters["repeated_single_valued_field"] == 1


def test_spec_of_the_paddlerec_fields(tmp_path, write_lines):
    write_lines(tmp_path / "a.txt", ["1,0,0,x,101:1"])
    spec = ReadPaddleRec(str(tmp_path), max_len=3).spec
    assert len(spec.columns) == 23
    assert spec.columns["f150_14"] == {
        "kind": keys.MULTI_CATEGORICAL,
        "value_dtype": "int64",
        "max_len": 3,
    }
    assert spec.columns["f205"] == {"kind": keys.CATEGORICAL_INT}
    assert spec.labels == {keys.CLICK: "click", keys.CONVERSION: "ctcvr"}
    assert (spec.user_id, spec.item_id) == ("f101", "f205")


@pytest.mark.parametrize(
    "first_line",
    ["click,purchase,101,205", "1,0,0", "1,yes,0,101:1", "1,0,0,x,y"],
)
def test_not_paddlerec_fails_with_one_line(tmp_path, first_line, write_lines):
    write_lines(tmp_path / "a.txt", [first_line])
    with pytest.raises(ValueError, match="is not a PaddleRec line") as info:
        ReadPaddleRec(str(tmp_path))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="builds its own input spec"):
        ReadPaddleRec(str(tmp_path), spec={})
