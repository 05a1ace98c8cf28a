import json

import numpy as np
import pytest

from tfcvr.evaluation import binned_means
from tfcvr.evaluation import ece_from_reliability
from tfcvr.evaluation import equal_mass_bin_starts
from tfcvr.evaluation import expected_calibration_error
from tfcvr.evaluation import pcoc
from tfcvr.evaluation import reliability_curve


def test_pcoc_hand_computed():
    assert pcoc([0, 1, 0, 1], [0.2, 0.4, 0.6, 0.8]) == pytest.approx(1.0)
    assert pcoc([0, 0, 0, 1], [0.1, 0.1, 0.1, 0.1]) == pytest.approx(0.4)
    # probabilistic targets (true CVR)
    assert pcoc([0.1, 0.3], [0.4, 0.4]) == pytest.approx(2.0)


def test_pcoc_undefined_is_nan():
    assert np.isnan(pcoc([], []))
    assert np.isnan(pcoc([0, 0], [0.3, 0.1]))


@pytest.mark.parametrize(
    "n, num_bins, expected",
    [
        (10, 3, [0, 3, 6]),
        (6, 3, [0, 2, 4]),
        (2, 5, [0, 1]),
        (1, 10, [0]),
        (0, 4, []),
    ],
)
def test_equal_mass_bin_starts_without_ties(n, num_bins, expected):
    starts = equal_mass_bin_starts(np.arange(n, dtype=float), num_bins)
    assert starts.tolist() == expected


def test_equal_mass_bins_keep_ties_together():
    # The cut at rank 2 lies in the run [0, 3); the nearer end is 3.
    assert equal_mass_bin_starts([0.1, 0.1, 0.1, 0.2], 2).tolist() == [0, 3]
    # The cut at rank 1 is nearer the run's start, which is 0: one bin only.
    assert equal_mass_bin_starts([0.1, 0.1, 0.1, 0.2], 4).tolist() == [0, 3]
    assert equal_mass_bin_starts([0.5] * 9, 3).tolist() == [0]


def test_ece_hand_computed():
    predictions = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    targets = [0, 0, 1, 0, 1, 1]
    # bins {.1,.2} gap .15, {.3,.4} gap |.35-.5| = .15, {.5,.6} gap .45
    assert expected_calibration_error(targets, predictions, 3) == pytest.approx(
        0.25
    )
    curve = reliability_curve(targets, predictions, 3)
    assert curve["count"] == [2, 2, 2]
    assert curve["mean_prediction"] == pytest.approx([0.15, 0.35, 0.55])
    assert curve["observed_rate"] == pytest.approx([0.0, 0.5, 1.0])
    assert curve["lower"] == pytest.approx([0.1, 0.3, 0.5])
    assert curve["upper"] == pytest.approx([0.2, 0.4, 0.6])
    assert ece_from_reliability(curve) == pytest.approx(0.25)
    json.dumps(curve)
    # one bin: |mean prediction - rate| = |0.35 - 0.5|
    assert expected_calibration_error(targets, predictions, 1) == pytest.approx(
        0.15
    )


def test_ece_of_tied_predictions_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    predictions = rng.integers(1, 6, 500) / 10.0
    targets = (rng.random(500) < predictions).astype(int)
    first = reliability_curve(targets, predictions, 10)
    order = rng.permutation(500)
    second = reliability_curve(targets[order], predictions[order], 10)
    assert first == second
    assert len(first["count"]) == 5  # one bin per distinct prediction here
    assert sum(first["count"]) == 500


def test_perfect_calibration_in_expectation_has_small_ece():
    rng = np.random.default_rng(1)
    predictions = rng.random(200_000) * 0.2
    targets = (rng.random(200_000) < predictions).astype(int)
    assert expected_calibration_error(targets, predictions) < 0.003
    assert (
        expected_calibration_error(targets, np.minimum(predictions * 2, 1))
        > 0.05
    )


def test_ece_with_probability_targets():
    # bins {0.2 vs 0.1} and {0.25 vs 0.3}: (0.1 + 0.05) / 2
    assert expected_calibration_error(
        [0.1, 0.3], [0.2, 0.25], 2
    ) == pytest.approx(0.075)
    # equal predictions share one bin: |0.2 - mean(0.1, 0.3)| = 0
    assert expected_calibration_error(
        [0.1, 0.3], [0.2, 0.2], 2
    ) == pytest.approx(0.0)


def test_empty_calibration():
    assert np.isnan(expected_calibration_error([], []))
    assert reliability_curve([], [])["count"] == []


def test_binned_means_per_bin():
    out = binned_means(
        [3.0, 1.0, 2.0, 4.0], {"x": [30, 10, 20, 40]}, num_bins=2
    )
    assert out["count"].tolist() == [2, 2]
    assert out["x"].tolist() == [15.0, 35.0]
    assert out["lower"].tolist() == [1.0, 3.0]


@pytest.mark.parametrize("num_bins", [0, -1, 2.5, True, "10"])
def test_invalid_num_bins(num_bins):
    with pytest.raises(ValueError, match="num_bins"):
        reliability_curve([0, 1], [0.2, 0.3], num_bins)


def test_predictions_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match="logits"):
        pcoc([0, 1], [0.2, 1.5])
