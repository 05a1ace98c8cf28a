import heapq

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from tfcvr.features import keys


def token_order(item):
    """Vocabulary order: most frequent first, ties by token ascending."""
    token, count = item
    return (-count, token)


def select_tokens(counts, min_count=1, top_k=None):
    """The vocabulary of `(token, count)` pairs: count >= min_count, sorted
    by `token_order`, at most `top_k` entries."""
    kept = sorted((tc for tc in counts if tc[1] >= min_count), key=token_order)
    return kept if top_k is None else kept[:top_k]


class CountTokensFn(beam.DoFn):
    """Train rows -> `((vocab_name, token), count)` partial counts.

    Counts every value of every vocabulary column in memory per bundle (a
    hand-lifted combiner: one output per distinct token and bundle), keyed
    by the raw python value and turned into its string form on output.
    Flushes whenever `max_entries` distinct tokens are held.

    Args:
        spec: `InputSpec`.
        max_entries: int. Distinct tokens held before a flush.
    """

    def __init__(self, spec, max_entries=500_000):
        self.columns = [
            (name, spec.vocab_name(name), spec.kind(name) == keys.MULTI_CATEGORICAL)
            for name in spec.columns
            if spec.vocab_name(name) is not None
        ]
        self.max_entries = max_entries
        self._counts = None
        self._rows = 0

    def start_bundle(self):
        self._counts = {vocab: {} for _, vocab, _ in self.columns}
        self._rows = 0

    def _drain(self):
        counts = self._counts
        self._counts = {vocab: {} for _, vocab, _ in self.columns}
        for vocab, table in counts.items():
            for token, count in table.items():
                yield (vocab, str(token)), count

    def process(self, row):
        counts = self._counts
        for name, vocab, multi in self.columns:
            value = row.get(name)
            if value is None:
                continue
            table = counts[vocab]
            if multi:
                for token in value:
                    table[token] = table.get(token, 0) + 1
            else:
                table[value] = table.get(value, 0) + 1
        self._rows += 1
        # Checking sizes every row would cost more than the counting.
        if self._rows % 1024 == 0:
            if sum(len(t) for t in counts.values()) >= self.max_entries:
                yield from self._drain()

    def finish_bundle(self):
        for item in self._drain():
            yield GlobalWindows.windowed_value(item)


class TopTokensCombineFn(beam.CombineFn):
    """Combines `(token, count)` pairs of one vocabulary into its sorted
    list, keeping at most `cap` entries while merging (None keeps all)."""

    def __init__(self, cap=None):
        self.cap = cap

    def create_accumulator(self):
        return []

    def _prune(self, accumulator):
        if self.cap is not None and len(accumulator) > 2 * self.cap:
            return heapq.nsmallest(self.cap, accumulator, key=token_order)
        return accumulator

    def add_input(self, accumulator, element):
        accumulator.append(tuple(element))
        return self._prune(accumulator)

    def merge_accumulators(self, accumulators):
        merged = []
        for accumulator in accumulators:
            merged.extend(accumulator)
            merged = self._prune(merged)
        return merged

    def extract_output(self, accumulator):
        ordered = sorted(accumulator, key=token_order)
        return ordered if self.cap is None else ordered[: self.cap]


def _keep(item, settings):
    (vocab, token), count = item
    if count >= settings[vocab][0]:
        yield vocab, (token, count)


def _finalize(item, settings):
    vocab, counts = item
    min_count, top_k = settings[vocab]
    return vocab, select_tokens(counts, min_count, top_k)


class ComputeVocabularies(beam.PTransform):
    """Train rows -> `(vocab_name, [(token, count), ...])` per vocabulary.

    Counts every value of every vocabulary column (columns of one
    `embedding_group` add into one vocabulary; hashed columns have none),
    keeps tokens with count >= min_count, orders them by count descending
    then token ascending and caps them at top_k (per-column overrides of the
    spec's `vocab` settings). A vocabulary with no kept token emits nothing.

    Args:
        spec: `InputSpec`.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def expand(self, rows):
        settings = {v: self.spec.vocab_settings(v) for v in self.spec.vocab_names}
        top_ks = [top_k for _, top_k in settings.values()]
        cap = None if (not top_ks or None in top_ks) else max(top_ks)
        return (
            rows
            | "CountTokens" >> beam.ParDo(CountTokensFn(self.spec))
            | "SumCounts" >> beam.CombinePerKey(sum)
            | "MinCount" >> beam.FlatMap(_keep, settings)
            | "TopTokens" >> beam.CombinePerKey(TopTokensCombineFn(cap))
            | "Finalize" >> beam.Map(_finalize, settings)
        )
