"""`--vocab-from` and whole-input splits: held-out logs with the training
vocabulary."""

import glob
import json
import os

import pytest
import tensorflow as tf

from beam_jobs import preprocess
from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint as vf
from tfcvr.features.input_spec import SPEC_FILE


def _run(path, out, *flags):
    return preprocess.run_job(
        ["--input", str(path), "--format", "csv", "--out", str(out), "--quiet",
         *flags]
    )


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocab_from")
    logs = root / "logs"
    logs.mkdir()
    impression_frame(rows=200, seed=0).to_csv(logs / "train.csv", index=False)
    (logs / "spec.json").write_text(json.dumps(impression_spec()))
    _run(logs / "train.csv", root / "data")
    test = root / "test"
    test.mkdir()
    impression_frame(rows=80, seed=9).to_csv(test / "test.csv", index=False)
    return root / "data", test / "test.csv"


def _records(out, split):
    return sum(1 for f in glob.glob(os.path.join(out, split, "*.tfrecord.gz"))
               for _ in tf.data.TFRecordDataset(f, "GZIP"))


def _vocab(data, name):
    return (data / keys.VOCAB_DIR / f"{name}.txt").read_text().splitlines()


def test_held_out_log_keeps_the_training_encoding_and_counts_unseen_values(
    train_data, tmp_path
):
    data, test = train_data
    out = tmp_path / "held"
    # No --spec: the one recorded in the vocabulary's directory is used.
    summary = _run(test, out, "--vocab-from", str(data), "--split", "eval")

    assert summary["rows_written"] == {keys.TRAIN_SPLIT: 0, keys.EVAL_SPLIT: 80}
    assert _records(str(out), keys.EVAL_SPLIT) == 80
    assert _records(str(out), keys.TRAIN_SPLIT) == 0
    for name in ("item", "city", "tags", "user_id"):
        assert (out / "vocab" / f"{name}.txt").read_bytes() == (
            data / "vocab" / f"{name}.txt").read_bytes()
    source, held = Schema.load(str(data)), Schema.load(str(out))
    assert held.features == source.features
    fingerprint = vf.directory_fingerprint(str(data))
    assert vf.check_same_vocabulary(str(data), str(out)) == fingerprint
    assert held.metadata[vf.METADATA_KEY] == fingerprint
    assert summary["vocab_from"] == {"dir": str(data), vf.METADATA_KEY: fingerprint}
    assert json.loads((out / SPEC_FILE).read_text()) == json.loads(
        (data / SPEC_FILE).read_text())

    # Unseen values, counted independently from the vocabulary files.
    frame = impression_frame(rows=80, seed=9)
    items = set(_vocab(data, "item"))
    hist = [t for h in frame["hist"] if isinstance(h, str)
            for t in h.split("|")[:5] if t]
    expected = {
        "item_id": (80, sum(str(v) not in items for v in frame["item_id"])),
        "hist": (len(hist), sum(t not in items for t in hist)),
        "user_id": (80, sum(str(v) not in set(_vocab(data, "user_id"))
                            for v in frame["user_id"])),
    }
    for feature, (values, oov) in expected.items():
        assert summary["oov"][feature] == {"values": values, "oov": oov}
    assert summary["oov"]["hist"]["oov"] > 0  # the check can fail
    assert set(summary["oov"]) == {"user_id", "item_id", "city", "hist", "tags"}


def test_whole_input_splits_and_eval_fraction_one(train_data, tmp_path):
    data, test = train_data
    summary = _run(test, tmp_path / "a", "--vocab-from", str(data),
                   "--eval-fraction", "1")
    assert summary["split"]["method"] == keys.EVAL_SPLIT
    assert summary["rows_written"][keys.EVAL_SPLIT] == 80
    summary = _run(test, tmp_path / "b", "--split", "train",
                   "--spec", str(data / SPEC_FILE))
    assert summary["rows_written"] == {keys.TRAIN_SPLIT: 80, keys.EVAL_SPLIT: 0}
    assert Schema.load(str(tmp_path / "b"))["user_id"].vocab_size > 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--split", "eval"], "pass --vocab-from DIR"),
        (["--eval-fraction", "1", "--split", "time"], "use --split eval"),
        (["--eval-fraction", "1.5"], "must be in [0, 1]"),
        (["--vocab-from", "{data}", "--min-count", "2"], "keeps the vocabularies"),
        (["--vocab-from", "{tmp}"], "has no schema.json"),
        (["--vocab-from", "{data}", "--spec", "{tmp}/spec.json"],
         "user_id (kind, value_dtype)"),
        (["--vocab-from", "{data}", "--split", "eval", "--split-timestamp", "5"],
         "only applies to time splits"),
    ],
)
def test_refusals_are_one_line(train_data, tmp_path, flags, message):
    data, test = train_data
    other = impression_spec()
    other["columns"]["user_id"] = {"kind": "categorical_string"}
    (tmp_path / "spec.json").write_text(json.dumps(other))
    flags = [f.format(data=data, tmp=tmp_path) for f in flags]
    with pytest.raises(ValueError) as info:
        _run(test, tmp_path / "out", *flags)
    assert message in str(info.value) and "\n" not in str(info.value)
