"""`tfcvr tune` on a 2-trial search end to end, and `tfcvr train` with the
training controls and the settings file tune writes."""

import contextlib
import io
import json
import os

import pytest

from tfcvr.cli.main import main
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training.tuning import sample_trials
from tfcvr.training.tuning import SEARCH_SPACE

TINY = ["--param", "embedding_dim=4", "--param", "backbone_config.hidden_units=[8]",
        "--batch-size", "64"]


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    data = write_tiny_dataset_dir(os.path.join(root, "data"), rows=320)
    out = os.path.join(root, "tune")
    code, stdout, err = _run("tune", "--data", data, "--model", "multi_ipw", "--out", out,
                             "--trials", "2", "--max-epochs", "2",
                             "--space", "learning_rate=0.001,0.01", "--space", "dropout=0,0.2",
                             "--space", "weight_decay=0,0.0001", "--space", "embedding_l2=0,1e-6",
                             *TINY)
    assert code == 0, err[-3000:]
    return root, data, out, stdout


def test_tune_writes_the_trials_and_a_best_setting(tuned):
    _, data, out, stdout = tuned
    with open(os.path.join(out, "trials.jsonl")) as f:
        trials = [json.loads(line) for line in f]
    assert [t["trial"] for t in trials] == [0, 1]
    # Trial 0 is the untuned default.
    assert trials[0]["learning_rate"] == 0.001 and trials[0]["dropout"] == 0.0
    for trial in trials:
        curve = trial["history"]["val_ctcvr_auc"]
        assert len(curve) == 2
        assert trial["val_ctcvr_auc"] == max(curve)
        assert trial["best_epoch"] == curve.index(max(curve)) + 1
    with open(os.path.join(out, "best.json")) as f:
        best = json.load(f)
    winner = max(trials, key=lambda t: t["val_ctcvr_auc"])
    assert best["epochs"] == winner["best_epoch"]
    assert best["learning_rate"] == winner["learning_rate"]
    assert best["params"]["backbone_config"] == {"hidden_units": [8], "dropout": winner["dropout"]}
    assert best["tuning"]["value"] == winner["val_ctcvr_auc"]
    assert "(best)" in open(os.path.join(out, "trials.md")).read()
    assert "--config" in stdout
    # Selection is on held-out training rows: 1 in 10 of the 320, never eval.
    with open(os.path.join(out, "holdout", "summary.json")) as f:
        assert json.load(f)["rows_written"] == {"train": 288, "eval": 32}


def test_train_takes_the_best_setting_flags_win_and_every_control_is_recorded(tuned, tmp_path):
    _, data, out, _ = tuned
    best = os.path.join(out, "best.json")
    model_dir = str(tmp_path / "m")
    code, stdout, err = _run("train", "--data", data, "--model", "multi_ipw", "--config", best,
                             "--model-dir", model_dir, "--weight-decay", "0.01",
                             "--early-stopping", "1", "--monitor", "loss",
                             "--embedding-l2", "1e-5", "--dropout", "0.1", "--quiet", *TINY)
    assert code == 0, err[-3000:]
    assert len(stdout.strip().splitlines()) == 1  # --quiet: only the summary line
    with open(os.path.join(model_dir, "train_config.json")) as f:
        config = json.load(f)
    with open(best) as f:
        tuned_setting = json.load(f)
    # From the file: epochs and learning rate; from the flags: the rest.
    assert config["epochs"] == tuned_setting["epochs"]
    assert config["learning_rate"] == tuned_setting["learning_rate"]
    assert config["weight_decay"] == 0.01 and config["embedding_l2"] == 1e-5
    assert config["params"]["backbone_config"] == {"hidden_units": [8], "dropout": 0.1}
    assert config["early_stopping"] == 1 and config["monitor"] == "val_loss"
    assert config["propensity"] == "model" and config["verbose"] == 0
    with open(os.path.join(model_dir, "history.json")) as f:
        stop = json.load(f)["early_stopping"]
    assert stop["monitor"] == "val_loss" and 1 <= stop["best_epoch"] <= config["epochs"]
    code, _, err = _run("train", "--data", data, "--model", "esmm", "--config", best, *TINY)
    assert code == 2 and "tuned for 'multi_ipw'" in err


def test_the_sample_starts_with_the_defaults_and_never_repeats():
    trials = sample_trials(SEARCH_SPACE, 20, seed=3)
    assert trials[0] == {axis: values[0] for axis, values in SEARCH_SPACE.items()}
    assert len({json.dumps(t, sort_keys=True) for t in trials}) == 20
    assert trials == sample_trials(SEARCH_SPACE, 20, seed=3)
