import keras

from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.monitor import monitor_mode
from tfcvr.training.monitor import monitor_name

class BestEpochStopping(keras.callbacks.EarlyStopping):
    """Stops after `patience` epochs without improvement of an eval metric
    and restores the weights of the best epoch.

    Keras's `EarlyStopping` with the best weights always restored and the
    mode inferred from the name (AUCs are maximised, losses minimised). A
    metric the eval split does not report is a one-line ValueError after
    the first epoch, not Keras's warning and a run that never stops.

    Args:
        patience: int >= 1. Epochs without improvement before stopping.
        monitor: str. An eval metric, with or without the `val_` prefix
            (`loss`, `ctcvr_auc`, `ctr_auc`, `cvr_auc_clicked`). Defaults to
            `val_ctcvr_auc`: every estimator reports it on every row with
            observed labels, whatever its own loss weights.
        min_delta: float >= 0. Smallest change that counts. Defaults to 0.

    After `fit`, `best_epoch` (0-based) and `best` hold the chosen epoch and
    its value; `stopped_epoch` is 0 when the run was not stopped early.
    """

    def __init__(self, patience, monitor=DEFAULT_MONITOR, min_delta=0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(
                f"early stopping patience must be an int >= 1. Received: "
                f"patience={patience!r}"
            )
        monitor = monitor_name(monitor)
        super().__init__(
            monitor=monitor,
            patience=patience,
            mode=monitor_mode(monitor),
            min_delta=min_delta,
            restore_best_weights=True,
        )

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in (logs or {}):
            available = sorted(k for k in (logs or {}) if k.startswith("val_"))
            raise ValueError(
                f"early stopping watches {self.monitor!r}, which the eval "
                f"split does not report; choose one of {available}"
            )
        super().on_epoch_end(epoch, logs)

    def record(self):
        """What `train_config.json`/`history.json` keep of the stop."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "best_epoch": int(self.best_epoch) + 1,
            "best": float(self.best),
            "stopped_epoch": int(self.stopped_epoch) + 1 if self.stopped_epoch else None,
        }
