import importlib
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcvr.cli.main import main
from tfcvr.export.model_config import read_model_config
from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import recorded_data_dir
from tfcvr.export.raw_rows import columns_from_rows
from tfcvr.export.raw_rows import example_from_row
from tfcvr.testing.tiny_model import TRAINING_RECORD
from tfcvr.testing.tiny_model import train_tiny_model
from tfcvr.testing.tiny_model import write_tiny_dataset_dir

# The module (tfcvr.export re-exports a function of the same name).
check_module = importlib.import_module("tfcvr.export.check_saved_model")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_cli")
    data = write_tiny_dataset_dir(os.path.join(root, "data"))
    path = os.path.join(root, "model")
    train_tiny_model(data, path)
    return path


def _in_process_outputs(saved_model_dir, rows, schema, timeout=300):
    """Stand-in for the fresh process, to test the CLI's logic quickly."""
    loaded = tf.saved_model.load(saved_model_dir)
    columns = columns_from_rows(rows, schema)
    results = {}
    signature = loaded.signatures["serving_default"]
    args = {arg: tf.constant(columns[spec.name])
            for arg, spec in signature.structured_input_signature[1].items()}
    for key, value in signature(**args).items():
        results["serving_default/" + key] = value.numpy()
    examples = tf.constant(
        [example_from_row(r, schema).SerializeToString() for r in rows])
    outputs = loaded.signatures["predict_examples"](examples=examples)
    for key, value in outputs.items():
        results["predict_examples/" + key] = value.numpy()
    return results


def test_export_with_check(model_dir, tmp_path, capsys, monkeypatch):
    # The check's fresh process is tested in test_check_saved_model, and
    # the command with it below.
    monkeypatch.setattr(check_module, "outputs_in_fresh_process",
                        _in_process_outputs)
    _export_with_check(model_dir, tmp_path, capsys)


# The command above with its real fresh process (TensorFlow imported
# again, most of its time): `make test-large`.
@pytest.mark.large
def test_export_with_check_in_a_fresh_process(model_dir, tmp_path, capsys):
    _export_with_check(model_dir, tmp_path, capsys)


def _export_with_check(model_dir, tmp_path, capsys):
    out = tmp_path / "saved_models" / "esmm"
    code = main(["export", "--model-dir", model_dir, "--out", str(out),
                 "--check", "--check-rows", "16"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert os.path.exists(out / "1" / "saved_model.pb")
    assert "eval split" in printed  # rows from the recorded dataset
    assert "Check passed" in printed
    config = read_model_config(str(tmp_path / "saved_models" / "models.config"))
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path) == ("esmm", "/models/esmm")


def test_versions_and_errors(model_dir, tmp_path, capsys):
    out = str(tmp_path / "sm" / "m")
    assert main(["export", "--model-dir", model_dir, "--out", out,
                 "--warmup-rows", "0"]) == 0
    assert main(["export", "--model-dir", model_dir, "--out", out,
                 "--version", "7", "--serving-base-path", "local"]) == 0
    assert sorted(os.listdir(out)) == ["1", "7"]
    config = read_model_config(str(tmp_path / "sm" / "models.config"))
    assert config.model_config_list.config[0].base_path == os.path.abspath(out)
    capsys.readouterr()
    assert main(["export", "--model-dir", model_dir, "--out", out,
                 "--version", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists" in err and len(err.splitlines()) == 1
    assert main(["export", "--model-dir", str(tmp_path / "nope"), "--out",
                 out]) == 2
    err = capsys.readouterr().err.strip()
    assert "Model directory not found" in err and len(err.splitlines()) == 1
    assert main(["export", "--model-dir", model_dir, "--out", out,
                 "--require", "bogus"]) == 2
    assert "required_features" in capsys.readouterr().err
    # A truncated model.keras is corrupt, not "File not found".
    copy = str(tmp_path / "truncated_model")
    shutil.copytree(model_dir, copy)
    path = os.path.join(copy, "model.keras")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    assert main(["export", "--model-dir", copy, "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path} is corrupt" in err and len(err.splitlines()) == 1


def test_check_uses_synthetic_rows_without_a_recorded_dataset(
    model_dir, tmp_path, capsys, monkeypatch
):
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    os.remove(os.path.join(copy, TRAINING_RECORD))
    assert recorded_data_dir(copy) is None
    assert recorded_data_dir(model_dir) is not None
    monkeypatch.setattr(check_module, "outputs_in_fresh_process",
                        _in_process_outputs)
    code = main(["export", "--model-dir", copy, "--out",
                 str(tmp_path / "sm" / "esmm"), "--check"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "synthetic rows" in printed and "Check passed" in printed


def test_check_mismatch_exits_1(model_dir, tmp_path, capsys, monkeypatch):
    def shifted(*args, **kwargs):
        outputs = _in_process_outputs(*args, **kwargs)
        outputs["serving_default/cvr"] = outputs["serving_default/cvr"] + 0.01
        return outputs

    monkeypatch.setattr(check_module, "outputs_in_fresh_process", shifted)
    base = tmp_path / "sm"
    # A good version 1 first: the failed version 2 must leave it served.
    assert main(["export", "--model-dir", model_dir, "--out",
                 str(base / "esmm"), "--warmup-rows", "0"]) == 0
    (base / "models.config").write_text(
        (base / "models.config").read_text() + "# kept\n")
    config_before = (base / "models.config").read_text()
    code = main(["export", "--model-dir", model_dir, "--out",
                 str(base / "esmm"), "--check"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "check FAILED" in printed
    assert "serving_default/cvr: 0.01" in printed
    assert f"removed {base / 'esmm' / '2'}" in printed
    assert sorted(os.listdir(base / "esmm")) == ["1"]
    assert (base / "models.config").read_text() == config_before


def test_failed_check_of_a_first_export_leaves_no_config(
    model_dir, tmp_path, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise ValueError("The fresh process could not load the SavedModel")

    monkeypatch.setattr(check_module, "outputs_in_fresh_process", broken)
    base = tmp_path / "sm"
    code = main(["export", "--model-dir", model_dir, "--out",
                 str(base / "esmm"), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert "could not load" in err
    assert os.listdir(base / "esmm") == []
    assert not (base / "models.config").exists()


def test_refuses_non_finite_weights(model_dir, tmp_path, capsys):
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    model = keras.saving.load_model(os.path.join(copy, MODEL_FILE))
    variable = model.trainable_weights[0]
    values = variable.numpy()
    values.flat[0] = np.nan
    variable.assign(values)
    model.save(os.path.join(copy, MODEL_FILE))
    out = tmp_path / "sm" / "esmm"
    code = main(["export", "--model-dir", copy, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "not finite" in err and variable.path in err
    assert not out.exists()
    assert not (tmp_path / "sm" / "models.config").exists()


def test_check_on_rows_of_a_raw_log(held_out, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(check_module, "outputs_in_fresh_process",
                        _in_process_outputs)
    code = main(["export", "--model-dir", held_out.model_dir, "--out",
                 str(tmp_path / "sm" / "esmm"), "--check", "--input",
                 held_out.test_log, "--format", "csv", "--check-rows", "16",
                 "--warmup-rows", "0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"Check on 16 rows from {held_out.test_log} (first good rows)" in printed
    assert "Check passed" in printed


def test_check_refuses_a_dataset_with_another_vocabulary(
    held_out, tmp_path, capsys
):
    out = tmp_path / "sm" / "esmm"
    code = main(["export", "--model-dir", held_out.model_dir, "--out",
                 str(out), "--check", "--data", held_out.own])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert held_out.own in err[-1] and held_out.model_dir in err[-1]
    assert not out.exists()  # refused before anything was written
