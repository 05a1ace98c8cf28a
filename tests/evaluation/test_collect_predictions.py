import numpy as np
import pytest

from tfcvr.evaluation import collect_predictions
from tfcvr.features import keys


class _Model:
    def __call__(self, features, training=False):
        x = np.asarray(features["x"], dtype=np.float32).reshape(-1, 1)
        return {keys.CTR: x, keys.CVR: x / 2, keys.CTCVR: x * x / 2}


def _batch(x, click, true_cvr=None, truth_in_features=False):
    features = {"x": np.asarray(x)}
    labels = {keys.CLICK: np.asarray(click), keys.CONVERSION: np.zeros(len(x))}
    if true_cvr is not None:
        (features if truth_in_features else labels)[keys.TRUE_CVR] = np.asarray(true_cvr)
    return features, labels


def test_rows_of_every_batch_in_order():
    batches = [_batch([0.2, 0.4], [1, 0], [0.1, 0.2]),
               _batch([0.6], [1], [0.3], truth_in_features=True)]
    out = collect_predictions(_Model(), batches)
    np.testing.assert_allclose(out[keys.CVR], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(out[keys.CTCVR], [0.02, 0.08, 0.18], rtol=1e-6)
    np.testing.assert_array_equal(out[keys.CLICK], [1, 0, 1])
    np.testing.assert_allclose(out[keys.TRUE_CVR], [0.1, 0.2, 0.3])
    assert all(v.ndim == 1 and v.dtype == np.float64 for v in out.values())


def test_a_column_missing_from_a_batch_is_left_out_and_max_batches_stops():
    batches = [_batch([0.2], [1], [0.1]), _batch([0.4], [0]), _batch([0.6], [1], [0.3])]
    out = collect_predictions(_Model(), batches)
    assert keys.TRUE_CVR not in out and len(out[keys.CVR]) == 3
    assert len(collect_predictions(_Model(), batches, max_batches=1)[keys.CVR]) == 1
    with pytest.raises(ValueError, match="max_batches"):
        collect_predictions(_Model(), batches, max_batches=-1)
