import apache_beam as beam
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.transforms.oov import CountOOV
from beam_jobs.transforms.vocabularies import write_vocabulary
from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys


def test_values_missing_the_vocabulary_are_counted_per_feature(
    tmp_path, make_pipeline
):
    write_vocabulary(str(tmp_path), "item", ["7", "3"])
    write_vocabulary(str(tmp_path), "city", ["oslo"])
    schema = Schema(features=[
        FeatureSpec("item", keys.CATEGORICAL_INT, vocab_size=2,
                    vocab_file="vocab/item.txt", embedding_group="item"),
        FeatureSpec("hist", keys.MULTI_CATEGORICAL, vocab_size=2, max_len=3,
                    vocab_file="vocab/item.txt", embedding_group="item"),
        FeatureSpec("city", keys.CATEGORICAL_STRING, vocab_size=1,
                    vocab_file="vocab/city.txt"),
        FeatureSpec("tags", keys.MULTI_CATEGORICAL, value_dtype="string",
                    vocab_size=0, vocab_file="vocab/tags.txt"),
        FeatureSpec("device", keys.CATEGORICAL_STRING, hash_buckets=4),
        FeatureSpec("price", keys.NUMERIC),
    ])
    rows = [
        {"item": 7, "hist": [3, 8, 9], "city": "oslo", "tags": ["a"],
         "device": "ios", "price": 1.0},
        {"item": 5, "hist": [], "city": None, "tags": ["a", "b"],
         "device": "web", "price": None},
        {"item": 3, "hist": [7], "city": "lima", "tags": [], "device": None,
         "price": 2.0},
    ]
    with make_pipeline() as p:
        counts = (
            p | beam.Create([("eval", r) for r in rows])
            | CountOOV(schema, str(tmp_path))
        )
        assert_that(counts, equal_to([
            ("item", {"values": 3, "oov": 1}),
            ("hist", {"values": 4, "oov": 2}),
            ("city", {"values": 2, "oov": 1}),
            # An empty vocabulary: every value goes to an OOV bucket.
            ("tags", {"values": 3, "oov": 3}),
        ]))
