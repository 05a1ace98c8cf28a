import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcvr.evaluation import grouped_auc
from tfcvr.evaluation import roc_auc


def _slow_gauc(groups, labels, scores):
    total, weight, used, skipped = 0.0, 0, 0, 0
    for g in np.unique(groups):
        rows = groups == g
        if len(np.unique(labels[rows])) < 2:
            skipped += 1
            continue
        total += rows.sum() * roc_auc_score(labels[rows], scores[rows])
        weight += rows.sum()
        used += 1
    return (total / weight if weight else float("nan")), used, skipped, weight


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_sklearn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    continuous = rng.random(n)
    tied = rng.integers(0, 7, n) / 7.0  # heavy ties
    for scores in (continuous, tied, continuous.astype(np.float32)):
        assert roc_auc(labels, scores) == pytest.approx(
            roc_auc_score(labels, scores), abs=1e-12
        )


def test_roc_auc_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    # every pair tied -> 1/2
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # one positive above one negative, tied with the other: (1 + 0.5) / 2
    assert roc_auc([0, 0, 1], [0.1, 0.7, 0.7]) == 0.75


def test_roc_auc_accepts_column_vectors_and_bools():
    labels = np.array([[True], [False], [True]])
    scores = np.array([[0.9], [0.2], [0.1]])
    assert roc_auc(labels, scores) == 0.5


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_roc_auc_single_class_is_nan(labels):
    assert np.isnan(roc_auc(labels, np.linspace(0, 1, len(labels))))


@pytest.mark.parametrize(
    "labels, scores, message",
    [
        ([0, 2], [0.1, 0.2], "only 0 and 1"),
        ([0, 1], [0.1, np.nan], "finite"),
        ([0, 1], [0.1], "rows"),
        ([[0, 1], [1, 0]], [0.1, 0.2], "shape"),
    ],
)
def test_roc_auc_rejects_bad_input(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(labels, scores)


@pytest.mark.parametrize("seed", range(4))
def test_grouped_auc_matches_per_user_reference(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    groups = rng.integers(0, 150, n) * 1000 - 7  # sparse, negative ids too
    labels = (rng.random(n) < rng.choice([0.02, 0.3, 0.7])).astype(int)
    scores = np.round(rng.random(n) + 0.3 * labels, 1)  # ties within users
    got = grouped_auc(groups, labels, scores)
    gauc, used, skipped, rows = _slow_gauc(groups, labels, scores)
    assert got["gauc"] == pytest.approx(gauc, abs=1e-12)
    assert (got["groups_used"], got["groups_skipped"], got["rows_used"]) == (
        used,
        skipped,
        rows,
    )
    assert used > 0 and skipped > 0


def test_grouped_auc_weights_by_impressions():
    # user 1: 4 rows, AUC 1; user 2: 2 rows, AUC 0; user 3: one class, skipped.
    groups = [1, 1, 1, 1, 2, 2, 3, 3]
    labels = [0, 0, 1, 1, 1, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.4, 0.1, 0.9, 0.5, 0.6]
    got = grouped_auc(groups, labels, scores)
    assert got["gauc"] == pytest.approx((4 * 1.0 + 2 * 0.0) / 6)
    assert got["groups_used"] == 2 and got["groups_skipped"] == 1
    assert got["rows_used"] == 6


def test_grouped_auc_without_any_two_class_user_is_nan():
    got = grouped_auc([1, 1, 2], [0, 0, 1], [0.1, 0.2, 0.3])
    assert np.isnan(got["gauc"])
    assert got["groups_used"] == 0 and got["groups_skipped"] == 2
    empty = grouped_auc(np.zeros(0, int), [], [])
    assert np.isnan(empty["gauc"]) and empty["groups_skipped"] == 0


def test_grouped_auc_rejects_string_groups():
    with pytest.raises(ValueError, match="integer ids"):
        grouped_auc(["a", "b"], [0, 1], [0.1, 0.2])


def test_float32_fast_path_equals_generic_path():
    rng = np.random.default_rng(11)
    n = 3000
    scores32 = (rng.integers(-20, 20, n) / 8.0).astype(
        np.float32
    )  # negatives, ties
    scores32[:10] = -0.0
    scores32[10:20] = 0.0  # -0.0 and 0.0 must tie
    labels = rng.integers(0, 2, n)
    groups = rng.choice(np.array([-(2**62), -5, 0, 7, 2**40, 2**33 + 1]), n)
    scores64 = scores32.astype(np.float64)
    assert roc_auc(labels, scores32) == roc_auc(labels, scores64)
    assert roc_auc(labels, scores32) == pytest.approx(
        roc_auc_score(labels, scores64), abs=1e-12
    )
    fast = grouped_auc(groups, labels, scores32)
    generic = grouped_auc(groups, labels, scores64)
    assert fast == generic
    assert fast["gauc"] == pytest.approx(
        _slow_gauc(groups, labels, scores64)[0]
    )


def test_signed_zero_is_a_tie():
    assert roc_auc([0, 1], np.array([-0.0, 0.0], np.float32)) == 0.5
    assert roc_auc([1, 0], np.array([-0.0, 0.0], np.float32)) == 0.5


def test_argsort_sorts_float32_and_other_dtypes():
    from tfcvr.evaluation.ranking import argsort

    rng = np.random.default_rng(2)
    for values in (
        rng.normal(size=1000).astype(np.float32),
        np.round(rng.normal(size=1000), 1),
        rng.integers(-5, 5, 1000),
    ):
        order = argsort(values)
        assert sorted(order.tolist()) == list(range(1000))
        assert np.all(np.diff(values[order]) >= 0)
