"""Names of the eval metrics that early stopping and tuning watch (no Keras import,
so the `tfcvr bench grid` parent can read them)."""

# The eval metric that early stopping and `tfcvr tune` watch by default.
DEFAULT_MONITOR = "val_ctcvr_auc"


def monitor_name(monitor):
    """`"ctcvr_auc"` or `"val_ctcvr_auc"` -> `"val_ctcvr_auc"`: only eval
    metrics are watched, never the training split's own."""
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor must be a metric name. Received: monitor={monitor!r}")
    return monitor if monitor.startswith("val_") else f"val_{monitor}"


def monitor_mode(monitor):
    """`"max"` for an AUC, `"min"` for a loss or any other metric."""
    return "max" if "auc" in monitor else "min"
