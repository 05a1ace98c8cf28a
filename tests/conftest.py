import json
import os
import types

import pytest

from tfcvr.testing.tiny_model import train_tiny_model
from tfcvr.testing.tiny_model import write_tiny_dataset_dir


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(data_dir, model_dir, model): a tiny ESMM fitted for one epoch.

    Shared by every test that needs a trained model directory (export,
    serving, bench); they must not modify it.
    """
    root = tmp_path_factory.mktemp("trained")
    data_dir = write_tiny_dataset_dir(os.path.join(root, "data"))
    model_dir = os.path.join(root, "model")
    model = train_tiny_model(data_dir, model_dir, estimator="esmm")
    return data_dir, model_dir, model


@pytest.fixture(scope="session")
def held_out(tmp_path_factory):
    """A training log, its dataset directory and a tiny ESMM trained on it,
    and a separate test log (CSV) with bad rows, the vocabulary trap of a
    real project: `test_log`, its clean `frame`, the `bad` rows
    (row id -> what is wrong), `data`, `model_dir`, `model`, and `own`, the
    test log preprocessed on its own (its own vocabulary). Read-only.
    """
    from beam_jobs import preprocess
    from beam_jobs.example_logs import impression_frame
    from beam_jobs.example_logs import impression_spec

    root = tmp_path_factory.mktemp("held_out")
    logs = root / "logs"
    logs.mkdir()
    impression_frame(rows=300, seed=0).to_csv(logs / "train.csv", index=False)
    (logs / "spec.json").write_text(json.dumps(impression_spec()))
    data = str(root / "data")
    preprocess.run_job(["--input", str(logs / "train.csv"), "--format", "csv",
                        "--out", data, "--quiet"])
    model_dir = str(root / "model")
    model = train_tiny_model(data, model_dir, estimator="esmm")

    # More items than training saw: unseen ids, the OOV buckets in use.
    frame = impression_frame(rows=120, seed=1, items=160)
    test_log = root / "test.csv"
    frame.to_csv(test_log, index=False)
    base = frame.iloc[0].to_dict()
    bad = {10_000: ("price", "cheap"), 10_001: ("user_id", "u1"),
           10_002: ("click", 2), 10_003: ("item_id", "")}
    with open(test_log, "a") as f:
        for row_id, (column, value) in bad.items():
            record = {**base, "row_id": row_id, column: value}
            f.write(",".join(str(record[c]) for c in frame.columns) + "\n")
        f.write("1,2,3\n")
    own = str(root / "own")
    preprocess.run_job(["--input", str(test_log), "--format", "csv",
                        "--spec", str(logs / "spec.json"), "--out", own,
                        "--quiet"])
    return types.SimpleNamespace(
        test_log=str(test_log), frame=frame, bad=bad, data=data,
        model_dir=model_dir, model=model, own=own,
    )


@pytest.fixture(scope="session")
def held_out_export(held_out, tmp_path_factory):
    """The `held_out` model exported as a SavedModel version directory
    (item id required, as by default; no warmup file). Read-only."""
    from tfcvr.export import export_saved_model

    base = str(tmp_path_factory.mktemp("held_out_export"))
    return export_saved_model(held_out.model, base, name="esmm",
                              vocab_dir=held_out.model_dir, warmup_rows=0)


@pytest.fixture(scope="session")
def serving_default():
    """`run(saved_model_dir, rows, schema)`: a SavedModel's
    `serving_default` on raw rows, fed as TF Serving would be, as
    `{output: array}`."""
    import tensorflow as tf

    from tfcvr.export.raw_rows import columns_from_rows
    from tfcvr.features import wire

    def run(saved_model_dir, rows, schema):
        signature = tf.saved_model.load(saved_model_dir).signatures[
            wire.SERVING_DEFAULT]
        columns = columns_from_rows(rows, schema)
        outputs = signature(**{
            arg: tf.constant(columns[spec.name])
            for arg, spec in signature.structured_input_signature[1].items()
        })
        return {k: v.numpy() for k, v in outputs.items()}

    return run
