import random

import pytest

from beam_jobs.readers.aliccp import fields as F


def test_parse_feature_list_keeps_log_order_and_values():
    text = "101\x0231\x031.0\x01109_14\x027\x030.693\x01109_14\x025\x032"
    assert F.parse_feature_list(text) == [
        ("101", 31, 1.0),
        ("109_14", 7, 0.693),
        ("109_14", 5, 2.0),
    ]
    assert F.parse_feature_list("") == []


def test_format_and_parse_round_trip():
    entries = [("205", 123456789, 1.0), ("150_14", 3, 0.125), ("853", 0, 7.5)]
    assert F.parse_feature_list(F.format_feature_list(entries)) == entries
    line = F.format_skeleton_line(9, 1, 0, "abc", entries)
    columns = line.split(",")
    assert columns[:5] == ["9", "1", "0", "abc", "3"]
    assert F.parse_counted_feature_list(columns[4], columns[5]) == entries
    common = F.format_common_line("abc", entries[:1]).split(",")
    assert common[:2] == ["abc", "1"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("101\x0231", "is not field"),
        ("101\x031\x031.0", "is not field"),
        ("\x0231\x031.0", "is not field"),
        ("101\x02-3\x031.0", "non-integer feature id"),
        ("101\x023.5\x031.0", "non-integer feature id"),
        ("101\x02\x031.0", "non-integer feature id"),
        ("101\x023\x03x", "non-numeric or non-finite"),
        ("101\x023\x03nan", "non-numeric or non-finite"),
        ("101\x023\x031.0\x01", "entry 1"),
    ],
)
def test_broken_feature_lists(text, message):
    with pytest.raises(F.FeatureListError, match=message) as info:
        F.parse_feature_list(text)
    assert info.value.reason == "bad_feature_list"


def test_num_features_checks():
    with pytest.raises(F.FeatureListError) as info:
        F.parse_counted_feature_list("x", "101\x023\x031.0")
    assert info.value.reason == "bad_num_features"
    with pytest.raises(F.FeatureListError) as info:
        F.parse_counted_feature_list("2", "101\x023\x031.0")
    assert info.value.reason == "num_features_mismatch"
    assert F.parse_counted_feature_list("0", "") == []


def test_build_columns_merges_groups_in_order():
    own = {"205": [(5, 1.0)], "109_14": [(1, 0.5)]}
    common = {"101": [(3, 1.0)], "109_14": [(2, 1.5), (4, 2.5)]}
    columns, repeated = F.build_columns(
        (own, common),
        ("101", "205", "126", "109_14", "150_14"),
        {"109_14", "150_14"},
        True,
        2,
        "first",
    )
    assert repeated == []
    assert columns == {
        "f101": 3,
        "f205": 5,
        "f126": None,
        "f109_14": [1, 2],
        "f109_14__weight": [0.5, 1.5],
        "f150_14": [],
        "f150_14__weight": [],
    }


def test_build_columns_repeats():
    groups = ({"205": [(5, 1.0), (6, 1.0)]}, {"205": [(7, 1.0)]})
    for policy, expected in (("first", 5), ("last", 7)):
        columns, repeated = F.build_columns(
            groups, ("205",), set(), True, 20, policy
        )
        assert columns == {"f205": expected}
        assert repeated == ["205"]
    columns, repeated = F.build_columns(groups, ("205",), set(), True, 20, "reject")
    assert columns is None and repeated == ["205"]


def test_resolve_fields_presets():
    fields, multi = F.resolve_fields("esmm", None)
    assert len(fields) == 23
    assert multi == {"109_14", "110_14", "127_14", "150_14", "210", "853"}
    fields, multi = F.resolve_fields("aitm", None)
    assert len(fields) == 18 and multi == frozenset()
    assert "210" not in fields and "109_14" not in fields
    fields, multi = F.resolve_fields(["101", "150_14"], None)
    assert fields == ("101", "150_14") and multi == {"150_14"}
    fields, multi = F.resolve_fields(["101", "205"], ["205"])
    assert multi == {"205"}
    fields, multi = F.resolve_fields([101, "109_14"], [101])
    assert fields == ("101", "109_14") and multi == {"101"}
    with pytest.raises(ValueError, match="field ids"):
        F.resolve_fields([True], None)
    assert F.column_name("109_14") == "f109_14"
    assert F.id_roles(("205",)) == {"item_id": "f205"}


def test_fast_path_parses_exactly_like_the_checked_parser():
    # Well-formed lists skip the per-entry checks; every list, well formed
    # or not, must give the checked parser's entries or its error reason.
    rng = random.Random(0)
    pieces = ["101", "109_14", "\x01", "\x02", "\x03", "7", "12", "0.5", "1e999",
              "-2.5e-3", "nan", "inf", " 1", "1_0", ".5", "5.", "x", "", "\x02\x03"]
    texts = [
        "101\x0211\x031.0\x01109_14\x025\x030.69315",
        "101\x0211\x031e999",
        "1\x021\x031e308\x012\x022\x031e308",  # finite values, infinite sum
    ] + ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
         for _ in range(3000)]

    def outcome(parse, text):
        try:
            return parse(text)
        except F.FeatureListError as e:
            return e.reason

    for text in texts:
        assert outcome(F.parse_feature_list, text) == outcome(
            F._parse_feature_list_checked, text), repr(text)
