import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from tfcvr.evaluation import log_loss
from tfcvr.evaluation import mean_bias
from tfcvr.evaluation import rmse


def test_log_loss_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    predictions = rng.uniform(0.01, 0.99, 1000)
    assert log_loss(labels, predictions) == pytest.approx(
        sklearn_log_loss(labels, predictions), rel=1e-12
    )


def test_log_loss_clips_certain_mistakes():
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(1e-7))
    assert log_loss([1], [0.0], epsilon=1e-3) == pytest.approx(-np.log(1e-3))
    assert np.isnan(log_loss([], []))
    with pytest.raises(ValueError, match="epsilon"):
        log_loss([1], [0.5], epsilon=0.0)


def test_bias_and_rmse():
    assert mean_bias([0.1, 0.3], [0.3, 0.3]) == pytest.approx(0.1)
    assert rmse([0.0, 0.0], [0.3, 0.4]) == pytest.approx(np.sqrt(0.125))
    assert rmse([0.2, 0.5], [0.2, 0.5]) == 0.0
    assert np.isnan(mean_bias([], [])) and np.isnan(rmse([], []))
