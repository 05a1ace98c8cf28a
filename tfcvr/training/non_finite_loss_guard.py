import math

import keras

from tfcvr.models.loss_monitor import TERM_SUFFIX
from tfcvr.training.non_finite_loss_error import NonFiniteLossError


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite, by
    raising `NonFiniteLossError`: one line naming the step (the optimizer's
    iterations; with `steps_per_execution` k, one of the last k steps) and
    the estimator's loss terms that went non-finite (the `<term>_loss`
    logs of `CVRModel.loss_monitor`).

    Raising, rather than setting `stop_training`, keeps the callbacks after
    it in the list from running for that batch (no checkpoint of the broken
    weights) and skips `on_train_end`; put it first.

    Args:
        steps_per_execution: int. Batches per callback call. Defaults to 1.
    """

    def __init__(self, steps_per_execution=1):
        super().__init__()
        self.steps_per_execution = steps_per_execution
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(loss)
        if math.isfinite(value):
            return
        terms = [
            key[: -len(TERM_SUFFIX)]
            for key, term in sorted(logs.items())
            if key.endswith(TERM_SUFFIX) and not math.isfinite(float(term))
        ]
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        where = f"step {step} (epoch {self._epoch + 1}, batch {batch + 1})"
        if self.steps_per_execution > 1:
            where += (
                f", within the last {self.steps_per_execution} steps "
                f"(--steps-per-execution)"
            )
        if terms:
            named = f"non-finite loss terms: {', '.join(terms)}"
        elif getattr(self.model, "loss_monitor", None) is None:
            named = "the model does not log its loss terms"
        else:
            named = "every loss term is finite (the regularisation losses " \
                "are not)"
        raise NonFiniteLossError(
            f"Training stopped at {where}: the loss is {value}; {named}",
            step=step,
            terms=terms,
        )
