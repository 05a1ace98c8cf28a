"""Weight decay, embedding L2 and early stopping do what they say."""

import keras
import numpy as np
import pytest

from tfcvr.models import ESMM
from tfcvr.testing import tiny_schema
from tfcvr.training.best_epoch_stopping import BestEpochStopping
from tfcvr.training.embedding_l2 import apply_embedding_l2
from tfcvr.training.embedding_l2 import embedding_tables
from tfcvr.training.optimizer import OPTIMIZERS
from tfcvr.training.optimizer import make_optimizer

TINY = {"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}}


def _step(optimizer, value, grad):
    var = keras.Variable(np.array(value, "float32"))
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array(grad, "float32")), var)])
    return keras.ops.convert_to_numpy(var)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_adamw_decays_apart_from_the_gradient(optimizer):
    w = [2.0, -1.0]
    # With a zero gradient Adam's step is 0; AdamW still shrinks w by lr*wd*w.
    np.testing.assert_allclose(
        _step(make_optimizer(0.1, optimizer=optimizer), w, [0.0, 0.0]), w)
    np.testing.assert_allclose(
        _step(make_optimizer(0.1, weight_decay=0.5, optimizer=optimizer), w, [0.0, 0.0]),
        np.array(w) * (1 - 0.1 * 0.5), rtol=1e-6)
    assert isinstance(make_optimizer(0.1, 0.5, "keras_adam"), keras.optimizers.AdamW)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        make_optimizer(0.1, -1.0)


def test_embedding_l2_adds_l2_times_the_squared_tables():
    model = ESMM(schema=tiny_schema(), **TINY)
    model.build()
    assert not model.losses
    count = apply_embedding_l2(model, 0.01)
    tables = embedding_tables(model)
    assert count == len(tables) > 0
    expected = 0.01 * sum(np.sum(keras.ops.convert_to_numpy(t) ** 2) for t in tables)
    penalty = sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)
    np.testing.assert_allclose(penalty, expected, rtol=1e-5)
    # The objective carries it: total_loss of no terms is the penalty.
    total = model.total_loss({"zero": keras.ops.zeros(())})
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(total)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="embedding_l2 must be >= 0"):
        apply_embedding_l2(model, -0.1)


class _Stub(keras.Model):
    def __init__(self):
        super().__init__()
        self.w = self.add_weight(shape=(), initializer="zeros", name="w")


def _run_curve(stopper, curve):
    """Drives the callback over a hand-made eval curve; the weight is the
    epoch number, so the restored weight names the restored epoch."""
    model = _Stub()
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, value in enumerate(curve):
        model.w.assign(float(epoch))
        stopper.on_epoch_end(epoch, {"val_ctcvr_auc": value, "val_loss": 1 - value})
        if getattr(model, "stop_training", False):
            break
    stopper.on_train_end()
    return float(keras.ops.convert_to_numpy(model.w)), epoch


def test_early_stopping_restores_the_best_epoch():
    stopper = BestEpochStopping(patience=2)
    restored, last = _run_curve(stopper, [0.60, 0.70, 0.65, 0.64, 0.80])
    assert last == 3  # two epochs without improvement after epoch 1
    assert restored == 1.0
    assert stopper.record()["best_epoch"] == 2 and stopper.record()["mode"] == "max"
    # A loss is minimised: the same curve read as 1 - auc.
    loss = BestEpochStopping(patience=5, monitor="loss")
    assert loss.monitor == "val_loss" and loss.mode == "min"
    restored, _ = _run_curve(loss, [0.60, 0.70, 0.65])
    assert restored == 1.0


def test_early_stopping_refuses_a_metric_the_eval_split_lacks():
    stopper = BestEpochStopping(patience=1, monitor="cvr_auc_true")
    with pytest.raises(ValueError, match="val_cvr_auc_true.*val_ctcvr_auc"):
        _run_curve(stopper, [0.5])
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        BestEpochStopping(patience=0)
