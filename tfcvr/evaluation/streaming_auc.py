import numpy as np

from tfcvr.evaluation import _validation
from tfcvr.evaluation import ranking
from tfcvr.evaluation._column_buffer import ColumnBuffer


class StreamingAUC:
    """Exact ROC AUC accumulated over batches.

    Rows kept by the mask are stored compactly (one score of `score_dtype`
    and one byte of label per row, in numpy chunks) and sorted once by
    `result()`, so the value is exact and tie-aware (a positive tied with a
    negative counts 1/2), equal to `sklearn.metrics.roc_auc_score` on the
    same (rounded) scores, for any batch split.

    Args:
        score_dtype: str. Storage dtype of scores. Defaults to `"float32"`,
            the dtype a Keras model emits; pass `"float64"` to rank float64
            scores without rounding them.
        chunk_rows: int. Rows per storage chunk. Defaults to 2**20.

    Example:
        auc = StreamingAUC()
        for labels, scores in batches:
            auc.update(labels, scores)
        auc.result()  # NaN when only one class was seen
    """

    def __init__(self, score_dtype="float32", chunk_rows=2**20):
        if score_dtype not in ("float32", "float64"):
            raise ValueError(
                "`score_dtype` must be 'float32' or 'float64'. Received: "
                f"score_dtype={score_dtype!r}"
            )
        self.score_dtype = score_dtype
        self.chunk_rows = chunk_rows
        self._buffer = ColumnBuffer(
            {"score": score_dtype, "label": np.uint8}, chunk_rows=chunk_rows
        )

    def get_config(self):
        return {"score_dtype": self.score_dtype, "chunk_rows": self.chunk_rows}

    def reset(self):
        self._buffer.clear()

    def update(self, labels, scores, mask=None):
        """Adds a batch.

        Args:
            labels: 0/1 array, shape (B,) or (B, 1).
            scores: finite floats, same length.
            mask: optional bool array, same length; False rows are ignored.
        """
        labels = _validation.binary("labels", labels)
        scores = _validation.scores(
            "scores", scores, len(labels), dtype=self.score_dtype
        )
        keep = _validation.mask(mask, len(labels))
        if keep is not None:
            labels = labels[keep]
            scores = scores[keep]
        self._buffer.append(score=scores, label=labels)

    @property
    def num_rows(self):
        return len(self._buffer)

    def counts(self):
        """(positives, negatives) seen so far."""
        positives = int(np.count_nonzero(self._buffer.column("label")))
        return positives, len(self._buffer) - positives

    def result(self):
        """AUC of every row seen so far; NaN unless both classes were seen."""
        labels = self._buffer.column("label").view(bool)
        return ranking._roc_auc(labels, self._buffer.column("score"))[0]
