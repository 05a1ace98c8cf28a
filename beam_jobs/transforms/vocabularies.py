"""Vocabularies: count the tokens of the train rows, select, write.

`ComputeVocabularies` counts every value of every vocabulary column and
keeps the selected tokens in vocabulary order; `WriteVocabularyFn` writes
each vocabulary to `vocab/<name>.txt`, one token per line.
"""

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from tfcvr.features import keys


# === Counting and selection ===


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
    """Train rows -> `(vocab_name, {token: count})` partial counts.

    Counts every value of every vocabulary column in memory per bundle (a
    hand-lifted combiner), keyed by the raw python value and turned into its
    string form on output. Emits one dict per vocabulary and bundle, so
    Beam moves a handful of elements instead of one per token; flushes
    whenever `max_entries` distinct tokens are held.

    Args:
        spec: `InputSpec`.
        max_entries: int. Distinct tokens held before a flush.
    """

    def __init__(self, spec, max_entries=1_000_000):
        if max_entries < 1:
            raise ValueError(
                f"max_entries must be >= 1. Received: max_entries={max_entries}"
            )
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
            if table:
                yield vocab, {str(token): n for token, n in table.items()}

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
        if self._rows % 1024 == 0 or self.max_entries < 1024:
            if sum(len(t) for t in counts.values()) >= self.max_entries:
                yield from self._drain()

    def finish_bundle(self):
        for item in self._drain():
            yield GlobalWindows.windowed_value(item)


class MergeCountsCombineFn(beam.CombineFn):
    """Sums `{token: count}` dicts of one vocabulary."""

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, counts):
        get = accumulator.get
        for token, n in counts.items():
            accumulator[token] = get(token, 0) + n
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators, None)
        if merged is None:
            return {}
        for accumulator in accumulators:
            merged = self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _finalize(item, settings):
    vocab, counts = item
    min_count, top_k = settings[vocab]
    return vocab, select_tokens(counts.items(), min_count, top_k)


class ComputeVocabularies(beam.PTransform):
    """Train rows -> `(vocab_name, [(token, count), ...])` per vocabulary.

    Counts every value of every vocabulary column (columns of one
    `embedding_group` add into one vocabulary; hashed columns have none),
    keeps tokens with count >= min_count, orders them by count descending
    then token ascending and caps them at top_k (per-column overrides of the
    spec's `vocab` settings). A vocabulary without any value emits nothing.
    The exact counts of one vocabulary meet in one worker's memory.

    Args:
        spec: `InputSpec`.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def expand(self, rows):
        settings = {v: self.spec.vocab_settings(v) for v in self.spec.vocab_names}
        return (
            rows
            | "CountTokens" >> beam.ParDo(CountTokensFn(self.spec))
            | "MergeCounts" >> beam.CombinePerKey(MergeCountsCombineFn())
            | "Select" >> beam.Map(_finalize, settings)
        )


# === Vocabulary files ===


def vocab_path(out_dir, vocab_name):
    return FileSystems.join(out_dir, keys.VOCAB_DIR, f"{vocab_name}.txt")


def write_vocabulary(out_dir, vocab_name, tokens):
    """Writes `DIR/vocab/<name>.txt`, one token per line; returns its size."""
    tokens = list(tokens)
    text = "".join(f"{t}\n" for t in tokens).encode("utf-8")
    with FileSystems.create(
        vocab_path(out_dir, vocab_name),
        compression_type=CompressionTypes.UNCOMPRESSED,
    ) as f:
        f.write(text)
    return len(tokens)


class WriteVocabularyFn(beam.DoFn):
    """`(vocab_name, [(token, count), ...])` -> `DIR/vocab/<name>.txt`;
    emits `(vocab_name, vocab_size)`."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def process(self, element):
        vocab_name, counts = element
        size = write_vocabulary(self.out_dir, vocab_name, (t for t, _ in counts))
        yield vocab_name, size
