"""`tfcvr encode` and `tfcvr train --input-format`: encoded shards written
for an existing dataset directory, read by training, recorded in
train_config.json; a forced format that cannot be read is a one-line
error."""

import contextlib
import io
import json
import os

import numpy as np

from tfcvr.cli.main import main
from tfcvr.data import DatasetDir
from tfcvr.features import keys
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training.trainer import TRAIN_CONFIG_FILE

TINY = ["--model", "esmm", "--param", "embedding_dim=4", "--param",
        "backbone_config.hidden_units=[8]", "--batch-size", "64"]


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_encode_then_train_reads_the_encoded_shards(tmp_path):
    data = write_tiny_dataset_dir(str(tmp_path / "data"), rows=128, eval_rows=32)
    code, _, err = _run(["train", "--data", data, "--model-dir", str(tmp_path / "m0"),
                         "--input-format", "encoded", *TINY])
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("tfcvr train: error: No valid encoded")
    assert "tfcvr encode" in err

    code, out, err = _run(["encode", data])
    assert code == 0, err[-2000:]
    assert out.strip().splitlines()[-1].startswith(
        "encoded for training: train 128 rows in ")
    assert "eval 32 rows" in out
    assert DatasetDir(data).format_of(keys.TRAIN_SPLIT) == "encoded"

    model_dir = str(tmp_path / "model")
    code, _, err = _run(["train", "--data", data, "--model-dir", model_dir, *TINY])
    assert code == 0, err[-3000:]
    with open(os.path.join(model_dir, TRAIN_CONFIG_FILE)) as f:
        config = json.load(f)
    assert (config["input_format"], config["input_format_requested"]) == ("encoded", "auto")
    with open(os.path.join(model_dir, "history.json")) as f:
        history = json.load(f)
    # Validation read the encoded eval split.
    assert np.isfinite(history["history"]["val_loss"][-1])


def test_encode_a_split_without_records_is_a_one_line_error(tmp_path):
    data = write_tiny_dataset_dir(str(tmp_path / "data"), rows=16, eval_rows=8)
    code, _, err = _run(["encode", data, "--splits", "train,test"])
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"tfcvr encode: error: No TFRecords for split 'test' in {data}")
