"""`tfcvr train --train-metrics` and `--optimizer`: the choice reaches the
compiled model, the fit logs and train_config.json."""

import contextlib
import io
import json
import os

from tfcvr.cli.main import main
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training.model_dir import load_model_dir
from tfcvr.training.trainer import TRAIN_CONFIG_FILE

TINY = ["--model", "esmm", "--param", "embedding_dim=4", "--param",
        "backbone_config.hidden_units=[8]", "--batch-size", "64",
        "--no-validation"]


def test_train_metrics_none_logs_the_loss_only(tmp_path):
    data = write_tiny_dataset_dir(str(tmp_path / "data"))
    logs = {}
    # The second run also leaves --optimizer at its default.
    for choice, optimizer in (("none", ["--optimizer", "keras_adam"]), ("auc", [])):
        model_dir = str(tmp_path / choice)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(err):
            code = main(["train", "--data", data, "--model-dir", model_dir,
                         "--train-metrics", choice, *optimizer, *TINY])
        assert code == 0, err.getvalue()[-3000:]
        with open(os.path.join(model_dir, TRAIN_CONFIG_FILE)) as f:
            config = json.load(f)
        assert config["train_metrics"] == choice
        assert config["optimizer"] == ("keras_adam" if optimizer else "adam")
        with open(os.path.join(model_dir, "history.json")) as f:
            logs[choice] = set(json.load(f)["history"])
        model, _ = load_model_dir(model_dir)
        assert model.train_metrics == choice
        assert type(model.optimizer).__name__ == ("Adam" if optimizer else "FusedAdam")
    assert "loss" in logs["none"] and not any("auc" in k for k in logs["none"])
    assert "ctr_auc" in logs["auc"]
