import collections
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.transforms.statistics import AccumulateMomentsFn
from beam_jobs.transforms.statistics import ComputeNumericStats
from beam_jobs.transforms.statistics import CountPerBundleFn
from beam_jobs.transforms.statistics import add_value
from beam_jobs.transforms.statistics import constant_key
from beam_jobs.transforms.statistics import empty_moments
from beam_jobs.transforms.statistics import merge_moments
from beam_jobs.transforms.statistics import moments_to_stats
from beam_jobs.transforms.statistics import transform_value
from tfcvr.features.input_spec import InputSpec


SPEC = InputSpec.from_dict({
    "columns": {
        "price": {"kind": "numeric", "log": True, "clip_max": 3.0},
        "age": {"kind": "numeric", "clip_min": 20.0},
        "flat": {"kind": "numeric"},
        "empty": {"kind": "numeric"},
        "city": {"kind": "categorical_string"},
    },
})


def _moments(values):
    moments = empty_moments()
    for v in values:
        add_value(moments, v)
    return moments


def test_transform_value():
    assert transform_value(-5.0, log=True) == 0.0
    assert transform_value(np.e - 1, log=True) == pytest.approx(1.0)
    assert transform_value(100.0, log=True, clip_max=3.0) == 3.0
    assert transform_value(1.0, clip_min=2.0) == 2.0


def test_stats_match_numpy_population_std():
    rng = np.random.default_rng(0)
    values = list(rng.lognormal(1.0, 2.0, 5000)) + [0.0, -2.5, 1e-300]
    stats = moments_to_stats(_moments(values))
    assert stats["count"] == len(values)
    assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert stats["std"] == pytest.approx(np.std(values), rel=1e-9)
    assert (stats["min"], stats["max"]) == (min(values), max(values))


def test_merging_is_exact_in_any_order():
    rng = random.Random(1)
    values = [rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-8, 8) for _ in range(3000)]
    whole = moments_to_stats(_moments(values))
    for seed in range(3):
        shuffled = values[:]
        random.Random(seed).shuffle(shuffled)
        parts = [_moments(shuffled[i:i + 257]) for i in range(0, 3000, 257)]
        random.Random(seed).shuffle(parts)
        assert moments_to_stats(merge_moments(parts)) == whole  # bit-identical


def test_constant_and_empty_columns():
    assert moments_to_stats(_moments([4.2] * 10))["std"] == 1.0
    assert moments_to_stats(empty_moments()) == {
        "count": 0, "mean": 0.0, "std": 1.0, "min": None, "max": None
    }


def test_pipeline_applies_log_clip_and_skips_missing(make_pipeline):
    rows = [
        {"price": 0.0, "age": 10.0, "flat": 2.0, "empty": None, "city": "a"},
        {"price": 100.0, "age": 40.0, "flat": 2.0, "empty": None, "city": "b"},
        {"price": np.e - 1, "age": None, "flat": 2.0, "empty": None, "city": "c"},
    ]
    price = [0.0, 3.0, 1.0]  # log1p, then clipped at 3
    age = [20.0, 40.0]  # clipped at 20, missing skipped
    expected = [
        ("price", moments_to_stats(_moments([transform_value(v) for v in price]))),
        ("age", moments_to_stats(_moments(age))),
        ("flat", {"count": 3, "mean": 2.0, "std": 1.0, "min": 2.0, "max": 2.0}),
    ]
    assert expected[0][1]["mean"] == pytest.approx(4.0 / 3.0)
    assert expected[1][1]["std"] == pytest.approx(10.0)
    with make_pipeline() as p:
        stats = p | beam.Create(rows) | ComputeNumericStats(SPEC)
        assert_that(stats, equal_to(expected))


def test_accumulate_fn_emits_one_partial_per_column(make_pipeline):
    rows = [{"price": 1.0, "age": 30.0, "flat": None, "empty": None}] * 4
    with make_pipeline() as p:
        partials = (
            p
            | beam.Create(rows)
            | beam.ParDo(AccumulateMomentsFn(SPEC))
            | beam.MapTuple(lambda name, m: name)
        )
        assert_that(
            partials | beam.combiners.Count.PerElement(),
            equal_to([("price", 1), ("age", 1)]),
        )


def _letters(word):
    return list(word)


@pytest.mark.parametrize("max_entries", [1, 2, 1000])
def test_counts_match_a_counter_even_with_flushes(make_pipeline, max_entries):
    words = ["abc", "aab", "", "cab", "zz"]
    expected = collections.Counter("".join(words))
    with make_pipeline() as p:
        counts = (
            p
            | beam.Create(words)
            | beam.ParDo(CountPerBundleFn(_letters, max_entries=max_entries))
            | beam.CombinePerKey(sum)
        )
        assert_that(counts, equal_to(sorted(expected.items())))


def test_constant_key_counts_elements(make_pipeline):
    with make_pipeline() as p:
        counts = (
            p
            | beam.Create(range(17))
            | beam.ParDo(CountPerBundleFn(constant_key))
            | beam.CombinePerKey(sum)
        )
        assert_that(counts, equal_to([("rows", 17)]))


def test_rejects_bad_max_entries():
    with pytest.raises(ValueError, match="max_entries"):
        CountPerBundleFn(_letters, max_entries=0)
