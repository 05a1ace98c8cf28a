"""Metadata: `schema.json` and `summary.json`, written once every count is in.

`WriteMetadataFn` takes the vocabulary sizes, numeric statistics, written
and rejected counts, the time cut and the unseen-value counts as side
inputs, so it runs after the rest of the job; `build_summary` is the row
accounting (rows read == rows written + rows rejected). The schema records
the fingerprint of its vocabulary (`tfcvr.features.vocab_fingerprint`).
"""

import json

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tfcvr.features.keys import SUMMARY_FILE
from beam_jobs.transforms.vocabularies import write_vocabulary
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint as vf


def write_json(path, obj):
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    with FileSystems.create(
        path, compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        f.write(text.encode("utf-8"))


def read_bytes(path):
    with FileSystems.open(
        path, compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
        return f.read()


def read_json(path):
    return json.loads(read_bytes(path).decode("utf-8"))


def build_summary(rows_in, written, rejected, extra=None):
    """The accounting of a run: rows read, written per split, rejected per
    reason, and whether rows read == rows written + rows rejected."""
    written = {split: int(written.get(split, 0)) for split in (
        keys.TRAIN_SPLIT, keys.EVAL_SPLIT)}
    rejected = {reason: int(n) for reason, n in sorted(rejected.items())}
    total_rejected = sum(rejected.values())
    summary = {
        "rows_read": int(rows_in),
        "rows_written": written,
        "rows_rejected": rejected,
        "rows_rejected_total": total_rejected,
        "accounting_ok": int(rows_in) == sum(written.values()) + total_rejected,
    }
    summary.update(extra or {})
    return summary


class WriteMetadataFn(beam.DoFn):
    """Writes `schema.json`, empty vocabulary files and `summary.json` once
    every count is known (all inputs arrive as side inputs); emits the
    summary dict.

    Args:
        spec: `InputSpec`.
        out_dir: str. Dataset directory.
        metadata: dict. Provenance stored in `schema.metadata` and the
            summary (format, input, split settings, shards).
        features: tuple of `FeatureSpec` or None. The schema's features,
            when they are given (`--vocab-from`) rather than computed.
    """

    def __init__(self, spec, out_dir, metadata, features=None):
        self.spec = spec
        self.out_dir = out_dir
        self.metadata = dict(metadata)
        self.features = None if features is None else tuple(features)

    def _read_vocab(self, vocab_file):
        return read_bytes(FileSystems.join(self.out_dir, vocab_file))

    def process(
        self, unused_element, vocab_sizes, stats, written, rejected, rows_in,
        time_cut, oov=None,
    ):
        vocab_sizes = dict(vocab_sizes)
        for vocab_name in self.spec.vocab_names:
            if vocab_name not in vocab_sizes:
                vocab_sizes[vocab_name] = write_vocabulary(
                    self.out_dir, vocab_name, ()
                )
        summary = build_summary(
            rows_in,
            written,
            rejected,
            extra={
                **self.metadata,
                "time_cut": time_cut,
                "vocab_sizes": dict(sorted(vocab_sizes.items())),
            },
        )
        if oov:
            summary["oov"] = dict(sorted(oov.items()))
        schema = self.spec.to_schema(vocab_sizes, dict(stats))
        if self.features is not None:
            schema = schema.replace(features=self.features)
        fingerprint = vf.fingerprint(schema, self._read_vocab)
        summary[vf.METADATA_KEY] = fingerprint
        schema = schema.replace(metadata={
            **self.metadata,
            "time_cut": time_cut,
            "rows": summary["rows_written"],
            vf.METADATA_KEY: fingerprint,
        })
        write_json(FileSystems.join(self.out_dir, keys.SCHEMA_FILE), schema.to_dict())
        write_json(FileSystems.join(self.out_dir, SUMMARY_FILE), summary)
        yield summary
