import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.models import ESCM2IPS
from tfcvr.models import ESMM
from tfcvr.models import MultiIPW
from tfcvr.models import oracle_propensity
from tfcvr.testing import np_bce
from tfcvr.testing.synthetic import tiny_schema

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.3, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
TRUE_CTR = np.array([0.5, 0.1, 0.6, 0.2, 0.3, 0.2, 0.25, 0.1], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
OUTPUTS = {keys.CTR: P_CTR[:, None], keys.CVR: P_CVR[:, None],
           keys.CTCVR: (P_CTR * P_CVR)[:, None]}
LABELS = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION, keys.TRUE_CTR: TRUE_CTR}


def _terms(estimator, labels=LABELS):
    model = estimator(schema=tiny_schema(), embedding_dim=2,
                      backbone_config={"hidden_units": [2]})
    terms = model.loss_terms(labels, OUTPUTS)
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in terms.items()}


def test_only_the_ipw_term_takes_the_true_propensity():
    shipped, oracle = _terms(MultiIPW), _terms(oracle_propensity(MultiIPW))
    assert set(shipped) == set(oracle)
    # Multi-IPW's default: exposure normalisation, clicks weighted 1 / propensity.
    expected = (CLICK / TRUE_CTR * np_bce(CONVERSION, P_CVR)).sum() / len(CLICK)
    assert oracle["ipw"] == pytest.approx(expected, rel=1e-5)
    assert shipped["ipw"] != pytest.approx(expected, rel=1e-3)
    for name in set(shipped) - {"ipw"}:
        assert oracle[name] == pytest.approx(shipped[name], rel=1e-6)


def test_equal_to_the_shipped_estimator_when_pctr_is_the_truth():
    labels = dict(LABELS, **{keys.TRUE_CTR: P_CTR})
    assert _terms(oracle_propensity(ESCM2IPS), labels) == pytest.approx(
        _terms(ESCM2IPS, labels), rel=1e-6)
    assert oracle_propensity(ESCM2IPS).__name__ == "OracleESCM2IPS"
    assert issubclass(oracle_propensity(ESCM2IPS), ESCM2IPS)


def test_clear_errors():
    with pytest.raises(ValueError, match="none of the propensity terms"):
        _terms(oracle_propensity(ESMM))
    without = {k: v for k, v in LABELS.items() if k != keys.TRUE_CTR}
    with pytest.raises(ValueError, match="needs `true_ctr` in the labels"):
        _terms(oracle_propensity(MultiIPW), without)
    with pytest.raises(ValueError, match="CVRModel subclass"):
        oracle_propensity("multi_ipw")
