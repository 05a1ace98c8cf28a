import apache_beam as beam
import tensorflow as tf
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.transforms.encode_example_fn import EncodeExampleFn
from beam_jobs.transforms.encode_example_fn import shard_of
from tfcvr.features.input_spec import InputSpec

SPEC = InputSpec.from_dict({"columns": {"price": {"kind": "numeric"}}})


def _decode(element):
    (split, shard), (key, payload) = element
    example = tf.train.Example.FromString(payload)
    price = example.features.feature["price"].float_list.value[0]
    return split, shard, key, price


def test_shard_of_is_stable_and_in_range():
    shards = [shard_of(f"k{i}", 4) for i in range(4000)]
    assert shards[:5] == [shard_of(f"k{i}", 4) for i in range(5)]
    assert set(shards) == {0, 1, 2, 3}
    assert min(shards.count(s) for s in range(4)) > 850


def test_encode_fn_keys_by_split_and_shard(make_pipeline):
    rows = [
        ("train", {"price": 1.5, "click": 1, "conversion": 0, KEY_FIELD: "a"}),
        ("eval", {"price": 2.5, "click": 0, "conversion": 0, KEY_FIELD: "b"}),
    ]
    fn = EncodeExampleFn(SPEC.to_schema(), {"train": 3, "eval": 1})
    with make_pipeline() as p:
        out = p | beam.Create(rows) | beam.ParDo(fn) | beam.Map(_decode)
        assert_that(
            out,
            equal_to([("train", shard_of("a", 3), "a", 1.5), ("eval", 0, "b", 2.5)]),
        )
