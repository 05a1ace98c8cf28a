import hashlib
import json

import apache_beam as beam

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from tfcvr.features import keys

SPLIT_METHODS = ("auto", "hash", "time", "source")
TRAIN_ROWS = "train_rows"
REJECTED = "rejected"
_SPLITS = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)


def key_fraction(key, salt=b"split"):
    """A stable uniform number in [0, 1) from a row key."""
    digest = hashlib.blake2b(
        key.encode("utf-8", errors="surrogatepass"), digest_size=8, person=salt
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class AssignSplitFn(beam.DoFn):
    """Row -> `(split, row)`; train rows also go to the `train_rows` output.

    Methods: `hash` puts a row in eval when a stable hash of its `__key__`
    falls below `eval_fraction`; `time` puts it in eval when its timestamp
    is >= the cut (side input, see `ComputeTimeCut`; None means all train);
    `source` keeps the reader's `__split__`; `auto` uses `__split__` when
    the row has one, else `time` when `use_time` is set, else `hash`.
    A row the method cannot place (no timestamp, bad `__split__`) goes to
    the `rejected` output as a dead letter.

    Args:
        method: str. One of `SPLIT_METHODS`.
        eval_fraction: float in [0, 1).
        use_time: bool. For `auto`: the job has a time cut.
        source: str. Dead-letter `source` for rows rejected here.
    """

    def __init__(self, method="auto", eval_fraction=0.1, use_time=False, source=""):
        if method not in SPLIT_METHODS:
            raise ValueError(
                f"split method must be one of {list(SPLIT_METHODS)}. "
                f"Received: method={method!r}"
            )
        if not 0 <= eval_fraction < 1:
            raise ValueError(
                f"eval_fraction must be in [0, 1). Received: "
                f"eval_fraction={eval_fraction}"
            )
        self.method = method
        self.eval_fraction = eval_fraction
        self.use_time = use_time
        self.source = source

    def _split(self, row, cut):
        method = self.method
        if method == "auto":
            if SPLIT_FIELD in row:
                method = "source"
            elif self.use_time:
                method = "time"
            else:
                method = "hash"
        if method == "source":
            split = row.get(SPLIT_FIELD)
            if split not in _SPLITS:
                raise dl.DeadLetter(
                    dl.BAD_SPLIT,
                    f"{SPLIT_FIELD} must be one of {list(_SPLITS)}; got "
                    f"{split!r}",
                )
            return split
        if method == "time":
            timestamp = row.get(TIMESTAMP_FIELD)
            if timestamp is None:
                raise dl.DeadLetter(
                    dl.MISSING_TIMESTAMP, "the time split needs a timestamp"
                )
            if cut is not None and timestamp >= cut:
                return keys.EVAL_SPLIT
            return keys.TRAIN_SPLIT
        if key_fraction(row[KEY_FIELD]) < self.eval_fraction:
            return keys.EVAL_SPLIT
        return keys.TRAIN_SPLIT

    def process(self, row, cut=None):
        try:
            split = self._split(row, cut)
        except dl.DeadLetter as e:
            yield beam.pvalue.TaggedOutput(
                REJECTED, e.to_record(self.source, _row_text(row))
            )
            return
        if split == keys.TRAIN_SPLIT:
            yield beam.pvalue.TaggedOutput(TRAIN_ROWS, row)
        yield split, row


def _row_text(row):
    return json.dumps(row, sort_keys=True, default=str)
