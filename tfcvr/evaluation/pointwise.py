"""Per-row error metrics: log loss, bias and RMSE against a target."""

import numpy as np

from tfcvr.evaluation import _validation

DEFAULT_EPSILON = 1e-7


def _check_epsilon(epsilon):
    if not 0.0 < float(epsilon) < 0.5:
        raise ValueError(
            f"`epsilon` must lie in (0, 0.5). Received: epsilon={epsilon}"
        )
    return float(epsilon)


def log_loss(labels, predictions, epsilon=DEFAULT_EPSILON):
    """Mean binary cross-entropy, predictions clipped to [eps, 1 - eps].

    -mean(y log p + (1 - y) log(1 - p)).

    Args:
        labels: 0/1 labels, shape (n,).
        predictions: probabilities in [0, 1], same length.
        epsilon: float. Clip so a confident mistake costs -log(eps), not inf.
            Defaults to 1e-7.

    Returns:
        float; NaN when there are no rows.
    """
    labels = _validation.binary("labels", labels)
    predictions = _validation.probabilities(
        "predictions", predictions, len(labels)
    )
    return _log_loss(labels, predictions, _check_epsilon(epsilon))


def _log_loss(labels, predictions, epsilon):
    if len(labels) == 0:
        return float("nan")
    p = np.clip(predictions.astype(np.float64), epsilon, 1.0 - epsilon)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))


def mean_bias(targets, predictions):
    """mean(predictions) - mean(targets); NaN when there are no rows."""
    targets = _validation.probabilities("targets", targets)
    predictions = _validation.probabilities(
        "predictions", predictions, len(targets)
    )
    return _mean_bias(targets, predictions)


def _mean_bias(targets, predictions):
    if len(targets) == 0:
        return float("nan")
    return float(
        np.mean(predictions, dtype=np.float64)
        - np.mean(targets, dtype=np.float64)
    )


def rmse(targets, predictions):
    """sqrt(mean((predictions - targets)^2)); NaN when there are no rows."""
    targets = _validation.scores("targets", targets)
    predictions = _validation.scores("predictions", predictions, len(targets))
    return _rmse(targets, predictions)


def _rmse(targets, predictions):
    if len(targets) == 0:
        return float("nan")
    diff = predictions.astype(np.float64) - targets.astype(np.float64)
    return float(np.sqrt(np.mean(diff * diff)))
