"""Runs a model over a dataset and returns every `CVREvaluator` metric."""

from tfcvr.evaluation import _validation
from tfcvr.evaluation import metric_names as m
from tfcvr.evaluation.cvr_evaluator import CVREvaluator
from tfcvr.features import keys


def _split_batch(batch, index):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        kind = type(batch).__name__
        size = (
            f" of length {len(batch)}"
            if isinstance(batch, (tuple, list))
            else ""
        )
        raise ValueError(
            "Each batch must be a (features, labels) pair; sample weights are "
            f"not supported. Received at batch {index}: a {kind}{size}"
        )
    features, labels = batch
    if not hasattr(labels, "keys"):
        raise ValueError(
            f"Batch labels must be a dict with `{keys.CLICK}` and "
            f"`{keys.CONVERSION}`. Received at batch {index}: "
            f"{type(labels).__name__}"
        )
    return features, labels


def _predict(model, features):
    predict_on_batch = getattr(model, "predict_on_batch", None)
    if callable(predict_on_batch):
        outputs = predict_on_batch(features)
    else:
        outputs = model(features, training=False)
    if not hasattr(outputs, "keys"):
        raise ValueError(
            "The model must return a dict of probabilities with keys "
            f"{[keys.CTR, keys.CVR, keys.CTCVR]}. Received: "
            f"{type(outputs).__name__}"
        )
    return outputs


def check_max_batches(max_batches):
    if max_batches is not None and (
        isinstance(max_batches, bool) or int(max_batches) < 0
    ):
        raise ValueError(
            f"`max_batches` must be a non-negative integer or None. Received: "
            f"max_batches={max_batches!r}"
        )


def predict_batch(model, batch, index=0):
    """`(features, predictions, labels)` of one `(features, labels)` batch.

    `predictions` holds the model's `ctr`, `cvr`, `ctcvr` and `labels` the
    click and conversion labels plus any ground truth of simulated data
    (from the labels, or from the features when the labels lack it), all
    as numpy arrays; `index` names the batch in errors.
    """
    features, labels = _split_batch(batch, index)
    outputs = _predict(model, features)
    predictions = {
        k: _validation.to_numpy(outputs[k])
        for k in (keys.CTR, keys.CVR, keys.CTCVR)
        if k in outputs
    }
    label_arrays = {}
    for k in (keys.CLICK, keys.CONVERSION) + keys.GROUND_TRUTH_KEYS:
        if k in labels:
            label_arrays[k] = _validation.to_numpy(labels[k])
        elif k in keys.GROUND_TRUTH_KEYS and hasattr(features, "keys"):
            if k in features:
                label_arrays[k] = _validation.to_numpy(features[k])
    return features, predictions, label_arrays


def evaluate_model(
    model,
    dataset,
    user_id_feature=None,
    max_batches=None,
    progress=False,
    evaluator=None,
):
    """Every metric of `model` on `dataset` (see `CVREvaluator`).

    Iterates a `tf.data.Dataset` or any iterable of `(features, labels)`
    batches, predicts with `model.predict_on_batch(features)` (or
    `model(features, training=False)` when it has none), converts outputs and
    labels to numpy and updates a `CVREvaluator`. Ground truth of simulated
    data (`true_cvr`, `conversion_if_clicked`) is read from the labels, or
    from the features when the labels lack it.

    Args:
        model: object with `predict_on_batch` or a `__call__` returning a dict
            with `keys.CTR`, `keys.CVR`, `keys.CTCVR`, shape (B,) or (B, 1).
        dataset: iterable of `(features, labels)`; `labels` a dict with
            `keys.CLICK` and `keys.CONVERSION`.
        user_id_feature: str or None. Feature holding the user id; enables
            the GAUC metrics.
        max_batches: int or None. Stop after this many batches.
        progress: bool. Show a tqdm progress bar.
        evaluator: `CVREvaluator` or None. Use a configured evaluator (bins,
            dtype); it is updated in place. Defaults to a new one.

    Returns:
        `evaluator.result()` plus `num_batches`.
    """
    check_max_batches(max_batches)
    evaluator = CVREvaluator() if evaluator is None else evaluator
    batches = iter(dataset)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        try:
            total = len(dataset)
        except TypeError:
            total = None
        if max_batches is not None:
            total = max_batches if total is None else min(total, max_batches)
        bar = tqdm(total=total, desc="evaluate", unit="batch")
    num_batches = 0
    try:
        while max_batches is None or num_batches < max_batches:
            try:
                batch = next(batches)
            except StopIteration:
                break
            features, predictions, label_arrays = predict_batch(
                model, batch, num_batches
            )
            user_ids = None
            if user_id_feature is not None:
                if (
                    not hasattr(features, "keys")
                    or user_id_feature not in features
                ):
                    available = (
                        sorted(features.keys())
                        if hasattr(features, "keys")
                        else []
                    )
                    raise ValueError(
                        f"`user_id_feature` names no feature of the batch. "
                        f"Received: user_id_feature={user_id_feature!r}; "
                        f"features: {available}"
                    )
                user_ids = _validation.to_numpy(features[user_id_feature])
            try:
                evaluator.update(predictions, label_arrays, user_ids)
            except ValueError as error:
                raise ValueError(f"Batch {num_batches}: {error}") from None
            num_batches += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    result = evaluator.result()
    result[m.NUM_BATCHES] = num_batches
    return result
