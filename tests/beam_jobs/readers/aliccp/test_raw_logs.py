import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from beam_jobs.readers.aliccp import raw_logs
from beam_jobs.readers.aliccp.fields import (
    ESMM_FIELDS,
    format_common_line,
    format_skeleton_line,
)
from beam_jobs.readers.aliccp.raw_logs import ReadAliCCP
from beam_jobs.readers.aliccp.raw_logs import classify_aliccp_file
from tfcvr.features import keys

FIELDS = ["101", "205", "301", "210", "109_14"]


def user(common_index, user_id, history=()):
    entries = [("101", user_id, 1.0)]
    entries += [("109_14", h, w) for h, w in history]
    return format_common_line(common_index, entries)


def impression(sample_id, click, conversion, common_index, item, intents=()):
    entries = [("205", item, 1.0), ("301", 7, 1.0)]
    entries += [("210", i, 1.0) for i in intents]
    return format_skeleton_line(sample_id, click, conversion, common_index, entries)


def row(key, split, click, conversion, user_id, item, intents=(), history=()):
    return {
        "f101": user_id,
        "f205": item,
        "f301": 7,
        "f210": list(intents),
        "f210__weight": [1.0] * len(intents),
        "f109_14": [h for h, _ in history],
        "f109_14__weight": [w for _, w in history],
        keys.CLICK: click,
        keys.CONVERSION: conversion,
        "__key__": f"{split}:{key}",
        "__split__": split,
    }


# === File names ===


def test_classify_aliccp_file():
    assert classify_aliccp_file("/d/sample_skeleton_train.csv") == (
        "skeleton",
        keys.TRAIN_SPLIT,
    )
    assert classify_aliccp_file("gs://b/common_features_test.csv.gz") == (
        "common",
        keys.EVAL_SPLIT,
    )
    assert classify_aliccp_file("common_features_train-00001.csv") == (
        "common",
        keys.TRAIN_SPLIT,
    )
    assert classify_aliccp_file("ground_truth_test.csv") == (
        "ground_truth",
        keys.EVAL_SPLIT,
    )
    assert classify_aliccp_file("sample_skeleton_training.csv") is None
    assert classify_aliccp_file("README.md") is None


# === The join ===


def test_join_by_split_and_index_in_any_file_order(
    tmp_path, reasons_are, run_reader, write_lines
):
    # Common rows come in another order than the impressions, one of them
    # from a second file; the test split reuses index "cA" for another user.
    write_lines(
        tmp_path / "sample_skeleton_train.csv",
        [
            impression(1, 1, 1, "cA", 501, intents=(9, 8)),
            impression(2, 0, 0, "cB", 502),
            impression(3, 1, 0, "cC", 503),
            impression(4, 0, 0, "cA", 504),
        ],
    )
    write_lines(
        tmp_path / "common_features_train.csv",
        [user("cB", 12), user("cA", 11, history=[(70, 2.0), (71, 0.5)])],
    )
    write_lines(tmp_path / "common_features_train-2.csv", [user("cC", 13)])
    write_lines(
        tmp_path / "sample_skeleton_test.csv", [impression(1, 0, 0, "cA", 601)]
    )
    write_lines(tmp_path / "common_features_test.csv", [user("cA", 21)])
    (tmp_path / "README.txt").write_text("not data\n")
    train, test = keys.TRAIN_SPLIT, keys.EVAL_SPLIT
    history = [(70, 2.0), (71, 0.5)]
    expected = [
        row(1, train, 1, 1, 11, 501, intents=(9, 8), history=history),
        row(2, train, 0, 0, 12, 502),
        row(3, train, 1, 0, 13, 503),
        row(4, train, 0, 0, 11, 504, history=history),
        row(1, test, 0, 0, 21, 601),
    ]
    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS),
        equal_to(expected),
        reasons_are([]),
    )
    assert counters["rows_read"] == 5
    assert counters["common_lines"] == 4


def test_default_fields_give_every_esmm_column(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(
        tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)]
    )
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    reader = ReadAliCCP(str(tmp_path / "*.csv"))

    def check(rows):
        (only,) = rows
        multi = {"109_14", "110_14", "127_14", "150_14", "210", "853"}
        expected_names = {f"f{f}" for f in ESMM_FIELDS}
        expected_names |= {f"f{f}__weight" for f in multi}
        expected_names |= {keys.CLICK, keys.CONVERSION, "__key__", "__split__"}
        if set(only) != expected_names:
            raise BeamAssertException(sorted(set(only) ^ expected_names))
        if (only["f101"], only["f205"], only["f301"]) != (3, 5, 7):
            raise BeamAssertException(only)
        if only["f126"] is not None or only["f150_14"] != []:
            raise BeamAssertException("absent fields must be None / []")

    run_reader(reader, check, reasons_are([]))


# === Dead letters ===


def test_skeleton_dead_letters_and_accounting(
    tmp_path, reasons_are, run_reader, write_lines
):
    sk = "sample_skeleton_train.csv"
    good = impression(1, 1, 0, "cA", 501)
    lines = [
        good,
        "",  # blank: skipped, neither read nor rejected
        "2,0,0,cA,1",
        "3,2,0,cA,1,205\x02501\x031.0",
        "4,,0,cA,1,205\x02501\x031.0",
        impression(5, 0, 1, "cA", 505),
        "6,0,0,cA,2,205\x02501\x031.0",
        "7,0,0,cA,one,205\x02501\x031.0",
        "8,0,0,cA,1,205\x03501",
        "9,0,0,cA,1,205\x02501",
        "10,0,0,cA,1,205\x02abc\x031.0",
        "11,0,0,cA,1,205\x02501\x03abc",
        "12,0,0,cA,1,205\x02501\x03inf",
        "13,0,0,cA,2,205\x02501\x031.0\x01\x02502\x031.0",
        b"14,0,0,cA,1,205\x02501\x031.0\xff",
        impression(15, 1, 1, "cMissing", 515),
    ]
    write_lines(tmp_path / sk, lines)
    write_lines(tmp_path / "common_features_train.csv", [user("cA", 11)])
    expected_rejected = [
        ("wrong_field_count", sk),
        ("bad_label", sk),
        ("missing_label", sk),
        ("click0_conversion1", sk),
        ("num_features_mismatch", sk),
        ("bad_num_features", sk),
        ("bad_feature_list", sk),
        ("bad_feature_list", sk),
        ("bad_feature_list", sk),
        ("bad_feature_list", sk),
        ("bad_feature_list", sk),
        ("bad_feature_list", sk),
        ("non_utf8", sk),
        ("missing_common_features", sk),
    ]

    def check_rejected(actual):
        reasons_are(expected_rejected)(actual)
        by_reason = {r["reason"]: r for r in actual}
        if "\\xff" not in by_reason["non_utf8"]["raw"]:
            raise BeamAssertException("non-UTF-8 bytes must be escaped")
        if "cMissing" not in by_reason["missing_common_features"]["detail"]:
            raise BeamAssertException("detail must name the missing index")

    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS),
        equal_to([row(1, keys.TRAIN_SPLIT, 1, 0, 11, 501)]),
        check_rejected,
    )
    non_blank = len(lines) - 1
    assert counters["rows_read"] == non_blank == 1 + len(expected_rejected)
    assert counters["blank_lines_skipped"] == 1


def test_common_dead_letters_duplicates_and_accounting(
    tmp_path, reasons_are, run_reader, write_lines
):
    common = "common_features_train.csv"
    write_lines(
        tmp_path / "sample_skeleton_train.csv",
        [
            impression(1, 0, 0, "cA", 501),
            impression(2, 0, 0, "cB", 502),
            impression(3, 0, 0, "cD", 503),
            impression(4, 0, 0, "cE", 504),
        ],
    )
    write_lines(
        tmp_path / common,
        [
            user("cA", 19),  # duplicate of cA: sorts after "cA,1,101\x0211"
            user("cA", 11),
            "cB,1,101\x02x\x031.0",  # broken: its impression has no common row
            "cC,1,101\x0211\x031.0,extra",  # wrong field count
            b"cC,1,101\x0211\x031.0\xfe",  # not UTF-8
            "cD,2,101\x0214\x031.0",  # num_features mismatch; cD below is valid
            user("cD", 14),
            user("cUnused", 15),  # no impression points at it: not a row
        ],
    )
    expected_rejected = [
        ("duplicate_common_features", common),
        ("bad_feature_list", common),
        ("wrong_field_count", common),
        ("non_utf8", common),
        ("num_features_mismatch", common),
        ("missing_common_features", "sample_skeleton_train.csv"),
        ("missing_common_features", "sample_skeleton_train.csv"),
    ]
    expected_rows = [
        row(1, keys.TRAIN_SPLIT, 0, 0, 11, 501),
        row(3, keys.TRAIN_SPLIT, 0, 0, 14, 503),
    ]

    def check_rejected(actual):
        reasons_are(expected_rejected)(actual)
        (duplicate,) = [
            r for r in actual if r["reason"] == "duplicate_common_features"
        ]
        if "101\x0219" not in duplicate["raw"]:
            raise BeamAssertException("the row sorting last is the duplicate")

    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS),
        equal_to(expected_rows),
        check_rejected,
    )
    # 4 impressions + 5 rejected common lines; valid common rows are join
    # inputs, not rows.
    assert counters["rows_read"] == len(expected_rows) + len(expected_rejected)
    assert counters["common_lines"] == 8
    assert counters["common_rows_unused"] == 1


def test_every_copy_of_a_repeated_sample_id_is_rejected(
    tmp_path, reasons_are, run_reader, write_lines
):
    sk = "sample_skeleton_train.csv"
    replayed = impression(1, 1, 0, "cA", 501)
    lines = [replayed] * 10 + [
        impression(2, 0, 0, "cA", 502),  # id 2 reused by another impression
        impression(2, 1, 1, "cB", 602),
        impression(3, 0, 0, "cB", 503),
        "4,2,0,cA,1,205\x02504\x031.0",  # bad label: not a copy of id 4
        impression(4, 0, 0, "cA", 504),
    ]
    write_lines(tmp_path / sk, lines)
    write_lines(tmp_path / "common_features_train.csv", [user("cA", 11), user("cB", 12)])
    # The same id in the other split is another impression.
    write_lines(
        tmp_path / "sample_skeleton_test.csv", [impression(1, 0, 0, "cA", 701)]
    )
    write_lines(tmp_path / "common_features_test.csv", [user("cA", 21)])
    expected_rows = [
        row(3, keys.TRAIN_SPLIT, 0, 0, 12, 503),
        row(4, keys.TRAIN_SPLIT, 0, 0, 11, 504),
        row(1, keys.EVAL_SPLIT, 0, 0, 21, 701),
    ]
    expected_rejected = [("duplicate_sample_id", sk)] * 12 + [("bad_label", sk)]

    def check_rejected(actual):
        reasons_are(expected_rejected)(actual)
        copies = [r for r in actual if r["reason"] == "duplicate_sample_id"]
        if sorted(r["raw"] for r in copies) != sorted(lines[:12]):
            raise BeamAssertException("every copy must be a dead letter")
        details = sorted({r["detail"].split(";")[0] for r in copies})
        if details != [
            "sample_id '1' occurs 10 times in the train split",
            "sample_id '2' occurs 2 times in the train split",
        ]:
            raise BeamAssertException(details)

    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS),
        equal_to(expected_rows),
        check_rejected,
    )
    assert counters["rows_read"] == len(lines) + 1
    assert counters["rows_read"] == len(expected_rows) + len(expected_rejected)


def test_duplicate_sample_ids_never_share_one_ground_truth(
    tmp_path, reasons_are, run_reader, write_lines
):
    # Impression 1 reused the id of another impression: neither may receive
    # the truth line of "1", which belongs to one of them only.
    sk = "sample_skeleton_train.csv"
    write_lines(
        tmp_path / sk,
        [
            impression(1, 1, 1, "cA", 501),
            impression(1, 0, 0, "cA", 901),
            impression(2, 0, 0, "cA", 502),
        ],
    )
    write_lines(tmp_path / "common_features_train.csv", [user("cA", 11)])
    write_lines(
        tmp_path / "ground_truth_train.csv",
        [TRUTH_HEADER, "1,0.5,0.75,1", "2,0.25,0.125,0"],
    )
    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS),
        equal_to(
            [with_truth(row(2, keys.TRAIN_SPLIT, 0, 0, 11, 502), 0.25, 0.125, 0)]
        ),
        reasons_are([("duplicate_sample_id", sk)] * 2),
    )
    assert counters["rows_read"] == 3
    assert counters["ground_truth_unused"] == 1


def test_duplicate_sample_ids_do_not_depend_on_the_order_of_the_copies():
    paths = ["/d/sample_skeleton_train.csv", "/d/ground_truth_train.csv"]
    copies = [(0, impression(7, 1, 0, "cA", 5)), (0, impression(7, 0, 0, "cB", 6))]
    truth = [(1, "7,0.5,0.5,1")]
    outputs = []
    for order in (copies, copies[::-1]):
        dofn = raw_logs._JoinBySampleId(paths, with_ground_truth=True)
        dofn.setup()
        element = ((keys.TRAIN_SPLIT, "7"), {"skeleton": order, "ground_truth": truth})
        out = [o.value for o in dofn.process(element)]
        outputs.append(sorted((r["reason"], r["raw"]) for r in out))
    assert outputs[0] == outputs[1]
    assert outputs[0] == sorted(("duplicate_sample_id", line) for _, line in copies)


# === Ground truth (simulated data) ===

TRUTH_HEADER = "sample_id,true_ctr,true_cvr,conversion_if_clicked"


def with_truth(expected_row, true_ctr, true_cvr, conversion_if_clicked):
    return {
        **expected_row,
        keys.TRUE_CTR: true_ctr,
        keys.TRUE_CVR: true_cvr,
        keys.CONVERSION_IF_CLICKED: float(conversion_if_clicked),
    }


def test_ground_truth_is_joined_by_sample_id_with_dead_letters(
    tmp_path, reasons_are, run_reader, write_lines
):
    truth = "ground_truth_train.csv"
    write_lines(
        tmp_path / "sample_skeleton_train.csv",
        [
            impression(1, 1, 0, "cA", 501),
            impression(2, 0, 0, "cA", 502),
            impression(3, 0, 0, "cA", 503),  # no ground truth
            impression(4, 0, 0, "cA", 504),  # only a broken truth line
            impression(5, 1, 1, "cA", 505),
        ],
    )
    write_lines(tmp_path / "common_features_train.csv", [user("cA", 11)])
    write_lines(
        tmp_path / truth,
        [
            TRUTH_HEADER,
            "2,0.25,0.5,1",
            "1,0.125,0.75,0",
            "4,0.5,1.5,0",  # rate outside [0, 1]
            "5,0.5,0.25,1",
            "5,0.5,0.125,1",  # duplicate: sorts before the line above, kept
            "9,0.5,0.5,1",  # no impression: not a row
            "x,0.5",  # wrong column count
        ],
    )
    expected_rows = [
        with_truth(row(1, keys.TRAIN_SPLIT, 1, 0, 11, 501), 0.125, 0.75, 0),
        with_truth(row(2, keys.TRAIN_SPLIT, 0, 0, 11, 502), 0.25, 0.5, 1),
        with_truth(row(5, keys.TRAIN_SPLIT, 1, 1, 11, 505), 0.5, 0.125, 1),
    ]
    skeleton = "sample_skeleton_train.csv"
    expected_rejected = [
        ("bad_ground_truth", truth),
        ("bad_ground_truth", truth),
        ("duplicate_ground_truth", truth),
        ("missing_ground_truth", skeleton),
        ("missing_ground_truth", skeleton),
    ]

    def check_rejected(actual):
        reasons_are(expected_rejected)(actual)
        (duplicate,) = [r for r in actual if r["reason"] == "duplicate_ground_truth"]
        if duplicate["raw"] != "5,0.5,0.25,1":
            raise BeamAssertException(f"kept the wrong duplicate: {duplicate}")

    reader = ReadAliCCP(str(tmp_path), fields=FIELDS)
    assert reader.with_ground_truth
    assert reader.spec.extra_columns == keys.GROUND_TRUTH_KEYS
    counters = run_reader(reader, equal_to(expected_rows), check_rejected)
    # 5 impressions + 3 rejected truth lines (join inputs otherwise).
    assert counters["rows_read"] == 5 + 3
    assert counters["ground_truth_lines"] == 7
    assert counters["ground_truth_unused"] == 1


def test_a_byte_order_mark_is_stripped_from_every_file(
    tmp_path, reasons_are, run_reader, write_lines
):
    # Each file starts with a UTF-8 BOM, as Windows tools write them: the
    # first sample id must stay "1" (and join its ground truth), the first
    # common index "cA", and the ground-truth header must stay a header.
    bom = b"\xef\xbb\xbf"
    write_lines(
        tmp_path / "sample_skeleton_train.csv",
        [bom + impression(1, 1, 0, "cA", 501).encode(), impression(2, 0, 0, "cA", 502)],
    )
    write_lines(tmp_path / "common_features_train.csv", [bom + user("cA", 11).encode()])
    write_lines(
        tmp_path / "ground_truth_train.csv",
        [bom + TRUTH_HEADER.encode(), "1,0.5,0.25,1", "2,0.125,0.5,0"],
    )
    expected = [
        with_truth(row(1, keys.TRAIN_SPLIT, 1, 0, 11, 501), 0.5, 0.25, 1),
        with_truth(row(2, keys.TRAIN_SPLIT, 0, 0, 11, 502), 0.125, 0.5, 0),
    ]
    counters = run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS), equal_to(expected), reasons_are([])
    )
    assert counters["rows_read"] == 2
    assert counters["ground_truth_lines"] == 2


def test_ground_truth_option(tmp_path, run_reader, write_lines):
    write_lines(tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)])
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    assert not ReadAliCCP(str(tmp_path), fields=FIELDS).with_ground_truth
    with pytest.raises(ValueError, match="no ground_truth_"):
        ReadAliCCP(str(tmp_path), fields=FIELDS, ground_truth=True)
    with pytest.raises(ValueError, match="ground_truth must be"):
        ReadAliCCP(str(tmp_path), fields=FIELDS, ground_truth="yes")
    write_lines(tmp_path / "ground_truth_train.csv", [TRUTH_HEADER, "1,0.5,0.5,0"])
    ignored = ReadAliCCP(str(tmp_path), fields=FIELDS, ground_truth=False)
    assert not ignored.with_ground_truth and ignored.spec.extra_columns == ()
    run_reader(ignored, equal_to([row(1, keys.TRAIN_SPLIT, 0, 0, 3, 5)]), equal_to([]))
    # A ground-truth file for one split only is a mistake, not a partial join.
    write_lines(tmp_path / "sample_skeleton_test.csv", [impression(2, 0, 0, "d", 5)])
    write_lines(tmp_path / "common_features_test.csv", [user("d", 3)])
    with pytest.raises(ValueError, match=r"no ground_truth_\{test\}"):
        ReadAliCCP(str(tmp_path), fields=FIELDS)


def test_cleaning_rule_can_be_turned_off(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(
        tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 1, "c", 5)]
    )
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    run_reader(
        ReadAliCCP(str(tmp_path), fields=FIELDS, drop_click0_conversion1=False),
        equal_to([row(1, keys.TRAIN_SPLIT, 0, 1, 3, 5)]),
        reasons_are([]),
    )


# === Multi-valued fields and repeats ===


def test_multi_valued_merges_impression_then_common_and_truncates(
    tmp_path, reasons_are, run_reader, write_lines
):
    skeleton = format_skeleton_line(
        1,
        1,
        0,
        "c",
        [("205", 5, 1.0), ("109_14", 1, 0.25), ("109_14", 2, 0.5)],
    )
    write_lines(tmp_path / "sample_skeleton_train.csv", [skeleton])
    write_lines(
        tmp_path / "common_features_train.csv",
        [user("c", 3, history=[(3, 1.5), (4, 2.5)])],
    )
    expected = {
        "f205": 5,
        "f101": 3,
        "f109_14": [1, 2, 3],
        "f109_14__weight": [0.25, 0.5, 1.5],
        keys.CLICK: 1,
        keys.CONVERSION: 0,
        "__key__": "train:1",
        "__split__": keys.TRAIN_SPLIT,
    }
    run_reader(
        ReadAliCCP(str(tmp_path), fields=["205", "101", "109_14"], max_len=3),
        equal_to([expected]),
        reasons_are([]),
    )
    unweighted = {
        k: v for k, v in expected.items() if k != "f109_14__weight"
    }
    unweighted["f109_14"] = [1, 2, 3, 4]
    run_reader(
        ReadAliCCP(
            str(tmp_path), fields=["205", "101", "109_14"], weighted=False
        ),
        equal_to([unweighted]),
        reasons_are([]),
    )


@pytest.mark.parametrize(
    "on_repeated, expected_item",
    [("first", 5), ("last", 6), ("reject", None)],
)
def test_repeated_single_valued_field(
    tmp_path, on_repeated, expected_item, reasons_are, run_reader, write_lines
):
    skeleton = format_skeleton_line(
        1, 0, 0, "c", [("205", 5, 1.0), ("205", 6, 1.0)]
    )
    write_lines(tmp_path / "sample_skeleton_train.csv", [skeleton])
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    reader = ReadAliCCP(
        str(tmp_path), fields=["101", "205"], on_repeated_field=on_repeated
    )
    if expected_item is None:
        rows, rejected = [], [
            ("repeated_single_valued_field", "sample_skeleton_train.csv")
        ]
    else:
        rows = [
            {
                "f101": 3,
                "f205": expected_item,
                keys.CLICK: 0,
                keys.CONVERSION: 0,
                "__key__": "train:1",
                "__split__": keys.TRAIN_SPLIT,
            }
        ]
        rejected = []
    counters = run_reader(reader, equal_to(rows), reasons_are(rejected))
    assert counters["repeated_single_valued_field"] == 1
    assert counters["rows_read"] == 1


def test_aitm_preset_is_single_valued(
    tmp_path, reasons_are, run_reader, write_lines
):
    skeleton = format_skeleton_line(
        1, 1, 1, "c", [("205", 5, 1.0), ("210", 8, 1.0), ("853", 9, 1.0)]
    )
    write_lines(tmp_path / "sample_skeleton_train.csv", [skeleton])
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    reader = ReadAliCCP(str(tmp_path), fields="aitm")
    assert len(reader.spec.columns) == 18
    assert "f210" not in reader.spec.columns
    assert {s["kind"] for s in reader.spec.columns.values()} == {
        keys.CATEGORICAL_INT
    }

    def check(rows):
        (only,) = rows
        if (only["f205"], only["f853"], only["f101"]) != (5, 9, 3):
            raise BeamAssertException(only)
        if "f210" in only or only["f126"] is not None:
            raise BeamAssertException(only)

    run_reader(reader, check, reasons_are([]))


# === The DoFns on in-memory elements ===


def test_key_line_dofn_on_in_memory_lines(reasons_are):
    files = [
        ("/d/sample_skeleton_test.csv", "skeleton", keys.EVAL_SPLIT),
        ("/d/common_features_test.csv", "common", keys.EVAL_SPLIT),
    ]
    skeleton = impression(1, 1, 0, "cA", 5)
    common = user("cA", 3)
    elements = [
        (files[0][0], skeleton.encode()),
        (files[1][0], common.encode()),
        (files[0][0], b"1,1,0,cA"),
        (files[1][0], b"   "),
    ]
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create(elements)
            | beam.ParDo(raw_logs._KeyAliCCPLine(files, True)).with_outputs(
                "skeleton", "common", "rejected"
            )
        )
        assert_that(
            out["skeleton"],
            equal_to([((keys.EVAL_SPLIT, "1"), (0, skeleton))]),
            label="Skeleton",
        )
        assert_that(
            out["common"],
            equal_to([((keys.EVAL_SPLIT, "cA"), (1, common))]),
            label="Common",
        )
        assert_that(
            out["rejected"],
            reasons_are([("wrong_field_count", "sample_skeleton_test.csv")]),
            label="Rejected",
        )


def test_build_rows_dofn_on_a_grouped_element(reasons_are):
    paths = ["/d/sample_skeleton_train.csv", "/d/common_features_train.csv"]
    grouped = (
        (keys.TRAIN_SPLIT, "cA"),
        {
            "skeleton": [
                (0, impression(1, 1, 0, "cA", 5, intents=(4,))),
                (0, "2,0,0,cA,9,205\x025\x031.0"),
            ],
            "common": [(1, user("cA", 3, history=[(6, 3.0)]))],
        },
    )
    dofn = raw_logs._BuildAliCCPRows(
        paths, FIELDS, {"210", "109_14"}, True, 20, "first"
    )
    with TestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create([grouped])
            | beam.ParDo(dofn).with_outputs("rejected", main="rows")
        )
        assert_that(
            out["rows"],
            equal_to(
                [
                    row(
                        1,
                        keys.TRAIN_SPLIT,
                        1,
                        0,
                        3,
                        5,
                        intents=(4,),
                        history=[(6, 3.0)],
                    )
                ]
            ),
            label="Rows",
        )
        assert_that(
            out["rejected"],
            reasons_are(
                [("num_features_mismatch", "sample_skeleton_train.csv")]
            ),
            label="Rejected",
        )


# === Spec and construction errors ===


def test_spec_of_the_default_fields(tmp_path, write_lines):
    write_lines(tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)])
    write_lines(tmp_path / "common_features_train.csv", [])
    spec = ReadAliCCP(str(tmp_path), max_len=7).spec
    assert list(spec.columns) == [f"f{f}" for f in ESMM_FIELDS]
    assert spec.columns["f101"] == {"kind": keys.CATEGORICAL_INT}
    assert spec.columns["f150_14"] == {
        "kind": keys.MULTI_CATEGORICAL,
        "value_dtype": "int64",
        "max_len": 7,
        "weighted": True,
    }
    assert spec.columns["f210"]["kind"] == keys.MULTI_CATEGORICAL
    assert spec.columns["f853"]["kind"] == keys.MULTI_CATEGORICAL
    assert spec.columns["f508"]["kind"] == keys.CATEGORICAL_INT
    assert (spec.user_id, spec.item_id) == ("f101", "f205")
    assert spec.labels == {keys.CLICK: "click", keys.CONVERSION: "conversion"}
    schema = spec.to_schema()
    assert schema.user_id == "f101"


def test_column_overrides_and_vocab(tmp_path, write_lines):
    write_lines(tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)])
    write_lines(tmp_path / "common_features_train.csv", [])
    spec = ReadAliCCP(
        str(tmp_path),
        fields=["101", "109_14"],
        multi_valued_fields=["109_14"],
        column_overrides={"f101": {"hash_buckets": 1000}},
        vocab={"min_count": 10},
    ).spec
    assert spec.columns["f101"]["hash_buckets"] == 1000
    assert spec.vocab["min_count"] == 10
    assert spec.item_id is None
    with pytest.raises(ValueError, match="unknown column 'f999'"):
        ReadAliCCP(str(tmp_path), column_overrides={"f999": {}})
    with pytest.raises(ValueError, match="may not change the kind"):
        ReadAliCCP(
            str(tmp_path), column_overrides={"f101": {"kind": "numeric"}}
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spec": {"columns": {}}}, "builds its own input spec"),
        ({"fields": "dcn"}, "fields must be one of"),
        ({"fields": ["101", "abc"]}, "field ids"),
        ({"fields": ["101", "101"]}, "duplicates"),
        ({"multi_valued_fields": ["999"]}, "not selected"),
        ({"max_len": 0}, "max_len must be a positive integer"),
        ({"on_repeated_field": "all"}, "on_repeated_field must be one of"),
    ],
)
def test_bad_options_fail_with_one_line(
    tmp_path, kwargs, message, write_lines
):
    write_lines(tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)])
    write_lines(tmp_path / "common_features_train.csv", [])
    with pytest.raises(ValueError, match=message) as info:
        ReadAliCCP(str(tmp_path), **kwargs)
    assert "\n" not in str(info.value)


HEADER_LINE = "sample_id,click,conversion,common_feature_index,num_features,feature_list"


@pytest.mark.parametrize(
    "kind, content, message",
    [
        ("sample_skeleton", b"", "is empty"),
        ("sample_skeleton", b"\n  \r\n\n", "is empty"),
        ("sample_skeleton", HEADER_LINE.encode() + b"\n\n", "only a header line"),
        ("sample_skeleton", b"\xef\xbb\xbf" + HEADER_LINE.encode() + b"\r\n",
         "only a header line"),
        ("sample_skeleton", bytes(range(256)) * 4, "not a text file: NUL byte"),
        ("sample_skeleton", b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "name it \\*.gz"),
        ("common_features", b"1,2\x00,3\n", "not a text file"),
        ("ground_truth", b"\xff\xfes\x00a\x00", "UTF-16"),
    ],
)
def test_empty_header_only_and_binary_files_fail_with_one_line(
    tmp_path, kind, content, message, write_lines
):
    write_lines(tmp_path / "sample_skeleton_train.csv", [impression(1, 0, 0, "c", 5)])
    write_lines(tmp_path / "common_features_train.csv", [user("c", 3)])
    write_lines(tmp_path / "ground_truth_train.csv", [TRUTH_HEADER, "1,0.5,0.5,0"])
    bad = tmp_path / f"{kind}_train.csv"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        ReadAliCCP(str(tmp_path), fields=FIELDS)
    assert str(bad) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_header_line_is_skipped_not_rejected(
    tmp_path, reasons_are, run_reader, write_lines
):
    write_lines(
        tmp_path / "sample_skeleton_train.csv",
        [HEADER_LINE, impression(1, 1, 0, "cA", 501), impression(2, 0, 0, "cA", 502)],
    )
    write_lines(
        tmp_path / "common_features_train.csv",
        ["common_feature_index,num_features,feature_list", user("cA", 11)],
    )
    reader = ReadAliCCP(str(tmp_path), fields=FIELDS)
    assert reader.split_files == {keys.TRAIN_SPLIT: [str(tmp_path / "sample_skeleton_train.csv")]}
    counters = run_reader(
        reader,
        equal_to([
            row(1, keys.TRAIN_SPLIT, 1, 0, 11, 501),
            row(2, keys.TRAIN_SPLIT, 0, 0, 11, 502),
        ]),
        reasons_are([]),
    )
    assert counters["header_lines_skipped"] == 2
    assert counters["rows_read"] == 2


def test_is_header_line():
    assert raw_logs.is_header_line(HEADER_LINE.encode())
    assert raw_logs.is_header_line(b"id,click,buy")
    assert not raw_logs.is_header_line(impression(1, 0, 0, "c", 5).encode())
    assert not raw_logs.is_header_line(b"sample_id,,conversion")
    assert not raw_logs.is_header_line(b"cA,1,101\x0211\x031.0")
    assert not raw_logs.is_header_line(b"id,\xff")


def test_missing_files_fail_with_one_line(tmp_path, write_lines):
    with pytest.raises(ValueError, match="No input files match"):
        ReadAliCCP(str(tmp_path / "nothing*"))
    (tmp_path / "sample_train.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match="extract the Tianchi"):
        ReadAliCCP(str(tmp_path))
    write_lines(tmp_path / "sample_skeleton_test.csv", [])
    with pytest.raises(ValueError, match="no common_features_test"):
        ReadAliCCP(str(tmp_path))
