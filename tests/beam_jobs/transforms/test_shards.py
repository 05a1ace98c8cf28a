import glob
import json
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.transforms.shards import JSONL
from beam_jobs.transforms.shards import EncodeExampleFn
from beam_jobs.transforms.shards import WriteShards
from beam_jobs.transforms.shards import shard_of
from beam_jobs.transforms.shards import tfrecord_frame
from tfcvr.features.input_spec import InputSpec


def _records(n, shards):
    return [
        (("train", i % shards), (f"key{i:03d}", f"payload-{i}".encode()))
        for i in range(n)
    ]


def _write(make_pipeline, out_dir, elements, num_shards, file_format="tfrecord_gz"):
    with make_pipeline() as p:
        counts = (
            p
            | beam.Create(elements)
            | WriteShards(str(out_dir), num_shards, file_format)
            | beam.CombinePerKey(sum)
        )
        expected = {}
        for (group, _), _ in elements:
            expected[group] = expected.get(group, 0) + 1
        for group in num_shards:
            expected.setdefault(group, 0)
        assert_that(counts, equal_to(sorted(expected.items())))


def test_writes_sorted_gzip_tfrecords_and_empty_shards(tmp_path, make_pipeline):
    elements = _records(30, shards=2)  # shard 2 of 3 stays empty
    _write(make_pipeline, tmp_path, list(reversed(elements)), {"train": 3, "eval": 2})
    files = sorted(os.listdir(tmp_path / "train"))
    assert files == [f"part-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert len(os.listdir(tmp_path / "eval")) == 2
    for shard in range(2):
        path = str(tmp_path / "train" / files[shard])
        got = [r.numpy() for r in tf.data.TFRecordDataset(path, "GZIP")]
        want = [p for (_, s), (_, p) in sorted(elements, key=lambda e: e[1][0])
                if s == shard]
        assert got == want
    empty = str(tmp_path / "train" / files[2])
    assert list(tf.data.TFRecordDataset(empty, "GZIP")) == []


def test_bytes_are_identical_across_runs(tmp_path, make_pipeline):
    elements = _records(50, shards=2)
    _write(make_pipeline, tmp_path / "a", elements, {"train": 2})
    _write(make_pipeline, tmp_path / "b", list(reversed(elements)), {"train": 2})
    for path in glob.glob(str(tmp_path / "a" / "train" / "*")):
        other = path.replace(f"{os.sep}a{os.sep}", f"{os.sep}b{os.sep}")
        with open(path, "rb") as f, open(other, "rb") as g:
            assert f.read() == g.read()


def test_jsonl_lines(tmp_path, make_pipeline):
    lines = [(("rejected", 0), (k, json.dumps({"k": k}).encode() + b"\n"))
             for k in ("b", "a")]
    _write(make_pipeline, tmp_path, lines, {"rejected": 1}, JSONL)
    text = (tmp_path / "rejected" / "part-00000-of-00001.jsonl").read_text()
    assert text == '{"k": "a"}\n{"k": "b"}\n'


def test_tfrecord_frame_matches_tf_writer(tmp_path):
    path = str(tmp_path / "ref.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"hello")
    with open(path, "rb") as f:
        assert f.read() == tfrecord_frame(b"hello")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="file_format"):
        WriteShards(str(tmp_path), {"train": 1}, "csv")
    with pytest.raises(ValueError, match="num_shards"):
        WriteShards(str(tmp_path), {"train": 0})


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
