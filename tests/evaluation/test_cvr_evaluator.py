import json
import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import roc_auc_score

from tfcvr.evaluation import CVREvaluator
from tfcvr.evaluation import grouped_auc
from tfcvr.evaluation import json_safe
from tfcvr.evaluation import metric_names as m
from tfcvr.features import keys


def _simulate(n=20_000, seed=0):
    """Impressions with known click and conversion probabilities."""
    rng = np.random.default_rng(seed)
    true_ctr = rng.uniform(0.02, 0.6, n)
    # Selection bias: users who click more also convert more.
    true_cvr = np.clip(
        0.05 + 0.5 * true_ctr + rng.normal(0, 0.05, n), 0.01, 0.95
    )
    click = (rng.random(n) < true_ctr).astype(np.int64)
    if_clicked = (rng.random(n) < true_cvr).astype(np.int64)
    labels = {
        keys.CLICK: click,
        keys.CONVERSION: click * if_clicked,
        keys.TRUE_CTR: true_ctr,
        keys.TRUE_CVR: true_cvr,
        keys.CONVERSION_IF_CLICKED: if_clicked,
    }
    users = rng.integers(0, 300, n)
    return labels, users, rng


def _predictions(ctr, cvr, ctcvr=None):
    ctcvr = ctr * cvr if ctcvr is None else ctcvr
    return {keys.CTR: ctr, keys.CVR: cvr, keys.CTCVR: ctcvr}


def _feed(evaluator, predictions, labels, users=None, batch_size=1000):
    n = len(labels[keys.CLICK])
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        evaluator.update(
            {k: v[part].reshape(-1, 1) for k, v in predictions.items()},
            {k: v[part] for k, v in labels.items()},
            None if users is None else users[part],
        )


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(
            _same(x, y) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_every_auc_and_logloss_matches_sklearn():
    labels, users, rng = _simulate()
    ctr = rng.uniform(0.01, 0.99, len(users))
    cvr = rng.uniform(0.01, 0.99, len(users))
    ctr = np.round(ctr, 2)  # ties
    predictions = _predictions(ctr, cvr)
    evaluator = CVREvaluator(score_dtype="float64")
    _feed(evaluator, predictions, labels, users)
    r = evaluator.result()

    click = labels[keys.CLICK] == 1
    purchase = labels[keys.CONVERSION] == 1
    ctcvr = predictions[keys.CTCVR]
    assert r[m.CTR_AUC] == pytest.approx(roc_auc_score(click, ctr), abs=1e-12)
    assert r[m.CVR_AUC_CLICKED] == pytest.approx(
        roc_auc_score(purchase[click], cvr[click]), abs=1e-12
    )
    assert r[m.CVR_AUC_EXPOSURE] == pytest.approx(
        roc_auc_score(purchase, cvr), abs=1e-12
    )
    assert r[m.CTCVR_AUC] == pytest.approx(
        roc_auc_score(purchase, ctcvr), abs=1e-12
    )
    assert r[m.CVR_AUC_TRUE] == pytest.approx(
        roc_auc_score(labels[keys.CONVERSION_IF_CLICKED], cvr), abs=1e-12
    )
    assert r[m.CTR_LOGLOSS] == pytest.approx(
        sklearn_log_loss(click, ctr), rel=1e-9
    )
    assert r[m.CVR_LOGLOSS_CLICKED] == pytest.approx(
        sklearn_log_loss(purchase[click], cvr[click]), rel=1e-9
    )
    assert r[m.CTCVR_LOGLOSS] == pytest.approx(
        sklearn_log_loss(purchase, ctcvr), rel=1e-9
    )
    assert r[m.CTR_PCOC] == pytest.approx(ctr.mean() / click.mean())
    assert r[m.CVR_PCOC_CLICKED] == pytest.approx(
        cvr[click].mean() / purchase[click].mean()
    )
    assert r[m.CTCVR_PCOC] == pytest.approx(ctcvr.mean() / purchase.mean())
    for name, mask, target, score in (
        (m.GAUC_CTR, slice(None), click, ctr),
        (m.GAUC_CVR_CLICKED, click, purchase, cvr),
        (m.GAUC_CTCVR, slice(None), purchase, ctcvr),
    ):
        expected = grouped_auc(users[mask], target[mask], score[mask])
        assert r[name] == pytest.approx(expected["gauc"], abs=1e-12)
        assert r[name + m.USERS_USED_SUFFIX] == expected["groups_used"]
        assert r[name + m.USERS_SKIPPED_SUFFIX] == expected["groups_skipped"]
    assert r[m.SUPPORT][m.CVR_AUC_CLICKED] == {
        "positives": int(purchase.sum()),
        "negatives": int((click & ~purchase).sum()),
    }
    assert r[m.NUM_ROWS] == len(click)
    assert r[m.NUM_CLICKS] == click.sum()
    assert r[m.NUM_CONVERSIONS] == purchase.sum()
    assert r[m.UNDEFINED_METRICS] == []


def test_perfect_predictor_and_the_protocols_disagree():
    labels, _, _ = _simulate(seed=1)
    click = labels[keys.CLICK].astype(float)
    if_clicked = labels[keys.CONVERSION_IF_CLICKED].astype(float)
    evaluator = CVREvaluator()
    _feed(evaluator, _predictions(click, if_clicked), labels)
    r = evaluator.result()
    assert r[m.CTR_AUC] == 1.0
    assert r[m.CVR_AUC_CLICKED] == 1.0
    assert r[m.CTCVR_AUC] == 1.0
    assert r[m.CVR_AUC_TRUE] == 1.0
    # The exposure protocol counts unclicked would-be converters as
    # negatives, so even the perfect pCVR scores below 1 there.
    purchase = labels[keys.CONVERSION]
    assert r[m.CVR_AUC_EXPOSURE] == pytest.approx(
        roc_auc_score(purchase, if_clicked), abs=1e-12
    )
    negatives = purchase == 0
    tied = (negatives & (if_clicked == 1)).sum()  # unclicked would-be buyers
    assert r[m.CVR_AUC_EXPOSURE] == pytest.approx(
        1.0 - 0.5 * tied / negatives.sum(), abs=1e-12
    )
    assert tied > 0 and r[m.CVR_AUC_EXPOSURE] < 1.0


def test_truth_as_prediction_has_no_bias_and_a_naive_model_does():
    labels, _, _ = _simulate(seed=2)
    true_ctr, true_cvr = labels[keys.TRUE_CTR], labels[keys.TRUE_CVR]
    truth = CVREvaluator()
    _feed(truth, _predictions(true_ctr, true_cvr), labels)
    r = truth.result()
    assert r[m.CVR_BIAS_UNCLICKED] == pytest.approx(0.0, abs=1e-7)
    assert r[m.CVR_RMSE_TRUE] == 0.0
    assert r[m.CVR_PCOC_UNCLICKED_TRUE] == pytest.approx(1.0, abs=1e-6)
    assert r[m.CVR_ECE_UNCLICKED_TRUE] == pytest.approx(0.0, abs=1e-7)
    assert r[m.CTR_PCOC] == pytest.approx(1.0, abs=0.03)  # sampling noise only

    # A model that predicts the clicked-row conversion rate everywhere
    # ignores selection bias: it over-predicts the unclicked rows.
    click = labels[keys.CLICK] == 1
    clicked_rate = labels[keys.CONVERSION][click].mean()
    naive_cvr = np.full(len(click), clicked_rate)
    naive = CVREvaluator()
    _feed(naive, _predictions(true_ctr, naive_cvr), labels)
    r = naive.result()
    unclicked = ~click
    expected_bias = clicked_rate - true_cvr[unclicked].mean()
    assert r[m.CVR_BIAS_UNCLICKED] == pytest.approx(expected_bias, abs=1e-6)
    assert r[m.CVR_BIAS_UNCLICKED] > 0.02
    expected_rmse = np.sqrt(np.mean((np.float32(clicked_rate) - true_cvr) ** 2))
    assert r[m.CVR_RMSE_TRUE] == pytest.approx(expected_rmse, rel=1e-5)
    assert r[m.CVR_AUC_CLICKED] == 0.5  # a constant ranks nothing

    deciles = r[m.CVR_BIAS_BY_CTR_BIN_UNCLICKED]
    assert len(deciles["count"]) == 10
    assert sum(deciles["count"]) == unclicked.sum()
    assert deciles["mean_ctr"] == sorted(deciles["mean_ctr"])
    assert deciles["bias"] == pytest.approx(
        np.subtract(deciles["mean_cvr"], deciles["mean_true_cvr"]).tolist()
    )
    # true CVR grows with CTR in the simulation, so the constant pCVR is
    # too high at low pCTR and too low at high pCTR.
    assert deciles["bias"][0] > 0 > deciles["bias"][-1]


def test_streaming_equals_one_shot():
    labels, users, rng = _simulate(n=5000, seed=3)
    n = len(users)
    predictions = _predictions(rng.random(n), rng.random(n))
    one_shot = CVREvaluator()
    _feed(one_shot, predictions, labels, users, batch_size=n)
    streamed = CVREvaluator(chunk_rows=700)
    _feed(streamed, predictions, labels, users, batch_size=333)
    assert _same(one_shot.result(), streamed.result())


def test_undefined_metrics_are_nan_with_counts():
    n = 50
    labels = {keys.CLICK: np.zeros(n, int), keys.CONVERSION: np.zeros(n, int)}
    evaluator = CVREvaluator()
    rng = np.random.default_rng(0)
    _feed(
        evaluator,
        _predictions(rng.random(n), rng.random(n)),
        labels,
        np.arange(n) % 5,
        batch_size=7,
    )
    r = evaluator.result()
    for name in (
        m.CTR_AUC,
        m.CVR_AUC_CLICKED,
        m.CVR_AUC_EXPOSURE,
        m.CTCVR_AUC,
        m.CVR_LOGLOSS_CLICKED,
        m.CVR_PCOC_CLICKED,
        m.CVR_ECE_CLICKED,
        m.CTR_PCOC,
        m.GAUC_CTR,
        m.GAUC_CVR_CLICKED,
    ):
        assert math.isnan(r[name]), name
        assert name in r[m.UNDEFINED_METRICS]
    assert r[m.SUPPORT][m.CTR_AUC] == {"positives": 0, "negatives": n}
    assert r[m.SUPPORT][m.CVR_AUC_CLICKED] == {"positives": 0, "negatives": 0}
    assert r[m.GAUC_CTR + m.USERS_SKIPPED_SUFFIX] == 5
    assert r[m.GAUC_CVR_CLICKED + m.USERS_USED_SUFFIX] == 0
    assert r[m.CTR_LOGLOSS] > 0  # defined: there are rows
    assert r[m.RELIABILITY][m.RELIABILITY_CVR_CLICKED]["count"] == []
    assert m.CVR_AUC_TRUE not in r  # no ground truth given
    json.dumps(json_safe(r), allow_nan=False)


def test_empty_evaluator_reports_nan():
    r = CVREvaluator().result()
    assert r[m.NUM_ROWS] == 0
    assert math.isnan(r[m.CTR_AUC]) and math.isnan(r[m.CTR_LOGLOSS])
    assert m.GAUC_CTR not in r


def test_result_is_json_serialisable_and_plain_python():
    labels, users, rng = _simulate(n=2000, seed=4)
    evaluator = CVREvaluator(num_bins=5, num_ctr_bins=4)
    n = len(users)
    _feed(evaluator, _predictions(rng.random(n), rng.random(n)), labels, users)
    r = evaluator.result()
    assert json.loads(json.dumps(r)) == json.loads(json.dumps(json_safe(r)))
    assert set(r[m.RELIABILITY]) == {
        m.RELIABILITY_CTR,
        m.RELIABILITY_CVR_CLICKED,
        m.RELIABILITY_CTCVR,
        m.RELIABILITY_CVR_UNCLICKED_TRUE,
    }
    assert len(r[m.RELIABILITY][m.RELIABILITY_CTR]["count"]) == 5
    assert len(r[m.CVR_BIAS_BY_CTR_BIN_UNCLICKED]["count"]) == 4
    assert r[m.PROTOCOL] == m.PROTOCOL_OBSERVATIONAL
    for value in r.values():
        assert type(value) in (int, float, str, list, dict)


def test_bad_batches_raise_clear_errors():
    evaluator = CVREvaluator()
    good_labels = {keys.CLICK: [0, 1], keys.CONVERSION: [0, 1]}
    good_predictions = _predictions(np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    with pytest.raises(ValueError, match="missing"):
        evaluator.update({keys.CTR: [0.1, 0.2]}, good_labels)
    with pytest.raises(ValueError, match="missing"):
        evaluator.update(good_predictions, {keys.CLICK: [0, 1]})
    with pytest.raises(ValueError, match="logits"):
        evaluator.update(
            _predictions(np.array([0.1, 2.0]), np.array([0.3, 0.4])),
            good_labels,
        )
    with pytest.raises(ValueError, match="rows"):
        evaluator.update(
            good_predictions, {keys.CLICK: [0], keys.CONVERSION: [0]}
        )
    with pytest.raises(ValueError, match="must be a dict"):
        evaluator.update([0.1, 0.2], good_labels)
    assert evaluator.num_rows == 0  # nothing half-written
    evaluator.update(good_predictions, good_labels, user_ids=[1, 2])
    with pytest.raises(ValueError, match="same optional inputs"):
        evaluator.update(good_predictions, good_labels)
    with pytest.raises(ValueError, match="same optional inputs"):
        evaluator.update(
            good_predictions,
            dict(good_labels, **{keys.TRUE_CVR: [0.1, 0.2]}),
            user_ids=[1, 2],
        )
    assert evaluator.num_rows == 2


def test_unclicked_conversions_are_counted_not_used():
    evaluator = CVREvaluator()
    evaluator.update(
        _predictions(np.array([0.1, 0.8, 0.5]), np.array([0.9, 0.2, 0.5])),
        {keys.CLICK: [0, 1, 1], keys.CONVERSION: [1, 0, 1]},
    )
    r = evaluator.result()
    assert r[m.NUM_UNCLICKED_CONVERSIONS] == 1
    assert r[m.NUM_CONVERSIONS] == 1
    assert r[m.CVR_AUC_CLICKED] == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_bins": 0},
        {"num_ctr_bins": 1.5},
        {"epsilon": 0.7},
        {"score_dtype": "float16"},
        {"chunk_rows": 0},
        {"protocol": "randomised"},
    ],
)
def test_invalid_constructor_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        CVREvaluator(**kwargs)


def test_get_config_round_trip():
    evaluator = CVREvaluator(num_bins=7, epsilon=1e-6)
    again = CVREvaluator(**evaluator.get_config())
    assert again.get_config() == evaluator.get_config()


def test_result_before_updates_and_a_rejected_first_batch_lock_nothing():
    evaluator = CVREvaluator()
    evaluator.result()
    labels = {keys.CLICK: [0, 1], keys.CONVERSION: [0, 1]}
    predictions = _predictions(np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    with pytest.raises(ValueError, match=keys.TRUE_CVR):
        evaluator.update(
            predictions, dict(labels, **{keys.TRUE_CVR: [0.1, 7.0]})
        )
    evaluator.update(predictions, labels, user_ids=["a", "b"])
    r = evaluator.result()
    assert r[m.NUM_ROWS] == 2 and m.GAUC_CTR in r and m.CVR_RMSE_TRUE not in r


def test_all_nan_ground_truth_counts_as_absent_and_partial_nan_is_an_error():
    # The TFRecord parser fills a declared but absent extra column with NaN.
    labels = {
        keys.CLICK: np.array([0.0, 1.0]),
        keys.CONVERSION: np.array([0.0, 1.0]),
        keys.TRUE_CVR: np.full(2, np.nan, np.float32),
        keys.CONVERSION_IF_CLICKED: np.full((2, 1), np.nan, np.float32),
        "row_id": np.array([1.0, 2.0]),
    }
    predictions = _predictions(np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    evaluator = CVREvaluator()
    evaluator.update(predictions, labels)
    assert m.CVR_AUC_TRUE not in evaluator.result()
    partly = dict(labels, **{keys.TRUE_CVR: np.array([0.2, np.nan])})
    with pytest.raises(ValueError, match="1 NaN"):
        CVREvaluator().update(predictions, partly)
    partly = dict(
        labels, **{keys.CONVERSION_IF_CLICKED: np.array([1.0, np.nan])}
    )
    with pytest.raises(ValueError, match="1 NaN"):
        CVREvaluator().update(predictions, partly)


def _randomised_test(n=3000, seed=7):
    """A MAR test log: every row rated (click = 1), conversion observed."""
    labels, users, rng = _simulate(n=n, seed=seed)
    outcome = labels[keys.CONVERSION_IF_CLICKED]
    mar = {keys.CLICK: np.ones(n, np.int64), keys.CONVERSION: outcome}
    return mar, users, rng, labels[keys.TRUE_CVR]


def test_all_clicked_rows_are_a_randomised_test_under_names_of_their_own():
    labels, users, rng, true_cvr = _randomised_test()
    n = len(users)
    cvr = np.clip(true_cvr + rng.normal(0, 0.1, n), 0.01, 0.99)
    ctr = np.full(n, 0.5)
    evaluator = CVREvaluator(num_bins=5)
    _feed(evaluator, _predictions(ctr, cvr), labels, users)
    r = evaluator.result()
    outcome = labels[keys.CONVERSION]
    assert r[m.PROTOCOL] == m.PROTOCOL_MAR
    assert "click = 1" in r[m.PROTOCOL_REASON]
    assert r[m.CVR_AUC_MAR] == pytest.approx(roc_auc_score(outcome, cvr), abs=1e-9)
    assert r[m.CVR_LOGLOSS_MAR] == pytest.approx(
        sklearn_log_loss(outcome, cvr), abs=1e-6
    )
    assert r[m.CVR_PCOC_MAR] == pytest.approx(cvr.mean() / outcome.mean(), rel=1e-5)
    assert m.GAUC_CVR_MAR in r and m.RELIABILITY_CVR_MAR in r[m.RELIABILITY]
    # Never mixed: the clicked and exposure protocols are not reported.
    for name in (m.CVR_AUC_CLICKED, m.CVR_AUC_EXPOSURE, m.CVR_LOGLOSS_CLICKED,
                 m.CVR_PCOC_CLICKED, m.CVR_ECE_CLICKED, m.GAUC_CVR_CLICKED):
        assert name not in r, name
    assert m.RELIABILITY_CVR_CLICKED not in r[m.RELIABILITY]
    json.dumps(json_safe(r), allow_nan=False)


def test_protocol_can_be_forced_either_way():
    labels, users, rng = _simulate(n=2000, seed=3)
    n = len(users)
    predictions = _predictions(rng.random(n), rng.random(n))
    forced = CVREvaluator(protocol=m.PROTOCOL_MAR)
    _feed(forced, predictions, labels)
    r = forced.result()
    # Forced MAR reads the conversion label on every row, clicked or not.
    assert r[m.PROTOCOL] == m.PROTOCOL_MAR and r[m.PROTOCOL_REASON] == "requested"
    assert r[m.CVR_AUC_MAR] == pytest.approx(
        roc_auc_score(labels[keys.CONVERSION], predictions[keys.CVR]), abs=1e-9
    )
    mar, _, _, _ = _randomised_test(n=500)
    observational = CVREvaluator(protocol=m.PROTOCOL_OBSERVATIONAL)
    _feed(observational, _predictions(np.full(500, 0.5), rng.random(500)), mar)
    r = observational.result()
    assert r[m.PROTOCOL] == m.PROTOCOL_OBSERVATIONAL
    assert m.CVR_AUC_CLICKED in r and m.CVR_AUC_MAR not in r
