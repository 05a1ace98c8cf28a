import keras

from tfcvr.features import keys


class MissingLabelsWarning(keras.callbacks.Callback):
    """Warns (one line, once) when the first complete epoch of a run saw no
    click or no conversion: the whole training split then has none, and
    every estimator's click- or conversion-dependent terms are 0 (finite,
    but nothing for the CVR side to learn from).

    Reads the label totals of `CVRModel.loss_monitor`; an epoch resumed in
    its middle is not complete, so it is not judged.

    Args:
        log: callable taking one line.
        partial_epoch: int or None. An epoch that starts in its middle.
    """

    def __init__(self, log=print, partial_epoch=None):
        super().__init__()
        self.log = log
        self.partial_epoch = partial_epoch
        self._done = False

    def _monitor(self):
        return getattr(self.model, "loss_monitor", None)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._done and self._monitor() is not None:
            self._monitor().reset_label_totals()

    def on_epoch_end(self, epoch, logs=None):
        if self._done or epoch == self.partial_epoch or self._monitor() is None:
            return
        self._done = True
        totals = self._monitor().label_totals()
        missing = [
            name for name, key in (("clicks", keys.CLICK),
                                   ("conversions", keys.CONVERSION))
            if totals[key] == 0
        ]
        if missing and totals["rows"] > 0:
            self.log(
                f"Warning: the training split has no {' and no '.join(missing)}"
                f" ({int(totals['rows'])} rows): the loss terms that need "
                f"them are 0, so the model learns nothing from them."
            )
