import numpy as np

from tfcvr.evaluation import _validation
from tfcvr.evaluation import ranking
from tfcvr.evaluation._column_buffer import ColumnBuffer
from tfcvr.evaluation._user_ids import UserIdEncoder


class StreamingGAUC:
    """Exact group AUC (per-user AUC, impression-weighted) over batches.

    GAUC = sum_u n_u AUC_u / sum_u n_u over users u whose rows hold both
    classes, n_u being the user's row count; users with a single class have
    no AUC and are skipped and counted. Used for CTR/CVR ranking since
    "Deep Interest Network" (Zhou et al., KDD 2018). Each kept row is stored
    as (int64 user code, score, 1-byte label) in numpy chunks; `result()`
    lexsorts once by (user, score) and computes every user's tie-aware AUC
    in vectorised form.

    User ids may be integers or strings/bytes (strings get dense codes,
    one dict entry per distinct user); a stream must not mix the two.

    Args:
        score_dtype: str. Storage dtype of scores. Defaults to `"float32"`.
        chunk_rows: int. Rows per storage chunk. Defaults to 2**20.
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
            {"user": np.int64, "score": score_dtype, "label": np.uint8},
            chunk_rows=chunk_rows,
        )
        self._encoder = UserIdEncoder()

    def get_config(self):
        return {"score_dtype": self.score_dtype, "chunk_rows": self.chunk_rows}

    def reset(self):
        self._buffer.clear()
        self._encoder = UserIdEncoder()

    def update(self, user_ids, labels, scores, mask=None):
        """Adds a batch.

        Args:
            user_ids: int or string array, shape (B,) or (B, 1).
            labels: 0/1 array, same length.
            scores: finite floats, same length.
            mask: optional bool array, same length; False rows are ignored.
        """
        labels = _validation.binary("labels", labels)
        scores = _validation.scores(
            "scores", scores, len(labels), dtype=self.score_dtype
        )
        users = self._encoder.encode(user_ids, len(labels))
        keep = _validation.mask(mask, len(labels))
        if keep is not None:
            labels, scores, users = labels[keep], scores[keep], users[keep]
        self._buffer.append(user=users, score=scores, label=labels)

    @property
    def num_rows(self):
        return len(self._buffer)

    def result(self):
        """dict: `gauc` (NaN when no user has both classes), `users_used`,
        `users_skipped`, `rows_used`."""
        out = ranking._grouped_auc(
            self._buffer.column("user"),
            self._buffer.column("label").view(bool),
            self._buffer.column("score"),
        )
        return {
            "gauc": out["gauc"],
            "users_used": out["groups_used"],
            "users_skipped": out["groups_skipped"],
            "rows_used": out["rows_used"],
        }
