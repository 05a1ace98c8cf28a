"""End-to-end runs of `beam_jobs.preprocess.run` on small generated logs."""

import collections
import glob
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from beam_jobs import preprocess
from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.aliccp.fields import format_common_line
from beam_jobs.readers.aliccp.fields import format_skeleton_line
from beam_jobs.transforms.split import key_fraction
from tfcvr.features import Schema
from tfcvr.features import keys

ROWS = 300


def _bad_records(frame):
    """Bad copies of valid rows (new row ids) and their expected reasons."""
    base = frame.iloc[0].to_dict()
    bad = []
    for i, (changes, reason) in enumerate([
        ({keys.CLICK: 2}, dl.BAD_LABEL),
        ({keys.CLICK: 0, keys.CONVERSION: 1}, dl.CLICK0_CONVERSION1),
        ({"price": "cheap"}, dl.BAD_NUMERIC),
        ({"user_id": "u1"}, dl.BAD_CATEGORICAL),
    ]):
        bad.append(({**base, keys.ROW_ID: 10_000 + i, **changes}, reason))
    return bad


def _write_csv(path, frame, bad):
    frame.to_csv(path, index=False)
    lines = [
        ",".join(str(record[c]) for c in frame.columns) for record, _ in bad
    ]
    with open(path, "ab") as f:
        f.write(("\n".join(lines) + "\n").encode())
        f.write(b"1,2,3\n")  # wrong field count
        f.write(b"\n")  # blank line: skipped, not a row
        f.write(",".join(["9999"] + ["\xff"] * (len(frame.columns) - 1)).encode("latin-1") + b"\n")
    return [r for _, r in bad] + [dl.WRONG_FIELD_COUNT, dl.NON_UTF8]


def _write_jsonl(path, frame, bad):
    frame.to_json(path, orient="records", lines=True)
    with open(path, "a") as f:
        for record, _ in bad:
            f.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
        f.write("{truncated\n")
    return [r for _, r in bad] + [dl.BAD_JSON]


def _write_parquet(path, frame, bad):
    typed = [(r, reason) for r, reason in bad if reason in (
        dl.BAD_LABEL, dl.CLICK0_CONVERSION1)]
    extra = pd.DataFrame([r for r, _ in typed], columns=frame.columns)
    pd.concat([frame, extra.astype(frame.dtypes.to_dict())]).to_parquet(path)
    return [r for _, r in typed]


def _plain(value):
    return value.item() if hasattr(value, "item") else value


WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}


def _make_logs(tmp_path, fmt, spec=None, rows=ROWS, seed=0):
    frame = impression_frame(rows=rows, seed=seed)
    data = tmp_path / "logs"
    data.mkdir(exist_ok=True)
    path = data / f"log.{fmt}"
    reasons = WRITERS[fmt](path, frame, _bad_records(frame))
    spec_path = data / "spec.json"
    spec_path.write_text(json.dumps(spec or impression_spec()))
    return frame, str(path), collections.Counter(reasons)


def _run(path, fmt, out, *flags):
    return preprocess.run_job(
        ["--input", path, "--format", fmt, "--out", str(out), "--quiet", *flags]
    )


def _feature_spec(schema):
    """tf.io.parse_example features for every stored column of a schema."""
    spec = {}
    for f in schema.features:
        dtype = tf.string if f.value_dtype == "string" else tf.int64
        if f.kind == keys.NUMERIC:
            spec[f.name] = tf.io.FixedLenFeature([], tf.float32, np.nan)
        elif f.is_multi_valued:
            spec[f.name] = tf.io.RaggedFeature(dtype)
            if f.weighted:
                spec[f.name + "__weight"] = tf.io.RaggedFeature(tf.float32)
        else:
            default = "" if dtype == tf.string else -1
            spec[f.name] = tf.io.FixedLenFeature([], dtype, default)
    for label in schema.labels:
        spec[label] = tf.io.FixedLenFeature([], tf.int64)
    for column in schema.extra_columns:
        spec[column] = tf.io.FixedLenFeature([], tf.float32, np.nan)
    return spec


def _read_split(out, split, schema):
    files = sorted(glob.glob(os.path.join(str(out), split, "part-*.tfrecord.gz")))
    assert files
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]
    if not records:
        return {}
    parsed = tf.io.parse_example(records, _feature_spec(schema))
    return {
        k: v.to_list() if isinstance(v, tf.RaggedTensor) else v.numpy()
        for k, v in parsed.items()
    }


def _expected_vocab(tokens):
    counts = collections.Counter(str(t) for t in tokens)
    return [t for t, _ in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))]


def _dir_bytes(out):
    result = {}
    for path in sorted(glob.glob(os.path.join(str(out), "**", "*"), recursive=True)):
        if os.path.isfile(path) and not path.endswith("summary.json"):
            with open(path, "rb") as f:
                result[os.path.relpath(path, str(out))] = f.read()
    return result


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_end_to_end(tmp_path, fmt):
    frame, path, reasons = _make_logs(tmp_path, fmt)
    out = tmp_path / "out"
    flags = [] if fmt == "csv" else ["--spec", str(tmp_path / "logs" / "spec.json")]
    summary = _run(path, fmt, out, *flags)  # csv: spec.json found beside

    # Accounting: every record is written or rejected, with its reason.
    n_bad = sum(reasons.values())
    written = summary["rows_written"]
    assert summary["rows_read"] == ROWS + n_bad
    assert summary["rows_read"] == (
        written["train"] + written["eval"] + summary["rows_rejected_total"]
    )
    assert summary["accounting_ok"]
    assert summary["rows_read_counter"] == summary["rows_read"]
    assert summary["rows_rejected"] == dict(reasons)
    assert written["train"] + written["eval"] == ROWS
    assert json.loads((out / "summary.json").read_text()) == summary
    rejected = [
        json.loads(line)
        for f in glob.glob(str(out / "rejected" / "*.jsonl"))
        for line in open(f)
    ]
    assert collections.Counter(r["reason"] for r in rejected) == reasons
    assert all(set(r) == {"reason", "source", "detail", "raw"} for r in rejected)
    if fmt == "csv":
        assert summary["blank_lines_skipped"] == 1

    # The schema loads and the TFRecords parse with a spec derived from it.
    schema = Schema.load(str(out))
    assert schema.feature_names == tuple(impression_spec()["columns"])
    assert schema.metadata["rows"] == written
    train = _read_split(out, keys.TRAIN_SPLIT, schema)
    evals = _read_split(out, keys.EVAL_SPLIT, schema)
    assert len(train[keys.ROW_ID]) == written["train"]
    assert len(evals[keys.ROW_ID]) == written["eval"]
    ids = np.concatenate([train[keys.ROW_ID], evals[keys.ROW_ID]]).astype(int)
    assert sorted(ids) == list(range(ROWS))

    # Values survive: raw, per row id.
    by_id = frame.set_index(keys.ROW_ID)
    train_ids = train[keys.ROW_ID].astype(int)
    np.testing.assert_array_equal(train["user_id"], by_id.loc[train_ids, "user_id"])
    np.testing.assert_allclose(
        train["price"], by_id.loc[train_ids, "price"].astype(np.float32)
    )
    assert np.array_equal(
        np.isnan(train["age"]), by_id.loc[train_ids, "age"].isna().to_numpy()
    )
    np.testing.assert_array_equal(train[keys.CLICK], by_id.loc[train_ids, keys.CLICK])
    first = int(train_ids[0])
    hist = [int(t) for t in by_id.loc[first, "hist"].split("|") if t][:5]
    assert train["hist"][0] == hist

    # Time split: eval is the latest ~10% of rows.
    train_times = by_id.loc[train_ids, keys.TIMESTAMP]
    eval_times = by_id.loc[evals[keys.ROW_ID].astype(int), keys.TIMESTAMP]
    assert eval_times.min() >= train_times.max()
    assert 0.05 <= written["eval"] / ROWS <= 0.15
    assert summary["time_cut"] == eval_times.min()

    # Vocabularies: counts on the train split, ties by token.
    train_frame = by_id.loc[train_ids]
    item_tokens = list(train_frame["item_id"]) + [
        int(t) for h in train_frame["hist"] for t in str(h).split("|")[:5]
        if t and t != "nan"
    ]
    vocab = (out / "vocab" / "item.txt").read_text().splitlines()
    assert vocab == _expected_vocab(item_tokens)
    assert schema["item_id"].vocab_size == schema["hist"].vocab_size == len(vocab)
    tags = [
        t.split(":")[0] for s in train_frame["tags"] if isinstance(s, str)
        for t in s.split(";")[:3] if t
    ]
    assert (out / "vocab" / "tags.txt").read_text().splitlines() == _expected_vocab(tags)
    city = (out / "vocab" / "city.txt").read_text().splitlines()
    assert city == _expected_vocab(train_frame["city"])

    # Numeric statistics on the train split after log / clip.
    log_price = np.log1p(np.maximum(train_frame["price"].to_numpy(), 0))
    assert schema["price"].mean == pytest.approx(log_price.mean(), rel=1e-9)
    assert schema["price"].std == pytest.approx(log_price.std(), rel=1e-9)
    age = np.minimum(train_frame["age"].dropna().to_numpy(), 60.0)
    assert schema["age"].mean == pytest.approx(age.mean(), rel=1e-9)
    assert schema["age"].max == 60.0


def test_hash_split_without_timestamp(tmp_path):
    _, path, reasons = _make_logs(
        tmp_path, "csv", spec=impression_spec(timestamp=False)
    )
    out = tmp_path / "out"
    summary = _run(
        path, "csv", out, "--eval-fraction", "0.2", "--keep-click0-conversion1"
    )
    schema = Schema.load(str(out))
    ids = {i for i in range(ROWS)} | {10_001}  # the kept click0_conversion1 row
    got = set(_read_split(out, keys.EVAL_SPLIT, schema)[keys.ROW_ID].astype(int))
    expected = {i for i in ids if key_fraction(str(i)) < 0.2}
    assert got == expected
    assert summary["rows_written"]["eval"] == len(expected)
    assert sum(summary["rows_written"].values()) == ROWS + 1
    assert dl.CLICK0_CONVERSION1 not in summary["rows_rejected"]
    assert summary["rows_rejected_total"] == sum(reasons.values()) - 1


def test_vocab_flags_and_fixed_split_time(tmp_path):
    frame, path, _ = _make_logs(tmp_path, "csv")
    out = tmp_path / "out"
    cut = int(frame[keys.TIMESTAMP].quantile(0.5))
    summary = _run(
        path, "csv", out, "--min-count", "3", "--top-k", "4",
        "--split-timestamp", str(cut),
    )
    assert summary["time_cut"] == cut
    train = frame[frame[keys.TIMESTAMP] < cut]
    assert summary["rows_written"]["train"] == len(train)
    counts = collections.Counter(train["city"])
    expected = [t for t in _expected_vocab(train["city"]) if counts[t] >= 3][:4]
    assert (out / "vocab" / "city.txt").read_text().splitlines() == expected
    assert len((out / "vocab" / "item.txt").read_text().splitlines()) == 4


def test_deterministic_output_and_clean_reruns(tmp_path):
    _, path, _ = _make_logs(tmp_path, "csv")
    first, second = tmp_path / "first", tmp_path / "second"
    _run(path, "csv", first, "--shards", "3")
    (first / "train" / "stale.tfrecord.gz").write_bytes(b"old")
    _run(path, "csv", first, "--shards", "2")  # rerun into the same dir
    _run(path, "csv", second, "--shards", "2")
    assert sorted(os.listdir(first / "train")) == [
        "part-00000-of-00002.tfrecord.gz", "part-00001-of-00002.tfrecord.gz"
    ]
    assert _dir_bytes(first) == _dir_bytes(second)


@pytest.mark.large
def test_multi_processing_matches_in_process(tmp_path):
    _, path, _ = _make_logs(tmp_path, "csv")
    _run(path, "csv", tmp_path / "a", "--shards", "2")
    summary = _run(
        path, "csv", tmp_path / "b", "--shards", "2",
        "--direct_running_mode=multi_processing", "--direct_num_workers=2",
    )
    assert summary["accounting_ok"]
    assert _dir_bytes(tmp_path / "a") == _dir_bytes(tmp_path / "b")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "{tmp}/nothing/*.csv", "--format", "csv"], "No input files match"),
        (["--input", "{tmp}/logs/log.csv", "--format", "xml"], "Unknown --format 'xml'"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--spec",
          "{tmp}/spec_missing_column.json"], r"does not have: \['device'\]"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--spec",
          "{tmp}/nope.json"], "No input spec file"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv",
          "--eval-fraction", "1.5"], "--eval-fraction"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--split", "time",
          "--spec", "{tmp}/spec_no_time.json"], "needs a `timestamp`"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--split-timestamp",
          "soon"], "ISO-8601"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--reader-option",
          "colour=red"], "rejected its options"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv", "--split",
          "source"], "has none"),
        (["--input", "{tmp}/logs/log.csv", "--format", "csv",
          "--max-value-bytes", "0"], "--max-value-bytes must be >= 1"),
        (["--input", "{tmp}/logs/log.csv", "--format", "aliccp",
          "--max-value-bytes", "64"], "the aliccp format takes none"),
    ],
)
def test_user_errors_are_one_line_value_errors(tmp_path, argv, message):
    _make_logs(tmp_path, "csv", rows=20)
    missing = impression_spec()
    missing["columns"]["device"] = {"kind": "categorical_string"}
    (tmp_path / "spec_missing_column.json").write_text(json.dumps(missing))
    (tmp_path / "spec_no_time.json").write_text(
        json.dumps(impression_spec(timestamp=False))
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(ValueError, match=message) as info:
        preprocess.run_job(argv + ["--out", str(tmp_path / "out"), "--quiet"])
    assert "\n" not in str(info.value)


def test_generic_format_without_any_spec(tmp_path):
    _, path, _ = _make_logs(tmp_path, "csv", rows=20)
    os.remove(tmp_path / "logs" / "spec.json")
    with pytest.raises(ValueError, match="needs an input spec"):
        _run(path, "csv", tmp_path / "out")


def test_input_inside_the_output_is_refused(tmp_path):
    _, path, _ = _make_logs(tmp_path, "csv", rows=20)
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    moved = out / "train" / "log.csv"
    os.rename(path, moved)
    with pytest.raises(ValueError, match="inside the output directory"):
        _run(str(moved), "csv", out, "--spec", str(tmp_path / "logs" / "spec.json"))
    assert moved.exists()


# === Inputs that leave a split without rows ===


def _aliccp_line(sample_id, click, conversion, common_index):
    return format_skeleton_line(
        sample_id, click, conversion, common_index, [("205", 5, 1.0)]
    )


def test_a_split_whose_files_give_no_rows_is_an_error_naming_them(tmp_path):
    data = tmp_path / "aliccp"
    data.mkdir()
    lines = {
        # Two impressions share id 3: both are dead letters, the rest rows.
        "sample_skeleton_train.csv": [
            _aliccp_line(1, 1, 0, "c"), _aliccp_line(2, 0, 0, "c"),
            _aliccp_line(3, 0, 0, "c"), _aliccp_line(3, 1, 1, "c"),
        ],
        # Every test impression has a bad label: the eval split gets none.
        "sample_skeleton_test.csv": ["1,2,0,c,1,205\x025\x031.0"] * 2,
        "common_features_train.csv": [format_common_line("c", [("101", 7, 1.0)])],
        "common_features_test.csv": [format_common_line("c", [("101", 8, 1.0)])],
    }
    for name, file_lines in lines.items():
        (data / name).write_text("".join(line + "\n" for line in file_lines))
    out = tmp_path / "out"
    with pytest.raises(ValueError) as info:
        _run(str(data), "aliccp", out, "--reader-option", 'fields=["101","205"]')
    message = str(info.value)
    assert message.startswith(
        "The eval split has no rows: sample_skeleton_test.csv gave none; "
        "6 records read in all, 4 rejected (bad_label 2, duplicate_sample_id 2; "
    )
    assert "\n" not in message
    summary = json.loads((out / keys.SUMMARY_FILE).read_text())
    assert summary["error"] == message and summary["accounting_ok"]
    assert summary["rows_written"] == {keys.TRAIN_SPLIT: 2, keys.EVAL_SPLIT: 0}


def test_an_empty_training_split_is_an_error_for_every_format(tmp_path):
    frame = impression_frame(rows=3)
    frame[keys.CLICK] = 2  # every row is a bad_label dead letter
    data = tmp_path / "logs"
    data.mkdir()
    frame.to_csv(data / "log.csv", index=False)
    (data / "spec.json").write_text(json.dumps(impression_spec()))
    with pytest.raises(ValueError) as info:
        _run(str(data / "log.csv"), "csv", tmp_path / "out")
    assert str(info.value).startswith(
        f"The train split has no rows: --input {data / 'log.csv'} (csv) gave "
        f"none; 3 records read in all, 3 rejected (bad_label 3; see "
    )


# === Oversized values ===


def test_a_categorical_value_over_the_cap_is_a_dead_letter(tmp_path):
    frame = impression_frame(rows=40)
    frame.loc[3, "city"] = "x" * 2**20  # a 1 MiB token
    data = tmp_path / "logs"
    data.mkdir()
    frame.to_csv(data / "log.csv", index=False)
    (data / "spec.json").write_text(json.dumps(impression_spec()))
    paris = int((frame["city"] == "paris").sum())
    for flags, rejected in (((), 1), (("--max-value-bytes", "4"), 1 + paris)):
        out = tmp_path / f"out{len(flags)}"
        summary = _run(str(data / "log.csv"), "csv", out, *flags)
        assert summary["rows_rejected"] == {dl.VALUE_TOO_LONG: rejected}
        assert sum(summary["rows_written"].values()) == 40 - rejected
        assert summary["accounting_ok"]
        vocab = (out / keys.VOCAB_DIR / "city.txt").read_text().split("\n")
        assert max(len(token) for token in vocab) <= 5
        assert ("paris" in vocab) == (not flags)
    (record,) = [
        json.loads(line)
        for path in glob.glob(str(tmp_path / "out0" / keys.REJECTED_DIR / "*"))
        for line in open(path)
    ]
    assert record["detail"] == (
        "column 'city' value is 1,048,576 bytes, more than max_value_bytes=1,024"
    )
    assert len(record["raw"]) == dl.MAX_RAW_CHARS
