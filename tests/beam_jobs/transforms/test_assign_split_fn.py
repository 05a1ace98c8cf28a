import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.transforms.assign_split_fn import AssignSplitFn
from beam_jobs.transforms.assign_split_fn import key_fraction


def _rows(n):
    return [{KEY_FIELD: f"k{i}", TIMESTAMP_FIELD: float(i)} for i in range(n)]


def _check(make_pipeline, rows, fn, splits, train=None, rejected=(), cut=None):
    """Runs `fn` and checks `(key, split)` pairs, train keys and reasons."""
    if train is None:
        train = [k for k, s in splits if s == "train"]
    with make_pipeline() as p:
        out = p | beam.Create(rows) | beam.ParDo(fn, cut=cut).with_outputs(
            "train_rows", "rejected", main="split_rows"
        )
        assert_that(
            out.split_rows | beam.MapTuple(lambda s, r: (r[KEY_FIELD], s)),
            equal_to(list(splits)),
            label="splits",
        )
        assert_that(
            out.train_rows | beam.Map(lambda r: r[KEY_FIELD]),
            equal_to(list(train)),
            label="train",
        )
        assert_that(
            out.rejected | beam.Map(lambda r: r["reason"]),
            equal_to(list(rejected)),
            label="rejected",
        )


def test_key_fraction_is_stable_and_uniform():
    values = [key_fraction(f"row{i}") for i in range(20000)]
    assert values[:3] == [key_fraction(f"row{i}") for i in range(3)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(v < 0.1 for v in values) / len(values) - 0.1) < 0.01


def test_hash_split_depends_only_on_the_key(make_pipeline):
    rows = _rows(400)
    expected = [
        (r[KEY_FIELD], "eval" if key_fraction(r[KEY_FIELD]) < 0.25 else "train")
        for r in rows
    ]
    assert 60 < sum(s == "eval" for _, s in expected) < 140
    fn = AssignSplitFn("hash", eval_fraction=0.25)
    _check(make_pipeline, rows, fn, expected)
    _check(make_pipeline, list(reversed(rows)), fn, expected)


def test_time_split_uses_the_cut(make_pipeline):
    fn = AssignSplitFn("time", 0.3)
    expected = [(f"k{t}", "train" if t < 7 else "eval") for t in range(10)]
    _check(make_pipeline, _rows(10), fn, expected, cut=7.0)
    _check(make_pipeline, _rows(3), fn, [(f"k{t}", "train") for t in range(3)])


def test_auto_prefers_the_source_split_then_time(make_pipeline):
    rows = [
        {KEY_FIELD: "a", TIMESTAMP_FIELD: 1.0, SPLIT_FIELD: "eval"},
        {KEY_FIELD: "b", TIMESTAMP_FIELD: 9.0},
        {KEY_FIELD: "c", TIMESTAMP_FIELD: 1.0},
    ]
    _check(
        make_pipeline, rows, AssignSplitFn("auto", 0.1, use_time=True),
        [("a", "eval"), ("b", "eval"), ("c", "train")], cut=5.0,
    )


def test_unplaceable_rows_are_dead_letters(make_pipeline):
    _check(
        make_pipeline, [{KEY_FIELD: "a", SPLIT_FIELD: "test"}],
        AssignSplitFn("source", 0.1), [], rejected=[dl.BAD_SPLIT],
    )
    _check(
        make_pipeline,
        [{KEY_FIELD: "b"}, {KEY_FIELD: "c", TIMESTAMP_FIELD: 1.0}],
        AssignSplitFn("time", 0.1), [("c", "eval")],
        rejected=[dl.MISSING_TIMESTAMP], cut=0.5,
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="split method"):
        AssignSplitFn("random")
    with pytest.raises(ValueError, match="eval_fraction"):
        AssignSplitFn("hash", eval_fraction=-0.1)
