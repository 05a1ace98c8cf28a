"""Maps user ids of any type to int64 group ids (private)."""

import numpy as np

from tfcvr.evaluation import _validation


class UserIdEncoder:
    """Turns a stream of user-id batches into consistent int64 codes.

    Integer ids (and integer-valued floats) are kept as they are, without a
    Python loop. String or bytes ids (a raw `categorical_string` feature) get
    dense codes through a dict that grows by one entry per distinct user, not
    per row. A stream must not mix the two kinds.
    """

    def __init__(self):
        self._kind = None
        self._codes = {}

    def encode(self, user_ids, length):
        ids = _validation.as_vector("user_ids", user_ids, length)
        kind = "numeric" if ids.dtype.kind in "iubf" else "string"
        if self._kind is not None and kind != self._kind:
            raise ValueError(
                f"User ids changed from {self._kind} to {kind} between "
                f"batches. Received: dtype={ids.dtype}"
            )
        self._kind = kind
        if kind == "numeric":
            if ids.dtype.kind == "f":
                if not np.all(np.isfinite(ids)) or np.any(ids != np.round(ids)):
                    raise ValueError(
                        "Float user ids must be whole numbers. Received e.g. "
                        f"{ids[:3].tolist()}"
                    )
            if ids.dtype.kind == "u" and ids.dtype.itemsize == 8:
                # uint64 ids above 2**63 wrap, which keeps them distinct.
                return ids.view(np.int64)
            return ids.astype(np.int64)
        if ids.dtype.kind not in "SUO":
            raise ValueError(
                "User ids must be integers or strings. Received: "
                f"dtype={ids.dtype}"
            )
        try:
            uniques, inverse = np.unique(ids, return_inverse=True)
        except TypeError:
            # An object array mixing bytes and str cannot be sorted as is.
            ids = np.array([_text(i) for i in ids.tolist()], dtype=str)
            uniques, inverse = np.unique(ids, return_inverse=True)
        # TF string tensors arrive as bytes; decoding makes b"u1" and "u1" one
        # user. Only distinct ids are touched in Python.
        codes = np.fromiter(
            (
                self._codes.setdefault(_text(u), len(self._codes))
                for u in uniques.tolist()
            ),
            dtype=np.int64,
            count=len(uniques),
        )
        return codes[inverse.reshape(-1)]


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
