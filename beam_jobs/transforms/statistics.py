"""Statistics of the train rows: per-bundle counts and numeric moments.

`CountPerBundleFn` is the hand-lifted combiner behind the row counts and
the time cut; `ComputeNumericStats` gives every numeric column its exact
count, mean, std, min and max.
"""

import fractions
import math

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


# === Per-bundle counts ===


class CountPerBundleFn(beam.DoFn):
    """Counts keys in memory per bundle and emits `(key, count)` pairs.

    A hand-lifted combiner: one output per distinct key and bundle instead
    of one per occurrence, which is what makes vocabulary counting cheap on
    the DirectRunner. Follow it with `beam.CombinePerKey(sum)`. The table is
    flushed whenever it holds `max_entries` keys, bounding memory for
    high-cardinality ids. Inputs must be in the global window.

    Args:
        keys_fn: callable. Element -> iterable of hashable keys to count.
        max_entries: int. Distinct keys held before a flush.
    """

    def __init__(self, keys_fn, max_entries=500_000):
        if max_entries < 1:
            raise ValueError(
                f"max_entries must be >= 1. Received: max_entries={max_entries}"
            )
        self.keys_fn = keys_fn
        self.max_entries = max_entries
        self._counts = None

    def start_bundle(self):
        self._counts = {}

    def process(self, element):
        counts = self._counts
        for key in self.keys_fn(element):
            counts[key] = counts.get(key, 0) + 1
        if len(counts) >= self.max_entries:
            self._counts = {}
            yield from counts.items()

    def finish_bundle(self):
        counts, self._counts = self._counts, {}
        for item in counts.items():
            yield GlobalWindows.windowed_value(item)


def constant_key(element, key="rows"):
    """keys_fn counting every element once under one key."""
    return (key,)


# === Numeric statistics ===

# Sums are exact: a double x is M * 2**(e - 53) with an integer mantissa M
# (math.frexp), so per exponent e we add the integers M and M**2. Merging is
# integer addition, and the statistics do not depend on how Beam splits and
# merges the work (bit-identical schema.json on every runner).
_MANTISSA = float(2**53)
_SUM_SHIFT = 1074  # e >= -1073 for doubles, so every shift below is >= 1
_SUM_BITS = _SUM_SHIFT + 53


def transform_value(value, log=False, clip_min=None, clip_max=None):
    """The value the statistics describe: log1p(max(x, 0)) if `log`, then
    clipped to [clip_min, clip_max]."""
    if log:
        value = math.log1p(max(value, 0.0))
    if clip_min is not None and value < clip_min:
        value = clip_min
    if clip_max is not None and value > clip_max:
        value = clip_max
    return value


def empty_moments():
    """`[count, {e: sum M}, {e: sum M**2}, min, max]`."""
    return [0, {}, {}, math.inf, -math.inf]


def add_value(moments, value):
    mantissa, exponent = math.frexp(value)
    m = int(mantissa * _MANTISSA)
    sums, squares = moments[1], moments[2]
    sums[exponent] = sums.get(exponent, 0) + m
    squares[exponent] = squares.get(exponent, 0) + m * m
    moments[0] += 1
    if value < moments[3]:
        moments[3] = value
    if value > moments[4]:
        moments[4] = value


def merge_moments(many):
    merged = empty_moments()
    sums, squares = merged[1], merged[2]
    for n, part_sums, part_squares, low, high in many:
        merged[0] += n
        for e, v in part_sums.items():
            sums[e] = sums.get(e, 0) + v
        for e, v in part_squares.items():
            squares[e] = squares.get(e, 0) + v
        merged[3] = min(merged[3], low)
        merged[4] = max(merged[4], high)
    return merged


def moments_to_stats(moments):
    """`{"count", "mean", "std", "min", "max"}`; the population std, 1.0 for
    a constant column; mean 0 / std 1 / min, max None without values."""
    n, total, squares, low, high = moments
    if n == 0:
        return {"count": 0, "mean": 0.0, "std": 1.0, "min": None, "max": None}
    total = sum(v << (e + _SUM_SHIFT) for e, v in total.items())
    squares = sum(v << (2 * e + 2 * _SUM_SHIFT) for e, v in squares.items())
    mean = fractions.Fraction(total, n << _SUM_BITS)
    variance = fractions.Fraction(squares, n << (2 * _SUM_BITS)) - mean**2
    std = math.sqrt(float(variance)) if variance > 0 else 0.0
    if low == high or not std > 0 or not math.isfinite(std):
        std = 1.0
    return {
        "count": n,
        "mean": float(mean),
        "std": std,
        "min": low,
        "max": high,
    }


class AccumulateMomentsFn(beam.DoFn):
    """Train rows -> `(column, moments)` partial sums, one per column and
    bundle (a hand-lifted combiner, see `CountPerBundleFn`)."""

    def __init__(self, spec):
        self.columns = [
            (
                name,
                bool(spec.columns[name].get("log", False)),
                spec.columns[name].get("clip_min"),
                spec.columns[name].get("clip_max"),
            )
            for name in spec.numeric_columns
        ]
        self._moments = None

    def start_bundle(self):
        self._moments = {name: empty_moments() for name, _, _, _ in self.columns}

    def process(self, row):
        moments = self._moments
        for name, log, clip_min, clip_max in self.columns:
            value = row.get(name)
            if value is None:
                continue
            add_value(moments[name], transform_value(value, log, clip_min, clip_max))

    def finish_bundle(self):
        moments, self._moments = self._moments, None
        for name, item in moments.items():
            if item[0]:
                yield GlobalWindows.windowed_value((name, item))


class MergeMomentsCombineFn(beam.CombineFn):
    """Merges partial moments of one column (exact, order independent)."""

    def create_accumulator(self):
        return empty_moments()

    def add_input(self, accumulator, element):
        return merge_moments([accumulator, element])

    def merge_accumulators(self, accumulators):
        return merge_moments(accumulators)

    def extract_output(self, accumulator):
        return accumulator


class ComputeNumericStats(beam.PTransform):
    """Train rows -> `(column, {"count", "mean", "std", "min", "max"})` for
    every numeric column with at least one value.

    Statistics describe the value after the column's `log` and clipping;
    the std is the population std (1.0 for a constant column). Sums are
    exact integers, so the result is identical however the data is split.

    Args:
        spec: `InputSpec`.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def expand(self, rows):
        return (
            rows
            | "Accumulate" >> beam.ParDo(AccumulateMomentsFn(self.spec))
            | "Merge" >> beam.CombinePerKey(MergeMomentsCombineFn())
            | "ToStats" >> beam.MapTuple(lambda name, m: (name, moments_to_stats(m)))
        )
