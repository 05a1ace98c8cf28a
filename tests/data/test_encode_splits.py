import importlib
import json
import logging
import os
import shutil

import numpy as np
import pytest

from tfcvr.data import DatasetDir
from tfcvr.data import EncodedManifest
from tfcvr.data import encode_split
from tfcvr.data import encode_splits
from tfcvr.features import keys
from tfcvr.testing.tiny_model import write_tiny_dataset_dir

# The module, which the package's `encode_splits` function hides.
encoder = importlib.import_module("tfcvr.data.encode_splits")
# The fixture's chunks (tests/data/conftest.py).
CHUNK_ROWS = 64


def _copy(encoded_dir, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(encoded_dir, path)
    return path


def test_manifest_accounts_for_every_row(encoded_dir):
    manifest = EncodedManifest.load(encoded_dir, keys.TRAIN_SPLIT)
    assert manifest.rows == 600 and manifest.chunk_rows == CHUNK_ROWS
    # One encoded shard per raw shard; 10 chunks dealt round-robin, the
    # last (24 rows) to shard 0.
    assert [s["rows"] for s in manifest.shards] == [216, 192, 192]
    assert [s["chunks"] for s in manifest.shards] == [4, 3, 3]
    assert [f["file"] for f in manifest.raw_files] == [
        os.path.join(keys.TRAIN_SPLIT, f"part-0000{i}.tfrecord.gz") for i in range(3)]
    names = [c["name"] for c in manifest.columns]
    assert names[-3:] == [keys.CLICK, keys.CONVERSION, keys.ROW_ID]
    assert "history__weight" in names
    with open(EncodedManifest.path(encoded_dir, keys.EVAL_SPLIT)) as f:
        assert json.load(f)["rows"] == 150
    # Nothing but the shards and the manifest, no temporary directories.
    assert sorted(os.listdir(os.path.join(encoded_dir, keys.ENCODED_DIR))) == [
        keys.EVAL_SPLIT, keys.TRAIN_SPLIT]


def test_a_changed_vocabulary_is_detected_and_not_used(encoded_dir, tmp_path, caplog):
    path = _copy(encoded_dir, tmp_path)
    with open(os.path.join(path, keys.VOCAB_DIR, "city.txt"), "a") as f:
        f.write("atlantis\n")
    data = DatasetDir(path)
    with caplog.at_level(logging.WARNING, logger="tfcvr.data.dataset_dir"):
        assert data.format_of(keys.TRAIN_SPLIT) == "raw"
        data.dataset(keys.TRAIN_SPLIT, 64)
    stale = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
    assert len(stale) == 1 and "vocabulary changed" in stale[0], caplog.text
    with pytest.raises(ValueError, match="vocabulary changed.*tfcvr encode"):
        DatasetDir(path, input_format="encoded").dataset(keys.TRAIN_SPLIT, 64)
    # Encoding again makes them valid.
    encode_splits(path, chunk_rows=CHUNK_ROWS)
    assert DatasetDir(path).format_of(keys.TRAIN_SPLIT) == "encoded"


def test_changed_raw_shards_or_missing_shards_are_stale(encoded_dir, tmp_path):
    path = _copy(encoded_dir, tmp_path)
    os.remove(os.path.join(path, keys.TRAIN_SPLIT, "part-00002.tfrecord.gz"))
    assert DatasetDir(path).format_of(keys.TRAIN_SPLIT) == "raw"
    manifest = EncodedManifest.load(path, keys.EVAL_SPLIT)
    with open(manifest.files(path)[0], "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="missing or truncated"):
        DatasetDir(path, "encoded").format_of(keys.EVAL_SPLIT)


def test_a_directory_never_encoded_reads_raw(tmp_path):
    path = write_tiny_dataset_dir(str(tmp_path / "data"), rows=40, eval_rows=8)
    assert DatasetDir(path).format_of(keys.TRAIN_SPLIT) == "raw"
    with pytest.raises(ValueError, match="never encoded.*tfcvr encode"):
        DatasetDir(path, "encoded").format_of(keys.TRAIN_SPLIT)


def test_an_interrupted_encoding_leaves_the_old_shards(encoded_dir, tmp_path, monkeypatch):
    path = _copy(encoded_dir, tmp_path)
    before = EncodedManifest.load(path, keys.TRAIN_SPLIT)
    calls = []

    def failing(values, columns):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(values, columns)

    real = encoder._chunk_record
    monkeypatch.setattr(encoder, "_chunk_record", failing)
    with pytest.raises(KeyboardInterrupt):
        encode_split(path, keys.TRAIN_SPLIT, chunk_rows=32)
    assert EncodedManifest.load(path, keys.TRAIN_SPLIT) == before
    assert DatasetDir(path).format_of(keys.TRAIN_SPLIT) == "encoded"
    assert sorted(os.listdir(os.path.join(path, keys.ENCODED_DIR))) == [
        keys.EVAL_SPLIT, keys.TRAIN_SPLIT]


def test_rows_encoded_must_equal_records_read(encoded_dir, tmp_path, monkeypatch):
    path = _copy(encoded_dir, tmp_path)
    shutil.rmtree(os.path.join(path, keys.ENCODED_DIR, keys.TRAIN_SPLIT))
    real = encoder._count_records
    monkeypatch.setattr(encoder, "_count_records", lambda files: real(files) + 1)
    with pytest.raises(RuntimeError, match="601 records read but 600 rows encoded"):
        encode_split(path, keys.TRAIN_SPLIT)
    assert EncodedManifest.load(path, keys.TRAIN_SPLIT) is None
    assert DatasetDir(path).format_of(keys.TRAIN_SPLIT) == "raw"


def test_re_encoding_replaces_the_split(encoded_dir, tmp_path):
    path = _copy(encoded_dir, tmp_path)
    manifest = encode_split(path, keys.EVAL_SPLIT, chunk_rows=100, num_shards=2)
    assert [s["rows"] for s in manifest.shards] == [100, 50]
    assert sorted(os.listdir(os.path.join(path, keys.ENCODED_DIR, keys.EVAL_SPLIT))) == [
        keys.ENCODED_MANIFEST_FILE, "part-00000-of-00002.tfrecord",
        "part-00001-of-00002.tfrecord"]
    ids = np.concatenate([y[keys.ROW_ID].numpy() for _, y in DatasetDir(path, "encoded").dataset(
        keys.EVAL_SPLIT, 64, training=False, include_extra=True)])
    np.testing.assert_array_equal(ids, np.arange(150))


def test_bad_arguments_and_missing_splits(encoded_dir):
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        encode_split(encoded_dir, keys.TRAIN_SPLIT, chunk_rows=0)
    with pytest.raises(ValueError, match="No TFRecords for split 'test'"):
        encode_splits(encoded_dir, ("test",), required=True)
    assert encode_splits(encoded_dir, ("test",)) == {}
