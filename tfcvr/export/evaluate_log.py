"""Every metric of a trained model on a raw log, read without a pipeline."""

import numpy as np

from tfcvr.evaluation import CVREvaluator
from tfcvr.evaluation import evaluate_model
from tfcvr.export.log_counts import LogCounts
from tfcvr.export.raw_log import iter_log_batches
from tfcvr.features import keys


def _labels(rows, names):
    return {
        name: np.array(
            [np.nan if row.get(name) is None else row[name] for row in rows],
            dtype=np.float32,
        )
        for name in names
    }


def evaluate_log(scorer, reader, batch_size=8192, protocol="auto",
                 max_batches=None, progress=False):
    """`(metrics, counts)` of a model directory's model on a raw log.

    The log's good rows (the Beam job's rules) go through the model
    directory's `FeatureTransform`, so the metrics are those `tfcvr
    evaluate --data` gives on the same log preprocessed with `--vocab-from`
    the model directory (the same `evaluate_model`, the same user ids for
    GAUC, the same ground truth when the log carries it).

    Args:
        scorer: `LogScorer.from_model_dir(...)`.
        reader: a reader from `open_log(..., features_only=False)`.
        batch_size: int.
        protocol: str. See `CVREvaluator` (`"auto"`, `"mar"`,
            `"observational"`).
        max_batches: int or None.
        progress: bool.

    Returns:
        `(metrics dict, tfcvr.export.log_counts.LogCounts)`.
    """
    counts = LogCounts()
    truth = [k for k in keys.GROUND_TRUTH_KEYS if k in reader.spec.extra_columns]
    names = [keys.CLICK, keys.CONVERSION] + truth

    def batches():
        for rows, _ in iter_log_batches(reader, batch_size, counts):
            if rows:
                yield scorer.features(rows), _labels(rows, names)

    metrics = evaluate_model(
        scorer.model,
        batches(),
        user_id_feature=scorer.schema.user_id,
        max_batches=max_batches,
        progress=progress,
        evaluator=CVREvaluator(protocol=protocol),
    )
    return metrics, counts
