import dataclasses
import json
import os

from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint

# Bumped whenever the record layout changes; other versions are not read.
FORMAT_VERSION = 1
INT32 = "int32"
FLOAT32 = "float32"
FEATURE = "feature"
LABEL = "label"
EXTRA = "extra"


def encoded_columns(schema):
    """`[{"name", "role", "dtype", "shape"}]`: what an encoded record holds
    per row, in `FeatureTransform`'s output layout (categorical `()` int32,
    multi-valued `(max_len,)` int32 plus a float32 weight matrix, numeric
    `()` float32), then the labels and extra columns as float32 (as
    `make_dataset` returns them)."""
    columns = []
    for f in schema.features:
        if f.is_multi_valued:
            columns.append(_column(f.name, FEATURE, INT32, [f.max_len]))
            if f.weighted:
                columns.append(_column(f.name + keys.WEIGHT_SUFFIX, FEATURE,
                                       FLOAT32, [f.max_len]))
        elif f.is_categorical:
            columns.append(_column(f.name, FEATURE, INT32, []))
        else:
            columns.append(_column(f.name, FEATURE, FLOAT32, []))
    columns += [_column(n, LABEL, FLOAT32, []) for n in schema.labels]
    columns += [_column(n, EXTRA, FLOAT32, []) for n in schema.extra_columns]
    return columns


def _column(name, role, dtype, shape):
    return {"name": name, "role": role, "dtype": dtype, "shape": list(shape)}


def raw_file_list(dataset_path, files):
    """`[{"file", "bytes"}]` of raw shards, paths relative to the dataset."""
    return [
        {"file": os.path.relpath(f, dataset_path), "bytes": os.path.getsize(f)}
        for f in files
    ]


def split_dir(dataset_path, split):
    return os.path.join(dataset_path, keys.ENCODED_DIR, split)


@dataclasses.dataclass(frozen=True)
class EncodedManifest:
    """The manifest of a split's encoded training shards
    (`DIR/encoded/<split>/manifest.json`, see `tfcvr.data.encode_splits`).

    A split's shards are used only while the manifest still describes the
    directory: the same format version, the same vocabulary fingerprint
    (`tfcvr.features.vocab_fingerprint`, recomputed from the files), the same
    columns as the schema gives and the same raw shards (names and sizes) it
    was encoded from; `problem` names the first thing that differs.

    Args:
        split: str. The split.
        rows: int. Rows encoded (== rows of the raw shards).
        chunk_rows: int. Rows per record (the last one of the split shorter).
        columns: list of dict. `encoded_columns(schema)` at encoding time.
        shards: list of dict. `{"file", "rows", "chunks", "bytes"}` per
            encoded shard, file names relative to the split's directory.
        raw_files: list of dict. `raw_file_list` of the source shards.
        vocab_fingerprint: str. The directory's fingerprint when encoded.
        format_version: int. `FORMAT_VERSION` of the writer.
        seconds: float. Time the encoding took.
    """

    split: str
    rows: int
    chunk_rows: int
    columns: list
    shards: list
    raw_files: list
    vocab_fingerprint: str
    format_version: int = FORMAT_VERSION
    seconds: float = 0.0

    @classmethod
    def path(cls, dataset_path, split):
        return os.path.join(split_dir(dataset_path, split),
                            keys.ENCODED_MANIFEST_FILE)

    @classmethod
    def load(cls, dataset_path, split):
        """The split's manifest, or None when the split was never encoded."""
        path = cls.path(dataset_path, split)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            config = json.load(f)
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in fields})

    def save(self, directory):
        with open(os.path.join(directory, keys.ENCODED_MANIFEST_FILE), "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, sort_keys=True)

    def files(self, dataset_path):
        directory = split_dir(dataset_path, self.split)
        return [os.path.join(directory, s["file"]) for s in self.shards]

    def problem(self, dataset_path, schema, raw_files):
        """Why these shards do not encode the directory as it is now (a
        short phrase), or None when they do."""
        if self.format_version != FORMAT_VERSION:
            return (f"format version {self.format_version}, this tfcvr reads "
                    f"{FORMAT_VERSION}")
        if self.columns != encoded_columns(schema):
            return "the schema's features, labels or extra columns changed"
        if self.raw_files != raw_file_list(dataset_path, raw_files):
            return "the raw TFRecords changed since"
        current = vocab_fingerprint.directory_fingerprint(dataset_path)
        if current != self.vocab_fingerprint:
            return (
                f"the vocabulary changed (fingerprint "
                f"{current[:vocab_fingerprint.SHORT]}, encoded with "
                f"{self.vocab_fingerprint[:vocab_fingerprint.SHORT]})"
            )
        for shard, path in zip(self.shards, self.files(dataset_path)):
            if not os.path.exists(path) or os.path.getsize(path) != shard["bytes"]:
                return f"shard {shard['file']} is missing or truncated"
        if sum(s["rows"] for s in self.shards) != self.rows:
            return "the shards' rows do not add up to the manifest's"
        return None
