"""Encoding and writing: rows -> deterministic sharded output files.

`EncodeExampleFn` serializes each row as a `tf.train.Example` and keys it
by `(split, shard)`, the shard a stable hash of its row key; `WriteShards`
writes every shard of every group (train and eval TFRecords, the dead
letters' JSON lines) sorted, so a rerun writes the same bytes.
"""

import gzip
import hashlib
import struct

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.example_encoder import ExampleEncoder
from beam_jobs.readers.row_converter import KEY_FIELD

# google-crc32c is faster but optional; apache-beam[tfrecord] brings crcmod.
try:
    from google_crc32c import value as _crc32c
except ImportError:
    import crcmod.predefined

    _crc32c = crcmod.predefined.mkPredefinedCrcFun("crc-32c")

TFRECORD_GZ = "tfrecord_gz"
JSONL = "jsonl"
FILE_FORMATS = {TFRECORD_GZ: ".tfrecord.gz", JSONL: ".jsonl"}


# === Encoding ===


def shard_of(key, num_shards):
    """The shard of a row key: a stable hash, independent of the split hash."""
    digest = hashlib.blake2b(
        key.encode("utf-8", errors="surrogatepass"), digest_size=8, person=b"shard"
    ).digest()
    return int.from_bytes(digest, "big") % num_shards


class EncodeExampleFn(beam.DoFn):
    """`(split, row)` -> `((split, shard), (row_key, tf.train.Example bytes))`.

    Args:
        schema: `tfcvr.features.Schema` (what the encoder writes).
        num_shards: dict. Split -> number of output files.
    """

    def __init__(self, schema, num_shards):
        self.schema = schema
        self.num_shards = dict(num_shards)
        self._encoder = None

    def setup(self):
        self._encoder = ExampleEncoder(self.schema)

    def process(self, element):
        split, row = element
        key = row[KEY_FIELD]
        shard = shard_of(key, self.num_shards[split])
        yield (split, shard), (key, self._encoder.encode(row))


# === Writing ===

def _masked_crc32c(data):
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(record):
    """One TFRecord: length, masked crc32c of length, data, masked crc32c."""
    length = struct.pack("<Q", len(record))
    return b"".join(
        (
            length,
            struct.pack("<I", _masked_crc32c(length)),
            record,
            struct.pack("<I", _masked_crc32c(record)),
        )
    )


def shard_path(out_dir, group, shard, num_shards, file_format):
    name = f"part-{shard:05d}-of-{num_shards:05d}{FILE_FORMATS[file_format]}"
    return FileSystems.join(out_dir, group, name)


def write_file(path, payloads, file_format):
    """Writes gzip TFRecords (fixed gzip header: mtime 0, no name, so the
    bytes are deterministic) or newline-terminated text lines."""
    with FileSystems.create(
        path, compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        if file_format == TFRECORD_GZ:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0
            ) as out:
                _write_batched(out, map(tfrecord_frame, payloads))
        else:
            _write_batched(raw, payloads)


def _write_batched(out, chunks, batch=4096):
    # Few large writes: gzip compresses much faster than with one per record.
    buffer = []
    for chunk in chunks:
        buffer.append(chunk)
        if len(buffer) >= batch:
            out.write(b"".join(buffer))
            buffer = []
    if buffer:
        out.write(b"".join(buffer))


class WriteShardFn(beam.DoFn):
    """`((group, shard), [(sort_key, payload) or None, ...])` -> one file
    `DIR/<group>/part-SSSSS-of-NNNNN<ext>` with the payloads sorted by
    `(sort_key, payload)`; emits `(group, records written)`."""

    def __init__(self, out_dir, num_shards, file_format):
        self.out_dir = out_dir
        self.num_shards = dict(num_shards)
        self.file_format = file_format

    def process(self, element):
        (group, shard), values = element
        records = sorted(v for v in values if v is not None)
        path = shard_path(
            self.out_dir, group, shard, self.num_shards[group], self.file_format
        )
        write_file(path, (payload for _, payload in records), self.file_format)
        beam.metrics.Metrics.counter("tfcvr.written", group).inc(len(records))
        yield group, len(records)


class WriteShards(beam.PTransform):
    """Writes `((group, shard), (sort_key, payload))` into sharded files.

    Deterministic: a record's shard is chosen upstream from its key, each
    shard is sorted by `(sort_key, payload)`, and every shard file of every
    group is written, empty ones included, so a rerun over the same input
    produces the same bytes. Returns a PCollection of `(group, records)`,
    one per shard.

    Args:
        out_dir: str. Dataset directory; files go to `out_dir/<group>/`.
        num_shards: dict. Group (e.g. "train", "eval") -> number of files.
        file_format: str. `"tfrecord_gz"` (payloads are serialized protos)
            or `"jsonl"` (payloads are bytes lines ending in a newline).
    """

    def __init__(self, out_dir, num_shards, file_format=TFRECORD_GZ):
        super().__init__()
        if file_format not in FILE_FORMATS:
            raise ValueError(
                f"file_format must be one of {list(FILE_FORMATS)}. "
                f"Received: file_format={file_format!r}"
            )
        for group, n in num_shards.items():
            if not isinstance(n, int) or n < 1:
                raise ValueError(
                    f"num_shards[{group!r}] must be a positive integer. "
                    f"Received: {n!r}"
                )
        self.out_dir = out_dir
        self.num_shards = dict(num_shards)
        self.file_format = file_format

    def expand(self, keyed):
        seeds = keyed.pipeline | "ShardSeeds" >> beam.Create(
            [
                ((group, shard), None)
                for group, n in sorted(self.num_shards.items())
                for shard in range(n)
            ]
        )
        return (
            (keyed, seeds)
            | "WithSeeds" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(
                WriteShardFn(self.out_dir, self.num_shards, self.file_format)
            )
        )
