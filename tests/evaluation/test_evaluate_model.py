import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcvr.evaluation import CVREvaluator
from tfcvr.evaluation import evaluate_model
from tfcvr.evaluation import metric_names as m
from tfcvr.features import keys


class FakeModel:
    """Scores from the features, returned as (B, 1) like a Keras model."""

    def __init__(self):
        self.calls = 0

    def predict_on_batch(self, features):
        self.calls += 1
        ctr = np.asarray(features["x"], dtype=np.float32).reshape(-1, 1)
        cvr = 1.0 - ctr
        return {keys.CTR: ctr, keys.CVR: cvr, keys.CTCVR: ctr * cvr, "aux": ctr}


class CallableModel:
    def __call__(self, features, training=None):
        assert training is False
        x = np.asarray(features["x"])
        return {keys.CTR: x, keys.CVR: x, keys.CTCVR: x * x}


def _batches(num_batches=6, batch_size=50, seed=0, truth_in="labels"):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_batches):
        x = rng.random(batch_size)
        click = (rng.random(batch_size) < x).astype(np.int64)
        conversion = click * (rng.random(batch_size) < 0.5)
        features = {"x": x, "user": rng.integers(0, 10, batch_size)}
        labels = {keys.CLICK: click, keys.CONVERSION: conversion}
        truth = {
            keys.TRUE_CVR: 1.0 - x,
            keys.CONVERSION_IF_CLICKED: (rng.random(batch_size) < 0.5).astype(
                int
            ),
        }
        (labels if truth_in == "labels" else features).update(truth)
        out.append((features, labels))
    return out


def test_evaluate_model_over_a_list_of_batches():
    batches = _batches()
    model = FakeModel()
    r = evaluate_model(model, batches, user_id_feature="user")
    x = np.concatenate([f["x"] for f, _ in batches]).astype(np.float32)
    click = np.concatenate([lab[keys.CLICK] for _, lab in batches])
    assert model.calls == 6
    assert r[m.NUM_BATCHES] == 6 and r[m.NUM_ROWS] == 300
    assert r[m.CTR_AUC] == pytest.approx(roc_auc_score(click, x), abs=1e-12)
    assert r[m.GAUC_CTR + m.USERS_USED_SUFFIX] > 0
    # pCVR = 1 - x = true CVR (up to float32 rounding of the stored values)
    assert r[m.CVR_RMSE_TRUE] < 1e-7


def test_ground_truth_may_travel_in_the_features():
    r = evaluate_model(FakeModel(), _batches(truth_in="features"))
    assert m.CVR_AUC_TRUE in r and m.CVR_BIAS_UNCLICKED in r
    assert m.GAUC_CTR not in r


def test_max_batches_and_callable_model():
    batches = _batches()
    r = evaluate_model(CallableModel(), iter(batches), max_batches=2)
    assert r[m.NUM_BATCHES] == 2 and r[m.NUM_ROWS] == 100
    assert (
        evaluate_model(CallableModel(), batches, max_batches=0)[m.NUM_ROWS] == 0
    )


def test_progress_bar_and_configured_evaluator(capsys):
    evaluator = CVREvaluator(num_bins=3)
    r = evaluate_model(
        FakeModel(), _batches(), progress=True, evaluator=evaluator
    )
    assert len(r[m.RELIABILITY][m.RELIABILITY_CTR]["count"]) == 3
    assert "evaluate" in capsys.readouterr().err


def test_bad_input_gives_one_line_errors():
    batches = _batches(num_batches=2)
    with pytest.raises(ValueError, match="user_id_feature"):
        evaluate_model(FakeModel(), batches, user_id_feature="nope")
    with pytest.raises(ValueError, match="pair"):
        evaluate_model(FakeModel(), [(batches[0][0], batches[0][1], None)])
    with pytest.raises(ValueError, match="labels must be a dict"):
        evaluate_model(FakeModel(), [(batches[0][0], np.zeros(50))])
    with pytest.raises(ValueError, match="return a dict"):
        evaluate_model(lambda f, training: np.zeros(50), batches)
    with pytest.raises(ValueError, match="max_batches"):
        evaluate_model(FakeModel(), batches, max_batches=-1)
    broken = [(batches[0][0], {keys.CLICK: batches[0][1][keys.CLICK]})]
    with pytest.raises(ValueError, match=r"Batch 0: .*missing"):
        evaluate_model(FakeModel(), broken)


def test_evaluation_imports_neither_tensorflow_nor_keras():
    code = (
        "import sys, tfcvr.evaluation; "
        "bad = [n for n in ('tensorflow', 'keras', 'jax', 'torch') "
        "if n in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keras_model_on_a_tf_data_dataset():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    x_in = keras.Input(shape=(1,), name="x")
    user_in = keras.Input(shape=(1,), name="user", dtype="string")
    ctr = keras.layers.Dense(1, activation="sigmoid", name=keys.CTR)(x_in)
    cvr = keras.layers.Dense(1, activation="sigmoid", name=keys.CVR)(x_in)
    ctcvr = keras.layers.Multiply(name=keys.CTCVR)([ctr, cvr])
    model = keras.Model(
        {"x": x_in, "user": user_in},
        {keys.CTR: ctr, keys.CVR: cvr, keys.CTCVR: ctcvr},
    )
    rng = np.random.default_rng(0)
    n = 200
    features = {
        "x": rng.random((n, 1)).astype(np.float32),
        "user": np.array([[f"u{i % 7}".encode()] for i in range(n)]),
    }
    labels = {
        keys.CLICK: (rng.random((n, 1)) < 0.4).astype(np.float32),
        keys.CONVERSION: np.zeros((n, 1), np.float32),
    }
    labels[keys.CONVERSION][:20] = labels[keys.CLICK][:20]
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(64)
    r = evaluate_model(model, dataset, user_id_feature="user")
    assert r[m.NUM_ROWS] == n and r[m.NUM_BATCHES] == 4
    expected = model.predict_on_batch(
        {"x": features["x"], "user": tf.constant(features["user"])}
    )
    assert r[m.CTR_AUC] == pytest.approx(
        roc_auc_score(labels[keys.CLICK][:, 0], expected[keys.CTR][:, 0]),
        abs=1e-6,
    )
    assert (
        r[m.GAUC_CTR + m.USERS_USED_SUFFIX]
        + r[m.GAUC_CTR + m.USERS_SKIPPED_SUFFIX]
        == 7
    )
