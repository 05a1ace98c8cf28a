import collections

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.transforms.count_per_bundle import CountPerBundleFn
from beam_jobs.transforms.count_per_bundle import constant_key


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
