import apache_beam as beam

from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.transforms.count_per_bundle import CountPerBundleFn


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
