"""Every prediction and label of a model over a dataset, as numpy arrays."""

import numpy as np

from tfcvr.evaluation.evaluate_model import check_max_batches
from tfcvr.evaluation.evaluate_model import predict_batch


def collect_predictions(model, dataset, max_batches=None):
    """Row-level `ctr`, `cvr`, `ctcvr`, labels and ground truth of a dataset.

    What `evaluate_model` reduces to metrics, kept row by row: for plots
    of pCVR against the simulator's true CVR, or any analysis the metrics
    do not cover. Meant for evaluation-sized splits (everything is held in
    memory).

    Args:
        model: object with `predict_on_batch` or a `__call__` returning a dict
            with `keys.CTR`, `keys.CVR`, `keys.CTCVR`.
        dataset: iterable of `(features, labels)` batches, as for
            `evaluate_model` (`include_extra=True` brings the ground truth).
        max_batches: int or None. Stop after this many batches.

    Returns:
        dict of name -> float64 array of shape (rows,): the model's outputs
        (`ctr`, `cvr`, `ctcvr`), `click`, `conversion` and, when the data
        has them, `true_ctr`, `true_cvr`, `conversion_if_clicked`. A name
        missing from any batch is left out.
    """
    check_max_batches(max_batches)
    columns = {}
    count = 0
    for batch in dataset:
        if max_batches is not None and count >= max_batches:
            break
        _, predictions, labels = predict_batch(model, batch, count)
        arrays = {**predictions, **labels}
        if count and set(arrays) != set(columns):
            columns = {k: v for k, v in columns.items() if k in arrays}
        for name, value in arrays.items():
            if count == 0 or name in columns:
                columns.setdefault(name, []).append(
                    np.asarray(value, dtype=np.float64).reshape(-1))
        count += 1
    return {name: np.concatenate(parts) if parts else np.zeros(0)
            for name, parts in columns.items()}
