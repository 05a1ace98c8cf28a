import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcvr.evaluation import StreamingAUC


@pytest.mark.parametrize("seed", range(4))
def test_streaming_equals_sklearn_for_any_batch_split(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    labels = rng.integers(0, 2, n)
    scores = np.where(
        rng.random(n) < 0.5, rng.integers(0, 10, n) / 10, rng.random(n)
    )
    mask = rng.random(n) < 0.8
    auc = StreamingAUC(score_dtype="float64", chunk_rows=333)  # many chunks
    cuts = np.sort(rng.choice(np.arange(1, n), size=20, replace=False))
    for part in np.split(np.arange(n), cuts):
        auc.update(labels[part], scores[part], mask=mask[part])
    expected = roc_auc_score(labels[mask], scores[mask])
    assert auc.result() == pytest.approx(expected, abs=1e-12)
    assert auc.num_rows == mask.sum()
    assert auc.counts() == (
        int(labels[mask].sum()),
        int((1 - labels[mask]).sum()),
    )


def test_float32_storage_ranks_the_float32_scores():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 4000)
    # Values closer than float32 resolution become ties once rounded.
    scores = (
        0.5
        + rng.integers(0, 3, 4000) * 1e-10
        + rng.integers(0, 50, 4000) * 1e-3
    )
    auc = StreamingAUC()
    auc.update(labels, scores)
    assert auc.result() == pytest.approx(
        roc_auc_score(labels, scores.astype(np.float32)), abs=1e-12
    )
    exact = StreamingAUC(score_dtype="float64")
    exact.update(labels, scores)
    assert exact.result() == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )
    assert exact.result() != auc.result()


def test_single_class_and_empty_are_nan_and_reset_clears():
    auc = StreamingAUC()
    assert np.isnan(auc.result())
    auc.update([1, 1], [0.2, 0.3])
    assert np.isnan(auc.result()) and auc.counts() == (2, 0)
    auc.update([0], [0.1])
    assert auc.result() == 1.0
    auc.update([0, 1], [0.5, 0.6], mask=[False, False])
    assert auc.num_rows == 3
    auc.reset()
    assert auc.num_rows == 0 and np.isnan(auc.result())


def test_result_can_be_called_between_updates():
    auc = StreamingAUC()
    auc.update([0, 1], [0.1, 0.9])
    assert auc.result() == 1.0
    auc.update([0, 1], [0.95, 0.05])
    assert auc.result() == pytest.approx(
        roc_auc_score([0, 1, 0, 1], [0.1, 0.9, 0.95, 0.05])
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="score_dtype"):
        StreamingAUC(score_dtype="int8")
    auc = StreamingAUC()
    with pytest.raises(ValueError, match="only 0 and 1"):
        auc.update([0, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        auc.update([0, 1], [0.1, np.inf])
    with pytest.raises(ValueError, match="rows"):
        auc.update([0, 1], [0.1, 0.2], mask=[True])
    assert auc.get_config() == {"score_dtype": "float32", "chunk_rows": 2**20}
