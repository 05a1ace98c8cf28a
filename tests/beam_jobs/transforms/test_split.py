import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.transforms.split import AssignSplitFn
from beam_jobs.transforms.split import ComputeTimeCut
from beam_jobs.transforms.split import key_fraction
from beam_jobs.transforms.split import time_cut_from_counts


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


def test_cut_takes_the_last_fraction_of_rows():
    counts = [(float(t), 1) for t in range(100)]
    assert time_cut_from_counts(counts, 0.1) == 90.0
    assert time_cut_from_counts(counts, 0.25) == 75.0
    assert time_cut_from_counts(reversed(counts), 0.1) == 90.0


def test_ties_and_degenerate_inputs():
    # 80 rows at t=1 and 20 at t=2: 20% eval is the closest to 10%.
    assert time_cut_from_counts([(1.0, 80), (2.0, 20)], 0.1) == 2.0
    # Never the earliest time: train keeps rows even for a large fraction.
    assert time_cut_from_counts([(1.0, 5), (2.0, 95)], 0.9) == 2.0
    # Equal gaps: the later cut (smaller eval).
    assert time_cut_from_counts([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 0.375) == 4.0
    assert time_cut_from_counts([(5.0, 10)], 0.1) is None
    assert time_cut_from_counts([(1.0, 5), (2.0, 5)], 0.0) is None
    assert time_cut_from_counts([], 0.1) is None


def test_pipeline_cut(make_pipeline):
    rows = [{TIMESTAMP_FIELD: float(t % 50)} for t in range(200)] + [{}]
    with make_pipeline() as p:
        cut = p | beam.Create(rows) | ComputeTimeCut(0.2)
        assert_that(cut, equal_to([40.0]))


def test_bad_fraction():
    with pytest.raises(ValueError, match="eval_fraction"):
        ComputeTimeCut(1.0)
