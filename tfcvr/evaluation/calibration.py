"""Calibration metrics: PCOC, ECE with equal-mass bins, reliability curves.

A CVR model drives bids and prices, so its probabilities must be right on
average, not only well ordered. Targets may be 0/1 labels (observed rate) or
probabilities (the true CVR of simulated data).

- PCOC = mean(prediction) / mean(target): 1 is calibrated, above 1
  over-predicts.
- Equal-mass bins: rows sorted by prediction are cut at ranks
  floor(k n / num_bins), k = 1 .. num_bins - 1; a cut inside a run of equal
  predictions moves to the nearer end of the run, so equal predictions share
  a bin and the result does not depend on row order. Empty bins are dropped.
- ECE = sum_b (n_b / n) |mean prediction_b - mean target_b| over those bins.
"""

import numpy as np

from tfcvr.evaluation import _validation
from tfcvr.evaluation import ranking


def _check_num_bins(num_bins):
    if isinstance(num_bins, bool) or not isinstance(
        num_bins, (int, np.integer)
    ):
        raise ValueError(
            "`num_bins` must be a positive integer. Received: "
            f"num_bins={num_bins!r}"
        )
    if num_bins < 1:
        raise ValueError(
            "`num_bins` must be a positive integer. Received: "
            f"num_bins={num_bins}"
        )
    return int(num_bins)


def pcoc(targets, predictions):
    """Predicted over observed: mean(predictions) / mean(targets).

    Args:
        targets: 0/1 labels or probabilities in [0, 1], shape (n,).
        predictions: probabilities in [0, 1], same length.

    Returns:
        float; NaN when there are no rows or the targets average 0.
    """
    targets = _validation.probabilities("targets", targets)
    predictions = _validation.probabilities(
        "predictions", predictions, len(targets)
    )
    return _pcoc(targets, predictions)


def _pcoc(targets, predictions):
    if len(targets) == 0:
        return float("nan")
    observed = float(np.mean(targets, dtype=np.float64))
    if observed == 0.0:
        return float("nan")
    return float(np.mean(predictions, dtype=np.float64)) / observed


def equal_mass_bin_starts(sorted_values, num_bins):
    """Start index of every equal-mass bin of an ascending array.

    Args:
        sorted_values: ascending array, shape (n,).
        num_bins: int. Bins wanted; fewer come back when ties or n < num_bins
            leave some empty.

    Returns:
        int64 array of strictly increasing starts beginning with 0 (empty
        when n == 0); bin i covers [starts[i], starts[i + 1]) and the last
        bin ends at n.
    """
    num_bins = _check_num_bins(num_bins)
    values = np.asarray(sorted_values).reshape(-1)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cuts = (np.arange(1, num_bins, dtype=np.int64) * n) // num_bins
    cuts = cuts[(cuts > 0) & (cuts < n)]
    left = np.searchsorted(values, values[cuts], side="left")
    right = np.searchsorted(values, values[cuts], side="right")
    moved = np.where(cuts - left <= right - cuts, left, right)
    moved = moved[(moved > 0) & (moved < n)]
    return np.unique(np.concatenate(([0], moved))).astype(np.int64)


def binned_means(bin_by, columns, num_bins=10):
    """Equal-mass bins of `bin_by` and the mean of each column per bin.

    Args:
        bin_by: finite floats, shape (n,). Rows are binned by this value.
        columns: dict of name -> numeric array of n rows to average per bin.
        num_bins: int. Defaults to 10.

    Returns:
        dict of 1-D numpy arrays, one entry per non-empty bin: `count`,
        `lower` and `upper` (smallest and largest `bin_by` in the bin), and
        each name of `columns` holding that column's mean.
    """
    bin_by = _validation.scores("bin_by", bin_by, dtype=None)
    arrays = {
        name: _validation.scores(name, value, len(bin_by), dtype=np.float64)
        for name, value in columns.items()
    }
    return _binned_means(bin_by, arrays, num_bins)


def _binned_means(bin_by, arrays, num_bins):
    # Tied rows always share a bin, so their order cannot change the result.
    order = ranking.argsort(bin_by)
    keys = bin_by[order]
    starts = equal_mass_bin_starts(keys, num_bins)
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.float64)
        out = {
            "count": np.zeros(0, dtype=np.int64),
            "lower": empty,
            "upper": empty,
        }
        out.update({name: empty for name in arrays})
        return out
    ends = np.append(starts[1:], len(keys))
    counts = ends - starts
    out = {
        "count": counts,
        "lower": keys[starts].astype(np.float64),
        "upper": keys[ends - 1].astype(np.float64),
    }
    for name, array in arrays.items():
        ordered = keys if array is bin_by else array[order]
        sums = np.add.reduceat(ordered.astype(np.float64), starts)
        out[name] = sums / counts
    return out


def reliability_curve(targets, predictions, num_bins=10):
    """Reliability-diagram data over equal-mass bins of the predictions.

    Args:
        targets: 0/1 labels or probabilities in [0, 1], shape (n,).
        predictions: probabilities in [0, 1], same length.
        num_bins: int. Defaults to 10.

    Returns:
        JSON-ready dict of equal-length lists, one entry per bin:
        `mean_prediction`, `observed_rate` (mean target), `count`, `lower`
        and `upper` (prediction range of the bin).
    """
    targets = _validation.probabilities("targets", targets)
    predictions = _validation.probabilities(
        "predictions", predictions, len(targets)
    )
    return _reliability_curve(targets, predictions, _check_num_bins(num_bins))


def _reliability_curve(targets, predictions, num_bins):
    bins = _binned_means(
        predictions,
        {"mean_prediction": predictions, "observed_rate": targets},
        num_bins,
    )
    return {
        "mean_prediction": bins["mean_prediction"].tolist(),
        "observed_rate": bins["observed_rate"].tolist(),
        "count": [int(c) for c in bins["count"]],
        "lower": bins["lower"].tolist(),
        "upper": bins["upper"].tolist(),
    }


def ece_from_reliability(curve):
    """ECE of a `reliability_curve` result; NaN when it has no rows."""
    counts = np.asarray(curve["count"], dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    gaps = np.abs(
        np.asarray(curve["mean_prediction"], dtype=np.float64)
        - np.asarray(curve["observed_rate"], dtype=np.float64)
    )
    return float(np.sum(counts * gaps) / total)


def expected_calibration_error(targets, predictions, num_bins=10):
    """Expected calibration error over equal-mass bins of the predictions.

    Args:
        targets: 0/1 labels or probabilities in [0, 1], shape (n,).
        predictions: probabilities in [0, 1], same length.
        num_bins: int. Defaults to 10.

    Returns:
        float; NaN when there are no rows.
    """
    return ece_from_reliability(
        reliability_curve(targets, predictions, num_bins)
    )
