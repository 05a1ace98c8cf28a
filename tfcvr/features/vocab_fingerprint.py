"""Vocabulary fingerprints: whether two directories encode raw values alike.

Dataset directories hold raw values; the vocabulary files and the schema
fields in `ENCODING_FIELDS` decide which index or number each value becomes
(`tfcvr.data.FeatureTransform`). A model trained on one dataset directory
scores another correctly only if both agree on all of them, so every
dataset and model directory records a fingerprint of exactly that (in
`schema.json`, `metadata.vocab_fingerprint`), and `check_same_vocabulary`
refuses a pair that differs, naming the features and what differs.

The check recomputes both fingerprints from the files: a vocabulary edited
or copied by hand cannot hide behind a stale record, and directories written
before fingerprints existed need nothing. The recorded value is provenance.
"""

import hashlib
import json
import os

from tfcvr.features.schema import Schema

# FeatureSpec fields that decide the index or value a raw input becomes.
# Not `embedding_group` (which table an index reads, a model matter),
# `separator` (how a reader splits raw text, before the dataset), `min`/`max`.
ENCODING_FIELDS = (
    "kind",
    "value_dtype",
    "vocab_size",
    "num_oov",
    "hash_buckets",
    "max_len",
    "weighted",
    "log",
    "clip_min",
    "clip_max",
    "mean",
    "std",
    "default",
)
# `schema.metadata` key of the recorded fingerprint.
METADATA_KEY = "vocab_fingerprint"
# How a differing vocabulary file is named in messages.
VOCABULARY = "vocabulary"
# Hex digits of a fingerprint shown in messages.
SHORT = 12
# Differing features named in a message (the rest are counted).
MAX_LISTED = 6


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def local_vocab_reader(directory):
    """`read_vocab(vocab_file) -> bytes` for files under a local directory."""

    def read_vocab(vocab_file):
        path = os.path.join(directory, vocab_file)
        if not os.path.exists(path):
            raise ValueError(f"Vocabulary file not found: {path}")
        with open(path, "rb") as f:
            return f.read()

    return read_vocab


def feature_fingerprints(schema, read_vocab):
    """What decides each feature's encoding.

    Args:
        schema: `Schema`.
        read_vocab: callable. `vocab_file` (relative path) -> bytes.

    Returns:
        `{feature name: {"settings": {field: value}, "vocabulary": sha256
        hex or None}}` (None for hashed and numeric features and empty
        vocabularies, which have no file to read).
    """
    digests = {}
    result = {}
    for f in schema.features:
        vocabulary = None
        if f.is_categorical and f.hash_buckets is None and f.vocab_size > 0:
            if f.vocab_file not in digests:
                digests[f.vocab_file] = _digest(read_vocab(f.vocab_file))
            vocabulary = digests[f.vocab_file]
        result[f.name] = {
            "settings": {k: getattr(f, k) for k in ENCODING_FIELDS},
            VOCABULARY: vocabulary,
        }
    return result


def fingerprint(schema, read_vocab):
    """The fingerprint (sha256 hex) of a schema's encoding and vocabularies;
    independent of feature order and of everything else in the schema."""
    return _combine(feature_fingerprints(schema, read_vocab))


def _combine(features):
    text = json.dumps(features, sort_keys=True, separators=(",", ":"))
    return _digest(text.encode("utf-8"))


def directory_fingerprint(directory):
    """The fingerprint of a dataset or model directory, from its files."""
    schema = Schema.load(directory)
    return fingerprint(schema, local_vocab_reader(directory))


def recorded_fingerprint(directory):
    """The fingerprint recorded in a directory's `schema.json`, or None."""
    value = Schema.load(directory).metadata.get(METADATA_KEY)
    return value if isinstance(value, str) else None


def vocabulary_differences(reference, other, reference_name, other_name):
    """One phrase per feature whose encoding differs, e.g. `"city
    (vocabulary)"`, `"price (mean, std)"`, `"age (only in runs/esmm)"`.

    Args:
        reference, other: `feature_fingerprints` results.
        reference_name, other_name: str. How the two sides are named.
    """
    phrases = []
    for name in sorted(set(reference) | set(other)):
        if name not in other:
            phrases.append(f"{name} (only in {reference_name})")
            continue
        if name not in reference:
            phrases.append(f"{name} (only in {other_name})")
            continue
        a, b = reference[name], other[name]
        fields = [
            k for k in ENCODING_FIELDS if a["settings"][k] != b["settings"][k]
        ]
        if a[VOCABULARY] != b[VOCABULARY]:
            fields.append(VOCABULARY)
        if fields:
            phrases.append(f"{name} ({', '.join(fields)})")
    return phrases


def check_same_vocabulary(reference_dir, data_dir):
    """Raises a one-line ValueError unless `data_dir` encodes raw values
    exactly as `reference_dir` does.

    Use it wherever a dataset directory meets a model (or the training
    data) it was not written with: `tfcvr evaluate`, `export --check`,
    `train --validation-data`.

    Args:
        reference_dir: str. The model directory, or the training dataset
            directory, whose vocabulary is the one that counts.
        data_dir: str. The dataset directory to check.

    Returns:
        The common fingerprint (sha256 hex).
    """
    reference = Schema.load(reference_dir)
    data = Schema.load(data_dir)
    expected = feature_fingerprints(reference, local_vocab_reader(reference_dir))
    actual = feature_fingerprints(data, local_vocab_reader(data_dir))
    if expected == actual:
        return _combine(expected)
    differences = vocabulary_differences(expected, actual, reference_dir, data_dir)
    if len(differences) > MAX_LISTED:
        more = len(differences) - MAX_LISTED
        differences = differences[:MAX_LISTED] + [f"{more} more features"]
    raise ValueError(
        f"{data_dir} does not encode features with the vocabulary of "
        f"{reference_dir} (fingerprint {_combine(actual)[:SHORT]} vs "
        f"{_combine(expected)[:SHORT]}; differs: {'; '.join(differences)}). "
        f"Preprocess that log with `tfcvr preprocess --vocab-from "
        f"{reference_dir} ...`."
    )
