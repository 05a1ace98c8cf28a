"""`tfcvr train` as a user runs it: killed with SIGKILL and resumed,
deterministic, stopped by a non-finite loss, refusing an empty training
split, warning about a split without clicks or conversions.

The killed, resumed and deterministic runs are subprocesses (each bounded
by a timeout) because `--deterministic` and a SIGKILL act on the whole
process; the others run `main` in this process.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfcvr.cli.main import main
from tfcvr.features import keys
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training import train
from tfcvr.training.training_checkpoint import CHECKPOINT_DIR
from tfcvr.training.training_checkpoint import STATE_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TIMEOUT = 600
TINY = ["--param", "embedding_dim=4",
        "--param", 'backbone_config={"hidden_units": [8]}']


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, *filter(None, [env.get("PYTHONPATH")])])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _command(*args):
    return [sys.executable, "-m", "tfcvr.cli.main", "train", *args]


def _run(args, tmp_path, name):
    """Runs `tfcvr train args` to the end; (exit status, stdout, stderr)."""
    with open(tmp_path / f"{name}.out", "w") as out, \
            open(tmp_path / f"{name}.err", "w") as err:
        code = subprocess.run(_command(*args), stdout=out, stderr=err,
                              env=_env(), timeout=TIMEOUT).returncode
    return (code, (tmp_path / f"{name}.out").read_text(),
            (tmp_path / f"{name}.err").read_text())


def _weights(model_dir):
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    return model.get_weights()


def _history(model_dir):
    with open(os.path.join(model_dir, "history.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def long_data(tmp_path_factory):
    # 2 epochs of 256 steps: long enough to be killed mid-epoch.
    root = tmp_path_factory.mktemp("long")
    return write_tiny_dataset_dir(str(root / "data"), rows=2048, eval_rows=16)


@pytest.mark.large
def test_killed_run_resumes_and_deterministic_runs_agree(long_data, tmp_path):
    def args(model_dir):
        return ["--data", long_data, "--model", "esmm", "--epochs", "2",
                "--batch-size", "8", "--model-dir", str(model_dir),
                "--checkpoint-every", "16", "--deterministic", "--seed", "3",
                "--no-validation", *TINY]

    # An uninterrupted deterministic run: the resumed one must end at its
    # weights (a second uninterrupted run would only repeat that check).
    references = [
        subprocess.Popen(_command(*args(tmp_path / "a")),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=_env())
    ]
    # The run that is killed in epoch 2, after a checkpoint in its middle.
    killed = subprocess.Popen(_command(*args(tmp_path / "c")),
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=_env())
    state_path = tmp_path / "c" / CHECKPOINT_DIR / STATE_FILE
    deadline = time.monotonic() + TIMEOUT
    try:
        state = None
        while time.monotonic() < deadline and killed.poll() is None:
            try:
                state = json.loads(state_path.read_text())
            except (OSError, ValueError):
                state = None
            if state and state["epoch"] == 1 and state["steps"] > 0:
                killed.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        if killed.poll() is None and killed.returncode is None:
            # Never reached epoch 2 in time: fail below, not hang.
            killed.kill()
        killed.wait(timeout=60)
        for process in references:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for process in (killed, *references):
            if process.poll() is None:
                process.kill()
    assert killed.returncode == -signal.SIGKILL, "the run ended before a kill"
    assert state and state["epoch"] == 1, f"not killed in epoch 2: {state}"
    assert not (tmp_path / "c" / "model.keras").exists()
    assert [p.returncode for p in references] == [0]

    code, out, err = _run(args(tmp_path / "c"), tmp_path, "resumed")
    assert code == 0, err
    resumed = [line for line in out.splitlines() if "Resuming" in line]
    assert len(resumed) == 1, out
    assert f"{state['iterations']} steps trained, epoch 2 of 2" in resumed[0]

    a, c = (_history(tmp_path / n) for n in "ac")
    # 2 x 256 steps; Keras adds one optimizer iteration per epoch of an
    # input of unknown length (plain `fit` on a `tf.data` split does too).
    assert a["iterations"] == c["iterations"] >= 512
    for key, values in a["history"].items():
        # The resumed epoch's training metrics are running means over the
        # steps after the resume only; the epoch before the kill and every
        # validation metric (the whole eval split, at the same weights) agree.
        np.testing.assert_allclose(c["history"][key][:1], values[:1], atol=1e-6)
        if key.startswith("val_"):
            np.testing.assert_allclose(c["history"][key], values, atol=1e-6)
    for left, right in zip(_weights(tmp_path / "a"), _weights(tmp_path / "c")):
        np.testing.assert_allclose(left, right, atol=1e-6)
    # A finished run leaves no checkpoint, and records how it ran.
    assert not (tmp_path / "c" / CHECKPOINT_DIR).exists()
    with open(tmp_path / "c" / "train_config.json") as f:
        config = json.load(f)
    assert config["resumed_from"] == {
        "epoch": 1, "steps": state["steps"],
        "iterations": state["iterations"]}
    assert (config["checkpoint_every"], config["deterministic"]) == (16, True)
    assert (config["replicas"], config["per_replica_batch_size"]) == (1, 8)


def test_non_finite_loss_stops_training(tmp_path, capsys):
    data = write_tiny_dataset_dir(str(tmp_path / "data"), eval_rows=16)
    model_dir = tmp_path / "model"
    code = main(
        ["train", "--data", data, "--model", "escm2_ips", "--batch-size", "8",
         "--epochs", "2", "--learning-rate", "1e30", "--model-dir",
         str(model_dir), "--checkpoint-every", "1", "--strategy", "mirrored",
         "--no-validation", *TINY])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    line = err.strip().splitlines()[-1]
    assert "Training stopped at step" in line, err
    assert "non-finite loss terms: " in line
    terms = line.split("non-finite loss terms: ")[1].split(".")[0]
    assert set(terms.split(", ")[0].split()) <= {"ctr", "ips", "ctcvr"}, line
    assert "model.keras was not written" in line
    assert not (model_dir / "model.keras").exists()
    # The last good checkpoint stays.
    state = json.loads((model_dir / CHECKPOINT_DIR / STATE_FILE).read_text())
    assert 0 < state["iterations"] < int(line.split("step ")[1].split()[0])
    strategy = [s for s in out.splitlines() if s.startswith("Strategy:")]
    assert len(strategy) == 1 and "1 replica(s)" in strategy[0]
    assert "only one device is visible" in strategy[0]


def test_empty_training_split_is_refused(tmp_path, capsys):
    data = write_tiny_dataset_dir(str(tmp_path / "data"), rows=8,
                                  eval_rows=8)
    summary = os.path.join(data, "summary.json")
    with open(summary) as f:
        counts = json.load(f)
    counts["rows_written"][keys.TRAIN_SPLIT] = 0
    with open(summary, "w") as f:
        json.dump(counts, f)
    base = ["train", "--data", data, "--model", "esmm", "--model-dir",
            str(tmp_path / "model")]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"'{keys.TRAIN_SPLIT}' split of {data} has no rows" in err
    # Without a summary, an empty read tells.
    os.remove(summary)
    train_dir = os.path.join(data, keys.TRAIN_SPLIT)
    for name in os.listdir(train_dir):
        with open(os.path.join(train_dir, name), "wb"):
            pass
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "has no rows" in err and "empty" in err
    assert not (tmp_path / "model").exists()


def test_split_without_clicks_warns_once(tmp_path):
    def no_clicks(row):
        row[keys.CLICK] = row[keys.CONVERSION] = 0

    data = write_tiny_dataset_dir(str(tmp_path / "data"), rows=64,
                                  eval_rows=8, relabel=no_clicks)
    lines = []
    _, info = train(data, model="escm2_dr", epochs=2, batch_size=16,
                    params={"embedding_dim": 4,
                            "backbone_config": {"hidden_units": [8]}},
                    jit_compile=False, verbose=0, log=lines.append)
    warnings = [line for line in lines if line.startswith("Warning:")]
    assert warnings == [
        "Warning: the training split has no clicks and no conversions (64 "
        "rows): the loss terms that need them are 0, so the model learns "
        "nothing from them."
    ]
    assert all(np.isfinite(v).all() for v in info["history"].values())
