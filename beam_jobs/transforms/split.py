"""Splitting: the time cut and the train/eval split of every row.

`ComputeTimeCut` finds the time at which the last `eval_fraction` of the
rows begins; `AssignSplitFn` places each row in train or eval (by the
reader's own split, that cut, or a stable hash of the row key) and sends a
row it cannot place to the dead letters.
"""

import hashlib
import json

import apache_beam as beam

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.transforms.statistics import CountPerBundleFn
from tfcvr.features import keys

# `train` / `eval` send the whole input to that split (a held-out log).
WHOLE_INPUT_SPLITS = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)
SPLIT_METHODS = ("auto", "hash", "time", "source") + WHOLE_INPUT_SPLITS
# Outputs of AssignSplitFn besides its dead letters (`dl.REJECTED`): every
# placed row, and the train rows again (for the vocabularies and statistics).
SPLIT_ROWS = "split_rows"
TRAIN_ROWS = "train_rows"
_SPLITS = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)


# === Time cut ===


def row_timestamp(row):
    """keys_fn of the row's timestamp (nothing when it has none)."""
    value = row.get(TIMESTAMP_FIELD)
    return () if value is None else (value,)


def time_cut_from_counts(counts, eval_fraction):
    """The split time: rows with timestamp >= cut are eval.

    Picks the distinct timestamp whose eval share is closest to
    `eval_fraction` (ties: the later time, i.e. the smaller eval set),
    never the earliest timestamp so that train keeps rows. None (all rows
    train) when `eval_fraction` is 0 or there is one distinct timestamp.

    Args:
        counts: iterable of `(timestamp, rows)`.
        eval_fraction: float in [0, 1).
    """
    ordered = sorted(counts)
    total = sum(n for _, n in ordered)
    if eval_fraction <= 0 or len(ordered) < 2:
        return None
    target = eval_fraction * total
    best, best_gap, at_or_after = None, None, 0
    for i in range(len(ordered) - 1, 0, -1):
        timestamp, n = ordered[i]
        at_or_after += n
        gap = abs(at_or_after - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = timestamp, gap
    return best


class ComputeTimeCut(beam.PTransform):
    """Rows -> a one-element PCollection with the time-split cut (or None).

    Exact and deterministic: timestamps are counted per distinct value
    (combined per bundle first), then the cut is chosen by
    `time_cut_from_counts`, so the last `eval_fraction` of the rows in time
    become eval. Memory is one count per distinct timestamp.

    Args:
        eval_fraction: float in [0, 1).
    """

    def __init__(self, eval_fraction):
        super().__init__()
        if not 0 <= eval_fraction < 1:
            raise ValueError(
                f"eval_fraction must be in [0, 1). Received: "
                f"eval_fraction={eval_fraction}"
            )
        self.eval_fraction = eval_fraction

    def expand(self, rows):
        return (
            rows
            | "CountTimestamps" >> beam.ParDo(CountPerBundleFn(row_timestamp))
            | "SumCounts" >> beam.CombinePerKey(sum)
            | "Collect" >> beam.combiners.ToList()
            | "Cut" >> beam.Map(time_cut_from_counts, self.eval_fraction)
        )


# === Assignment ===


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
    the row has one, else `time` when `use_time` is set, else `hash`;
    `train` and `eval` put every row in that split.
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
        if method in WHOLE_INPUT_SPLITS:
            return method
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
            yield dl.reject(e.reason, self.source, e.detail, _row_text(row))
            return
        if split == keys.TRAIN_SPLIT:
            yield beam.pvalue.TaggedOutput(TRAIN_ROWS, row)
        yield split, row


def _row_text(row):
    return json.dumps(row, sort_keys=True, default=str)
