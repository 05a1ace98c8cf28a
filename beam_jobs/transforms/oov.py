"""Unseen values: how many values of each feature miss a given vocabulary.

When a log is encoded with an existing vocabulary (`--vocab-from`), values
the training data never had go to the OOV buckets at read time; the job
counts them per feature so that `summary.json` says how much of a held-out
log the model has never seen.
"""

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

# Keys of one feature's entry in summary.json's `oov`.
VALUES = "values"
OOV = "oov"


def read_tokens(out_dir, vocab_file):
    """The tokens of `out_dir/vocab_file` as a set of str."""
    with FileSystems.open(
        FileSystems.join(out_dir, vocab_file),
        compression_type=CompressionTypes.UNCOMPRESSED,
    ) as f:
        return set(f.read().decode("utf-8").splitlines())


def oov_entry(values, oov):
    """One feature's summary entry: values seen, values out of vocabulary."""
    return {VALUES: int(values), OOV: int(oov)}


class CountOOVFn(beam.DoFn):
    """`(split, row)` -> `(feature, (values, oov values))` partial counts,
    one per feature with a vocabulary and bundle (a hand-lifted combiner).

    A value is out of vocabulary when its text (the vocabulary files' form:
    `str(value)`) is not a line of the feature's vocabulary file, exactly
    the values `FeatureTransform` sends to an OOV bucket; each value of a
    multi-valued feature counts once. Missing values count neither way.

    Args:
        schema: `tfcvr.features.Schema` with the vocabulary sizes.
        out_dir: str. Directory the schema's `vocab_file`s are relative to.
    """

    def __init__(self, schema, out_dir):
        self.features = [
            (f.name, f.vocab_file if f.vocab_size > 0 else None, f.is_multi_valued)
            for f in schema.categorical_features
            if f.hash_buckets is None
        ]
        self.out_dir = out_dir
        self._vocabularies = None
        self._counts = None

    def setup(self):
        files = {vf for _, vf, _ in self.features if vf is not None}
        tokens = {vf: read_tokens(self.out_dir, vf) for vf in sorted(files)}
        self._vocabularies = [
            (name, tokens.get(vf, frozenset()), multi)
            for name, vf, multi in self.features
        ]

    def start_bundle(self):
        self._counts = {name: [0, 0] for name, _, _ in self.features}

    def process(self, element):
        _, row = element
        counts = self._counts
        for name, tokens, multi in self._vocabularies:
            value = row.get(name)
            if value is None:
                continue
            values = value if multi else (value,)
            count = counts[name]
            for v in values:
                count[0] += 1
                if str(v) not in tokens:
                    count[1] += 1

    def finish_bundle(self):
        counts, self._counts = self._counts, None
        for name, (values, oov) in counts.items():
            yield GlobalWindows.windowed_value((name, (values, oov)))


def _add_pairs(pairs):
    values = oov = 0
    for v, o in pairs:
        values += v
        oov += o
    return values, oov


class CountOOV(beam.PTransform):
    """`(split, row)` pairs -> `(feature, {"values", "oov"})` for every
    feature with a vocabulary (hashed features have none to miss).

    Args:
        schema: `tfcvr.features.Schema`.
        out_dir: str. Directory holding the schema's vocabulary files.
    """

    def __init__(self, schema, out_dir):
        super().__init__()
        self.schema = schema
        self.out_dir = out_dir

    def expand(self, rows):
        return (
            rows
            | "CountPerBundle" >> beam.ParDo(CountOOVFn(self.schema, self.out_dir))
            | "Sum" >> beam.CombinePerKey(_add_pairs)
            | "ToEntry" >> beam.MapTuple(lambda name, c: (name, oov_entry(*c)))
        )
