import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


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
