import collections

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.transforms.vocabularies import ComputeVocabularies
from beam_jobs.transforms.vocabularies import CountTokensFn
from beam_jobs.transforms.vocabularies import MergeCountsCombineFn
from beam_jobs.transforms.vocabularies import select_tokens
from tfcvr.features.input_spec import InputSpec


def _spec(**vocab):
    return InputSpec.from_dict({
        "columns": {
            "item_id": {"kind": "categorical_int", "embedding_group": "item"},
            "hist": {"kind": "multi_categorical", "separator": "|",
                     "embedding_group": "item"},
            "city": {"kind": "categorical_string", "min_count": 2},
            "user_id": {"kind": "categorical_int", "hash_buckets": 50},
            "price": {"kind": "numeric"},
        },
        "vocab": vocab,
    })


ROWS = [
    {"item_id": 5, "hist": [5, 7, 7], "city": "oslo", "user_id": 1, "price": 1.0},
    {"item_id": 10, "hist": [], "city": "lima", "user_id": 2, "price": None},
    {"item_id": 7, "hist": [10], "city": "oslo", "user_id": 3, "price": 2.0},
    {"item_id": None, "hist": [9], "city": None, "user_id": None, "price": 3.0},
]


def test_select_tokens_min_count_top_k_and_ties():
    counts = [("b", 3), ("a", 3), ("c", 5), ("d", 1), ("10", 3)]
    assert select_tokens(counts) == [
        ("c", 5), ("10", 3), ("a", 3), ("b", 3), ("d", 1)
    ]
    assert select_tokens(counts, min_count=3) == [
        ("c", 5), ("10", 3), ("a", 3), ("b", 3)
    ]
    assert select_tokens(counts, min_count=2, top_k=2) == [("c", 5), ("10", 3)]
    assert select_tokens(counts, min_count=9) == []


def test_merge_counts_combine_fn_sums_partials():
    fn = MergeCountsCombineFn()
    a = fn.add_input(fn.create_accumulator(), {"x": 2, "y": 1})
    b = fn.add_input(fn.create_accumulator(), {"y": 4})
    merged = fn.merge_accumulators([a, b, fn.create_accumulator()])
    assert fn.extract_output(merged) == {"x": 2, "y": 5}
    assert fn.merge_accumulators([]) == {}


def test_groups_share_a_vocabulary_and_hashed_columns_have_none(make_pipeline):
    item_counts = collections.Counter(["5", "10", "7", "5", "7", "7", "10", "9"])
    with make_pipeline() as p:
        vocabs = p | beam.Create(ROWS) | ComputeVocabularies(_spec())
        assert_that(
            vocabs,
            equal_to([
                ("item", select_tokens(item_counts.items())),
                ("city", [("oslo", 2)]),  # lima is below the column min_count
            ]),
        )
    assert select_tokens(item_counts.items())[:2] == [("7", 3), ("10", 2)]


def test_global_min_count_and_top_k(make_pipeline):
    with make_pipeline() as p:
        vocabs = p | beam.Create(ROWS) | ComputeVocabularies(
            _spec(min_count=2, top_k=2)
        )
        assert_that(
            vocabs,
            equal_to([("item", [("7", 3), ("10", 2)]), ("city", [("oslo", 2)])]),
        )


def test_count_tokens_fn_flushes_partial_counts(make_pipeline):
    rows = ROWS * 50
    with make_pipeline() as p:
        counts = (
            p
            | beam.Create(rows)
            | beam.ParDo(CountTokensFn(_spec(), max_entries=1))
            | beam.CombinePerKey(MergeCountsCombineFn())
        )
        assert_that(
            counts,
            equal_to([
                ("item", {"5": 100, "7": 150, "10": 100, "9": 50}),
                ("city", {"oslo": 100, "lima": 50}),
            ]),
        )


def test_count_tokens_fn_rejects_bad_max_entries():
    with pytest.raises(ValueError, match="max_entries"):
        CountTokensFn(_spec(), max_entries=0)
