"""The pandas yardstick and the Beam reader agree on generated Ali-CCP files."""

import collections
import glob
import gzip
import json
import random
import struct

from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import preprocess
from beam_jobs.benchmarks.aliccp_pandas_yardstick import main, run_pandas_yardstick
from beam_jobs.readers.aliccp import ReadAliCCP
from beam_jobs.readers.aliccp.fields import format_common_line, format_skeleton_line
from tfcvr.features import keys

FIELDS = ["101", "205", "301", "210", "109_14"]
MULTI = {"210", "109_14"}
MAX_LEN = 3


def write_dataset(directory, seed=0):
    """Writes the four files; returns the expected rows by key."""
    rng = random.Random(seed)
    expected = {}
    for split, name in ((keys.TRAIN_SPLIT, "train"), (keys.EVAL_SPLIT, "test")):
        users = {}
        common_lines = []
        for u in range(6):
            index = f"{name}{u:02d}"
            history = [
                (rng.randrange(50), rng.choice([0.5, 1.0, 2.0]))
                for _ in range(rng.randrange(6))
            ]
            user_id = 1000 + u + (0 if split == keys.TRAIN_SPLIT else 3)
            users[index] = (user_id, history)
            common_lines.append(
                format_common_line(
                    index,
                    [("101", user_id, 1.0), ("999", 1, 1.0)]
                    + [("109_14", h, w) for h, w in history],
                )
            )
        # A duplicate of the first index whose text sorts after it ("9"
        # entries > at most 7): rejected by Beam, dropped by pandas.
        common_lines.append(
            format_common_line(f"{name}00", [("101", 9999, 1.0)] * 9)
        )
        rng.shuffle(common_lines)
        skeleton_lines = []
        for sample_id in range(1, 31):
            click = rng.randrange(2)
            conversion = rng.randrange(2)
            index = rng.choice(sorted(users) + ["nobody"])
            item = rng.randrange(8)
            scenario = rng.choice([1, 2])
            intents = [rng.randrange(20) for _ in range(rng.randrange(6))]
            entries = [("205", item, 1.0), ("301", scenario, 1.0)]
            entries += [("210", i, 1.0) for i in intents]
            skeleton_lines.append(
                format_skeleton_line(sample_id, click, conversion, index, entries)
            )
            if (click, conversion) == (0, 1) or index == "nobody":
                continue
            user_id, history = users[index]
            expected[f"{split}:{sample_id}"] = {
                "split": split,
                "f101": [user_id],
                "f205": [item],
                "f301": [scenario],
                "f210": intents[:MAX_LEN],
                "f109_14": [h for h, _ in history][:MAX_LEN],
                "f109_14__weight": [w for _, w in history][:MAX_LEN],
                keys.CLICK: click,
                keys.CONVERSION: conversion,
            }
        # A replayed impression: every copy of a repeated sample id is
        # rejected by Beam and dropped by pandas.
        skeleton_lines.append(skeleton_lines[0])
        expected.pop(f"{split}:1", None)
        for kind, lines in (
            ("sample_skeleton", skeleton_lines),
            ("common_features", common_lines),
        ):
            (directory / f"{kind}_{name}.csv").write_text(
                "".join(line + "\n" for line in lines)
            )
    return expected


def truth_vocab(expected):
    counts = collections.defaultdict(collections.Counter)
    for row in expected.values():
        if row["split"] != keys.TRAIN_SPLIT:
            continue
        for field in FIELDS:
            counts[f"f{field}"].update(str(v) for v in row[f"f{field}"])
    return {
        column: [t for t, _ in sorted(c.items(), key=lambda tc: (-tc[1], tc[0]))]
        for column, c in counts.items()
    }


def test_yardstick_joins_selects_and_encodes(tmp_path):
    expected = write_dataset(tmp_path)
    result = run_pandas_yardstick(
        str(tmp_path), fields=FIELDS, multi_valued_fields=MULTI, max_len=MAX_LEN,
        return_frames=True,
    )
    by_split = collections.Counter(r["split"] for r in expected.values())
    assert result["rows"] == dict(by_split)
    assert result["rows_total"] == len(expected)
    assert result["impressions_read"] == 62
    assert result["duplicate_sample_id"] == 4
    assert (
        result["rows_total"]
        + result["missing_common_features"]
        + result["click0_conversion1"]
        + result["duplicate_sample_id"]
        == 62
    )
    assert result["rows_per_second"] > 0

    vocab = truth_vocab(expected)
    assert result["vocab"] == vocab
    assert result["vocab_sizes"] == {c: len(t) for c, t in vocab.items()}

    encoded = result["encoded"].sort_values(["key", "column", "position"])
    got = collections.defaultdict(lambda: collections.defaultdict(list))
    for record in encoded.itertuples(index=False):
        got[record.key][record.column].append(int(record.feature_id))
        if record.column == "f109_14":
            got[record.key]["f109_14__weight"].append(record.weight)
        tokens = vocab[record.column]
        token = str(record.feature_id)
        want = 2 + tokens.index(token) if token in tokens else 1
        assert record.index == want
    assert set(got) == set(expected)
    for key, row in expected.items():
        for column in ("f101", "f205", "f301", "f210", "f109_14", "f109_14__weight"):
            assert got[key].get(column, []) == row[column], (key, column)
    # Eval ids unseen in train are out of vocabulary.
    eval_users = encoded[
        (encoded["split"] == keys.EVAL_SPLIT) & (encoded["column"] == "f101")
    ]
    assert (eval_users["index"] == 1).any()


def test_beam_reader_matches_the_same_truth(tmp_path):
    expected = write_dataset(tmp_path)
    rows = []
    for key, row in expected.items():
        beam_row = {
            "f101": row["f101"][0],
            "f205": row["f205"][0],
            "f301": row["f301"][0],
            "f210": row["f210"],
            "f210__weight": [1.0] * len(row["f210"]),
            "f109_14": row["f109_14"],
            "f109_14__weight": row["f109_14__weight"],
            keys.CLICK: row[keys.CLICK],
            keys.CONVERSION: row[keys.CONVERSION],
            "__key__": key,
            "__split__": row["split"],
        }
        rows.append(beam_row)
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | ReadAliCCP(
            str(tmp_path), fields=FIELDS, multi_valued_fields=MULTI, max_len=MAX_LEN
        )
        assert_that(out["rows"], equal_to(rows))


def test_yardstick_command_line(tmp_path, capsys):
    write_dataset(tmp_path)
    assert main([str(tmp_path), "--fields", "aitm"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["vocab_sizes"]) == {
        "f101", "f121", "f122", "f124", "f125", "f126", "f127", "f128",
        "f129", "f205", "f206", "f207", "f216", "f508", "f509", "f702",
        "f853", "f301",
    }
    assert report["vocab_sizes"]["f126"] == 0
    assert main([str(tmp_path / "nothing")]) == 2


def _tfrecords(paths):
    records = []
    for path in paths:
        data = gzip.open(path).read()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            records.append(data[at + 12:at + 12 + length])
            at += 16 + length
    return sorted(records)


def test_yardstick_writes_the_beam_jobs_examples(tmp_path):
    # With write_dir the yardstick does the job's serialization too: the same
    # Example bytes, so its rows/s compare with the job's like for like.
    data = tmp_path / "raw"
    data.mkdir()
    write_dataset(data)
    result = run_pandas_yardstick(
        str(data), fields=FIELDS, multi_valued_fields=MULTI, max_len=MAX_LEN,
        write_dir=str(tmp_path / "pandas"),
    )
    options = {"fields": FIELDS, "multi_valued_fields": sorted(MULTI), "max_len": MAX_LEN}
    argv = ["--input", str(data), "--format", "aliccp", "--out", str(tmp_path / "beam"),
            "--quiet"]
    for key, value in options.items():
        argv += ["--reader-option", f"{key}={json.dumps(value)}"]
    preprocess.run_job(argv)
    beam = _tfrecords(glob.glob(str(tmp_path / "beam" / "*" / "part-*.tfrecord.gz")))
    pandas = _tfrecords(glob.glob(str(tmp_path / "pandas" / "*.tfrecord.gz")))
    assert len(pandas) == result["rows_total"] > 0
    assert pandas == beam
