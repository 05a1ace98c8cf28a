"""The propensity options give the weights they promise (NumPy reference)."""

import json
import os

import numpy as np
import pytest
from keras import ops

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models import DCMT
from tfcvr.models import MultiIPW
from tfcvr.testing import tiny_schema
from tfcvr.testing.numpy_reference import np_bce
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training import train
from tfcvr.training.isotonic_calibrator import IsotonicCalibrator
from tfcvr.training.platt_calibrator import PlattCalibrator
from tfcvr.training.propensity_source import PropensitySource

TINY = {"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}}
RNG = np.random.default_rng(0)
CLICK = np.array([1, 0, 1, 0, 0, 1], "float32")
CONVERSION = np.array([1, 0, 0, 0, 0, 1], "float32")
GIVEN = np.array([0.3, 0.2, 0.004, 0.9, 0.5, 0.6], "float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_given_propensity_replaces_the_model_one_on_clicks_and_non_clicks():
    own = np.full(6, 0.5, "float32")
    with F.given_click_propensity(CLICK, GIVEN) as given:
        clicks = _np(F.propensity_weights(CLICK, own, floor=0.01))
        others = _np(F.propensity_weights(1 - CLICK, 1 - own, normalization="snips"))
    assert given.uses == 2
    np.testing.assert_allclose(clicks, CLICK / np.maximum(GIVEN, 0.01) / 6, rtol=1e-6)
    unclick = (1 - CLICK) / (1 - GIVEN)
    np.testing.assert_allclose(others, unclick / unclick.sum(), rtol=1e-6)
    # Outside the context the model's own propensity counts again.
    np.testing.assert_allclose(_np(F.propensity_weights(CLICK, own)), CLICK / 0.5 / 6)


def _batch(model_cls):
    model = model_cls(schema=tiny_schema(), **TINY)
    model.build()
    x = model.dummy_inputs(6)
    labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION, keys.PROPENSITY: GIVEN}
    return model, x, labels


def test_estimators_take_the_label_propensity_through_the_shared_losses():
    model, x, labels = _batch(MultiIPW)
    outputs = model(x)
    cvr = _np(outputs[keys.CVR]).reshape(-1)
    terms = model.objective_terms(labels, outputs)
    expected = np.sum(CLICK * np_bce(CONVERSION, cvr) / np.maximum(GIVEN, 0.01)) / 6
    np.testing.assert_allclose(_np(terms["ipw"]), expected, rtol=1e-5)
    own = model.objective_terms({k: labels[k] for k in (keys.CLICK, keys.CONVERSION)}, outputs)
    assert not np.isclose(_np(own["ipw"]), expected)
    # DCMT's counterfactual term weights the non-clicks by 1 - q.
    model, x, labels = _batch(DCMT)
    with F.given_click_propensity(CLICK, GIVEN) as given:
        model.loss_terms(labels, model(x))
    assert given.uses == 2


def _pav_reference(p, y):
    """Isotonic fit by brute force: the monotone step values minimising the
    squared error, from the pool-until-monotone definition on sorted rows."""
    order = np.argsort(p, kind="stable")
    blocks = [[float(v)] for v in y[order]]
    merged = True
    while merged:
        merged = False
        for i in range(len(blocks) - 1):
            if np.mean(blocks[i]) > np.mean(blocks[i + 1]):
                blocks[i:i + 2] = [blocks[i] + blocks[i + 1]]
                merged = True
                break
    return np.repeat([np.mean(b) for b in blocks], [len(b) for b in blocks])


def test_isotonic_calibration_matches_pool_adjacent_violators():
    p = RNG.uniform(0.01, 0.99, 60)
    y = (RNG.uniform(size=60) < p ** 2).astype(float)
    calibrator = IsotonicCalibrator(floor=1e-4).fit(p, y)
    fitted = calibrator(np.sort(p))
    np.testing.assert_allclose(fitted, np.maximum(_pav_reference(p, y), 1e-4), atol=1e-12)
    grid = np.linspace(0, 1, 101)
    out = calibrator(grid)
    assert np.all(np.diff(out) >= 0)
    np.testing.assert_allclose(_np(calibrator.tf_apply(grid.astype("float32"))), out, atol=1e-6)


def test_platt_calibration_is_the_maximum_likelihood_fit():
    p = RNG.uniform(0.02, 0.6, 400)
    y = (RNG.uniform(size=400) < np.clip(2.0 * p, 0, 1)).astype(float)
    calibrator = PlattCalibrator().fit(p, y)
    x = np.log(p) - np.log(1 - p)

    def nll(a, b):
        q = 1 / (1 + np.exp(-(a * x + b)))
        return -np.sum(y * np.log(q) + (1 - y) * np.log(1 - q))

    best = nll(calibrator.a, calibrator.b)
    for da, db in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        assert nll(calibrator.a + da, calibrator.b + db) > best
    np.testing.assert_allclose(
        _np(calibrator.tf_apply(p.astype("float32"))), calibrator(p), rtol=1e-5)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    return write_tiny_dataset_dir(
        os.path.join(tmp_path_factory.mktemp("logged"), "data"),
        extra_columns={"shown_with": lambda row: 0.25 + 0.5 * row["click"]})


def test_a_logged_column_reaches_the_batches_and_nothing_else_does(logged):
    data = DatasetDir(logged)
    source = PropensitySource("column:shown_with")
    source.prepare(data, train_model=None)
    _, labels = next(iter(source.dataset(data, keys.TRAIN_SPLIT, 32, data.schema.labels)))
    assert set(labels) == {keys.CLICK, keys.CONVERSION, keys.PROPENSITY}
    np.testing.assert_allclose(labels[keys.PROPENSITY].numpy(), 0.25 + 0.5 * labels[keys.CLICK].numpy())
    with pytest.raises(ValueError, match="not a stored non-feature column"):
        PropensitySource("column:user").prepare(data, train_model=None)


def test_ctr_model_propensity_is_the_calibrated_pctr_of_the_first_stage(logged, tmp_path):
    net, info = train(logged, model="multi_ipw", batch_size=64, params=TINY, verbose=0,
                      model_dir=str(tmp_path / "m"), propensity="ctr_model",
                      propensity_calibration="platt", steps_per_execution=2, cache=True)
    record = info["propensity"]
    assert record["source"] == "ctr_model" and record["stage"]["model"] == "naive"
    stage_dir = tmp_path / "m" / "propensity" / "pretrained"
    # The first stage trains under the estimator's own controls.
    with open(stage_dir / "train_config.json") as f:
        stage_config = json.load(f)
    assert (stage_config["steps_per_execution"], stage_config["cache"]) == (2, True)
    # The batches carry Platt(pCTR of the first stage), fitted on eval.
    from tfcvr.training.model_dir import load_model_dir

    ctr_model, _ = load_model_dir(str(tmp_path / "m" / "propensity" / "pretrained"))
    data = DatasetDir(logged)
    features, labels = next(iter(data.dataset(keys.EVAL_SPLIT, 64)))
    pctr = _np(ctr_model(features)[keys.CTR]).reshape(-1)
    x = np.log(pctr) - np.log(1 - pctr)
    ys, ps = [], []
    for f, lab in data.dataset(keys.EVAL_SPLIT, 64):
        ps.append(_np(ctr_model(f)[keys.CTR]).reshape(-1))
        ys.append(lab[keys.CLICK].numpy())
    reference = PlattCalibrator().fit(np.concatenate(ps), np.concatenate(ys))
    assert record["a"] == pytest.approx(reference.a, rel=1e-4)
    expected = 1 / (1 + np.exp(-(reference.a * x + reference.b)))
    source = PropensitySource("ctr_model", calibration="platt")
    source.ctr_model, source.calibrator = ctr_model, reference
    np.testing.assert_allclose(_np(source.propensity(features, labels)), expected, rtol=1e-4)


def test_bad_propensity_options_are_one_line_errors():
    with pytest.raises(ValueError, match="propensity must be one of"):
        PropensitySource("oracle")
    with pytest.raises(ValueError, match="ctr_model propensity only"):
        PropensitySource("model", calibration="platt")
    with pytest.raises(ValueError, match="configure the ctr_model propensity"):
        PropensitySource("model").plan_stage("multi_ipw", {"propensity_epochs": 2})
