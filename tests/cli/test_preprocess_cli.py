import json
import os

import numpy as np
import pytest

from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from tfcvr.cli.main import main
from tfcvr.data import DatasetDir
from tfcvr.data import EncodedManifest
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint


@pytest.fixture
def logs(tmp_path):
    data = tmp_path / "logs"
    data.mkdir()
    impression_frame(rows=60).to_csv(data / "log.csv", index=False)
    (data / "spec.json").write_text(json.dumps(impression_spec()))
    return data


def test_preprocess_passes_beam_options_through(tmp_path, logs, capsys):
    out = tmp_path / "out"
    rc = main([
        "preprocess", "--input", str(logs / "*.csv"), "--format", "csv",
        "--out", str(out), "--shards", "2",
        "--direct_num_workers=1", "--direct_running_mode", "in_memory",
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "rows read" in printed and "60" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_read"] == 60 and summary["accounting_ok"]
    assert Schema.load(str(out)).user_id == "user_id"
    assert len(list((out / "train").iterdir())) == 2
    # Encoded for training afterwards, by default, in one line.
    line = [ln for ln in printed.splitlines() if ln.startswith("encoded for training")]
    assert len(line) == 1 and "train " in line[0] and "rows in" in line[0], printed
    assert DatasetDir(str(out)).format_of(keys.TRAIN_SPLIT) == "encoded"
    assert EncodedManifest.load(str(out), keys.TRAIN_SPLIT).rows == (
        summary["rows_written"][keys.TRAIN_SPLIT])


def test_no_encode_leaves_the_raw_records_only(tmp_path, logs, capsys):
    out = tmp_path / "out"
    assert main(["preprocess", "--input", str(logs / "*.csv"), "--format", "csv",
                 "--out", str(out), "--no-encode"]) == 0
    assert "encoded for training" not in capsys.readouterr().out
    assert not (out / keys.ENCODED_DIR).exists()
    assert DatasetDir(str(out)).format_of(keys.TRAIN_SPLIT) == "raw"


def test_a_held_out_log_is_encoded_with_the_training_vocabulary(tmp_path, held_out):
    # --vocab-from copies the training vocabulary: the encoding uses it
    # (the training directory's fingerprint), so the encoded rows are the
    # raw path's.
    out = str(tmp_path / "test")
    assert main(["preprocess", "--input", held_out.test_log, "--format", "csv",
                 "--split", "eval", "--vocab-from", held_out.data, "--out", out,
                 "--quiet"]) == 0
    manifest = EncodedManifest.load(out, keys.EVAL_SPLIT)
    assert manifest.vocab_fingerprint == vocab_fingerprint.directory_fingerprint(
        held_out.data)
    encoded = DatasetDir(out, "encoded").dataset(keys.EVAL_SPLIT, 1000, training=False)
    raw = DatasetDir(out, "raw").dataset(keys.EVAL_SPLIT, 1000, training=False)
    (x, _), (y, _) = next(iter(encoded)), next(iter(raw))
    summary = json.loads(open(os.path.join(out, keys.SUMMARY_FILE)).read())
    assert len(x["item_id"]) == manifest.rows == summary["rows_written"][keys.EVAL_SPLIT] > 100
    for name in x:
        np.testing.assert_allclose(x[name], y[name], rtol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input", "{tmp}/none/*.csv", "--format", "csv"], "No input files match"),
        (["--input", "{logs}/log.csv", "--format", "avro"], "Unknown --format 'avro'"),
        (["--input", "{logs}/log.csv", "--format", "csv", "--min-count", "0"],
         "--min-count must be >= 1"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, logs, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, logs=logs) for a in argv]
    rc = main(["preprocess", *argv, "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfcvr preprocess: error: ")
    assert message in err[-1]


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as info:
        main(["preprocess", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--input", "--format", "--out", "--spec", "--min-count",
                 "--top-k", "--eval-fraction", "--shards", "pipeline options"):
        assert flag in text


def test_beam_pipeline_options_pass_through(tmp_path, logs):
    from tfcvr.cli.main import main

    code = main([
        "preprocess", "--input", str(logs / "log.csv"), "--format", "csv",
        "--out", str(tmp_path / "out"), "--quiet", "--reader-option",
        "delimiter=,", "--direct_num_workers=1",
    ])
    assert code == 0
    assert (tmp_path / "out" / "schema.json").exists()


ALICCP_HEADER = "sample_id,click,conversion,common_feature_index,num_features,feature_list"


@pytest.mark.parametrize(
    "files, fmt, message",
    [
        # Ali-CCP: a header-only, an empty or a binary skeleton file.
        ({"sample_skeleton_train.csv": ALICCP_HEADER + "\n"}, "aliccp",
         "sample_skeleton_train.csv holds only a header line"),
        ({"sample_skeleton_train.csv": ""}, "aliccp",
         "sample_skeleton_train.csv is empty, so the train split would have no rows"),
        ({"sample_skeleton_train.csv": b"\x00\x01\x02\xff" * 64}, "aliccp",
         "sample_skeleton_train.csv is not a text file"),
        # CSV: an empty file, and a file whose every row is rejected.
        ({"log.csv": ""}, "csv", "log.csv is empty: a CSV file starts with its header"),
        ({"log.csv": "row_id,user_id,item_id,city,hist,tags,price,age,timestamp,"
                     "click,conversion,true_ctr,true_cvr,conversion_if_clicked\n"
                     "1,2,3,oslo,,,1.0,30,1700000000,2,0,0.1,0.1,0\n"}, "csv",
         "The train split has no rows: --input {input} (csv) gave none; 1 record "
         "read in all, 1 rejected (bad_label 1; see"),
    ],
)
def test_inputs_without_training_rows_exit_2_with_one_line(
    tmp_path, capsys, files, fmt, message
):
    data = tmp_path / "in"
    data.mkdir()
    if fmt == "aliccp":
        (data / "common_features_train.csv").write_text("c,1,101\x027\x031.0\n")
    else:
        (data / "spec.json").write_text(json.dumps(impression_spec()))
    for name, content in files.items():
        path = data / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    rc = main([
        "preprocess", "--input", str(data), "--format", fmt,
        "--out", str(tmp_path / "out"), "--quiet",
    ])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfcvr preprocess: error: ")
    assert message.format(input=data) in err[-1]


class _FakeIPython:
    @staticmethod
    def get_ipython():
        return object()


def test_inside_ipython_the_job_runs_in_a_child_process(tmp_path, logs, capsys, monkeypatch):
    # Beam's interactive mode (what it turns on inside IPython) must not run:
    # the child has no IPython, and the parent's Beam is never called.
    monkeypatch.setitem(__import__("sys").modules, "IPython", _FakeIPython)
    from beam_jobs import preprocess

    monkeypatch.setattr(preprocess, "_make_pipeline",
                        lambda options: pytest.fail("Beam ran in the IPython process"))
    assert preprocess.in_ipython()
    out = tmp_path / "out"
    rc = main(["preprocess", "--input", str(logs / "*.csv"), "--format", "csv",
               "--out", str(out)])
    assert rc == 0
    assert "rows read" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_read"] == 60 and summary["accounting_ok"]
    # The grid's dataset task calls the job itself and reads its summary.
    again = preprocess.run_job(["--input", str(logs / "*.csv"), "--format", "csv",
                                "--out", str(tmp_path / "again"), "--quiet"])
    assert again["rows_read"] == 60 and again["accounting_ok"]


def test_a_child_job_error_is_one_line(tmp_path, logs, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "IPython", _FakeIPython)
    rc = main(["preprocess", "--input", str(logs / "log.csv"), "--format", "avro",
               "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tfcvr preprocess: error: Unknown --format 'avro'")
