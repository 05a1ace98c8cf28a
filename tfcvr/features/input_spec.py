import dataclasses
import json
import os

from tfcvr.features import keys
from tfcvr.features.feature_spec import FeatureSpec
from tfcvr.features.schema import Schema
from tfcvr.features.vocab_fingerprint import ENCODING_FIELDS

# Per-column keys a user may write: FeatureSpec fields that describe the raw
# column, plus per-column vocabulary overrides. Fields the Beam job computes
# (vocab_size, vocab_file, mean, std, min, max) are not accepted.
COLUMN_KEYS = (
    "kind",
    "num_oov",
    "hash_buckets",
    "value_dtype",
    "embedding_group",
    "max_len",
    "separator",
    "weighted",
    "log",
    "clip_min",
    "clip_max",
    "default",
    "min_count",
    "top_k",
)
COMPUTED_KEYS = ("vocab_size", "vocab_file", "mean", "std", "min", "max")
VOCAB_KEYS = ("min_count", "top_k", "num_oov")
DEFAULT_VOCAB = {"min_count": 1, "top_k": None, "num_oov": 1}
# Multi-valued columns keep this many values when the spec does not say.
DEFAULT_MAX_LEN = 50
# Longest categorical string value (UTF-8 bytes) a row may carry: ids,
# names and tags are far shorter; a longer value is a broken record (a
# whole document in one field) that would land in the vocabulary files.
DEFAULT_MAX_VALUE_BYTES = 1024
SPEC_FILE = "spec.json"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return
    if not _is_int(value) or value < 1:
        raise ValueError(
            f"Input spec: {what} must be a positive integer"
            f"{' or null' if allow_none else ''}. Received: {value!r}"
        )


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How a raw impression log maps to a `Schema` (`spec.json`).

    The Beam preprocessing job reads raw rows with this spec, computes the
    vocabularies and numeric statistics, and writes the resulting `Schema`.
    Per-column entries are `FeatureSpec` fields describing the raw column
    (`kind`, `separator`, `max_len`, `hash_buckets`, `embedding_group`,
    `log`, `clip_min`/`clip_max`, ...) plus `min_count`/`top_k` overrides of
    the global `vocab` settings. A multi-valued column without `max_len`
    keeps `DEFAULT_MAX_LEN` values.

    Args:
        columns: dict. Feature column name -> settings dict (needs `kind`).
        labels: dict. Schema label name (`click`, `conversion`, optional
            extra labels) -> source column.
        user_id: str or None. The feature that is the user id.
        item_id: str or None. The feature that is the item id.
        extra_columns: tuple of str. Stored float columns that are never
            features (row id, ground truth).
        timestamp: str or None. Source column for time-based splits.
        row_key: str or None. Source column with a stable row id (hash
            splits and output order); without it a content hash is used.
        vocab: dict. `min_count` (default 1), `top_k` (default None) and
            `num_oov` (default 1) for every vocabulary.
        max_value_bytes: int. Longest categorical string value, in UTF-8
            bytes, of a single-valued column or of one token of a
            multi-valued column; a row with a longer one is a
            `value_too_long` dead letter. Defaults to 1024.
    """

    columns: dict
    labels: dict = dataclasses.field(
        default_factory=lambda: {k: k for k in keys.LABEL_KEYS}
    )
    user_id: str | None = None
    item_id: str | None = None
    extra_columns: tuple = ()
    timestamp: str | None = None
    row_key: str | None = None
    vocab: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_VOCAB))
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES

    def __post_init__(self):
        if not isinstance(self.columns, dict) or not self.columns:
            raise ValueError(
                f"Input spec: `columns` must be a non-empty object of column "
                f"-> settings. Received: columns={self.columns!r}"
            )
        columns = {}
        for name, settings in self.columns.items():
            columns[name] = self._normalize_column(name, settings)
        object.__setattr__(self, "columns", columns)
        self._check_labels()
        extra = self.extra_columns
        if isinstance(extra, str) or not isinstance(extra, (list, tuple)):
            raise ValueError(
                f"Input spec: `extra_columns` must be a list of column "
                f"names. Received: extra_columns={extra!r}"
            )
        object.__setattr__(self, "extra_columns", tuple(extra))
        for name in self.extra_columns:
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"Input spec: extra column names must be non-empty "
                    f"strings. Received: {name!r}"
                )
        stored = list(columns) + list(self.labels) + list(self.extra_columns)
        duplicates = sorted({n for n in stored if stored.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Input spec: a name is used twice among columns, labels and "
                f"extra_columns. Received: {duplicates}"
            )
        for source in self.labels.values():
            if source in columns:
                raise ValueError(
                    f"Input spec: label source column {source!r} is also a "
                    f"feature column."
                )
        for role in ("user_id", "item_id"):
            value = getattr(self, role)
            if value is not None and value not in columns:
                raise ValueError(
                    f"Input spec: {role} must name a feature column. "
                    f"Received: {role}={value!r}"
                )
        for role in ("timestamp", "row_key"):
            value = getattr(self, role)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(
                    f"Input spec: {role} must be a column name or null. "
                    f"Received: {role}={value!r}"
                )
        self._check_vocab()
        self._check_groups()
        _check_positive_int(self.max_value_bytes, "max_value_bytes")

    # === Validation ===

    def _normalize_column(self, name, settings):
        if not isinstance(name, str) or not name or name.startswith("__"):
            raise ValueError(
                f"Input spec: column names must be non-empty strings not "
                f"starting with '__'. Received: {name!r}"
            )
        if not isinstance(settings, dict):
            raise ValueError(
                f"Input spec: column {name!r} needs a settings object like "
                f'{{"kind": "categorical_int"}}. Received: {settings!r}'
            )
        computed = sorted(set(settings) & set(COMPUTED_KEYS))
        if computed:
            raise ValueError(
                f"Input spec: column {name!r} sets {computed}, which the "
                f"preprocessing job computes; remove them."
            )
        unknown = sorted(set(settings) - set(COLUMN_KEYS))
        if unknown:
            raise ValueError(
                f"Input spec: column {name!r} has unknown keys {unknown}. "
                f"Known keys: {list(COLUMN_KEYS)}"
            )
        if "kind" not in settings:
            raise ValueError(
                f"Input spec: column {name!r} needs a `kind`, one of "
                f"{list(keys.FEATURE_KINDS)}."
            )
        settings = dict(settings)
        if settings["kind"] == keys.MULTI_CATEGORICAL:
            settings.setdefault("max_len", DEFAULT_MAX_LEN)
        for key in ("min_count", "top_k"):
            if key in settings:
                _check_positive_int(
                    settings[key], f"column {name!r} {key}", key == "top_k"
                )
        # FeatureSpec validates kind, dtype, buckets, oov, max_len.
        self._feature_spec(name, settings)
        separator = settings.get("separator")
        if separator is not None and (
            not isinstance(separator, str) or not separator
        ):
            raise ValueError(
                f"Input spec: column {name!r} separator must be a non-empty "
                f"string. Received: separator={separator!r}"
            )
        return settings

    def _check_labels(self):
        if not isinstance(self.labels, dict):
            raise ValueError(
                f"Input spec: `labels` must map label names to source "
                f"columns. Received: labels={self.labels!r}"
            )
        for label in keys.LABEL_KEYS:
            if label not in self.labels:
                raise ValueError(
                    f"Input spec: `labels` needs an entry for {label!r}. "
                    f"Received: labels={self.labels!r}"
                )
        sources = list(self.labels.values())
        for source in sources:
            if not isinstance(source, str) or not source:
                raise ValueError(
                    f"Input spec: label source columns must be non-empty "
                    f"strings. Received: labels={self.labels!r}"
                )
        if len(set(sources)) != len(sources):
            raise ValueError(
                f"Input spec: two labels read the same source column. "
                f"Received: labels={self.labels!r}"
            )
        # Schema label order: click, conversion, then extra labels as given.
        ordered = {k: self.labels[k] for k in keys.LABEL_KEYS}
        ordered.update(self.labels)
        object.__setattr__(self, "labels", ordered)

    def _check_vocab(self):
        if not isinstance(self.vocab, dict):
            raise ValueError(
                f"Input spec: `vocab` must be an object with keys "
                f"{list(VOCAB_KEYS)}. Received: vocab={self.vocab!r}"
            )
        unknown = sorted(set(self.vocab) - set(VOCAB_KEYS))
        if unknown:
            raise ValueError(
                f"Input spec: `vocab` has unknown keys {unknown}. Known "
                f"keys: {list(VOCAB_KEYS)}"
            )
        vocab = {**DEFAULT_VOCAB, **self.vocab}
        _check_positive_int(vocab["min_count"], "vocab.min_count")
        _check_positive_int(vocab["top_k"], "vocab.top_k", allow_none=True)
        _check_positive_int(vocab["num_oov"], "vocab.num_oov")
        object.__setattr__(self, "vocab", vocab)

    def _check_groups(self):
        groups = {}
        for name, settings in self.columns.items():
            group = settings.get("embedding_group")
            if group is None:
                continue
            if not isinstance(group, str) or not group:
                raise ValueError(
                    f"Input spec: column {name!r} embedding_group must be a "
                    f"non-empty string. Received: {group!r}"
                )
            if settings["kind"] == keys.NUMERIC:
                raise ValueError(
                    f"Input spec: numeric column {name!r} cannot have an "
                    f"embedding_group."
                )
            groups.setdefault(group, []).append(name)
        for group, members in groups.items():
            clash = group in self.columns and group not in members
            if clash:
                raise ValueError(
                    f"Input spec: embedding_group {group!r} has the name of "
                    f"another column; vocabulary files would collide."
                )
            for what, get in (
                ("hash_buckets", lambda n: self.columns[n].get("hash_buckets")),
                ("num_oov", self.num_oov),
                ("value_dtype", self.value_dtype),
                ("min_count", self.min_count),
                ("top_k", self.top_k),
            ):
                values = {repr(get(n)) for n in members}
                if len(values) > 1:
                    raise ValueError(
                        f"Input spec: columns of embedding_group {group!r} "
                        f"share one vocabulary and must agree on {what}. "
                        f"Received: "
                        f"{ {n: get(n) for n in members} }"
                    )

    # === Per-column settings ===

    @staticmethod
    def _feature_spec(name, settings, **computed):
        fields = {
            k: v for k, v in settings.items() if k not in ("min_count", "top_k")
        }
        return FeatureSpec(name=name, **fields, **computed)

    def kind(self, name):
        return self.columns[name]["kind"]

    def value_dtype(self, name):
        return self._feature_spec(name, self.columns[name]).value_dtype

    def num_oov(self, name):
        return self.columns[name].get("num_oov", self.vocab["num_oov"])

    def min_count(self, name):
        return self.columns[name].get("min_count", self.vocab["min_count"])

    def top_k(self, name):
        return self.columns[name].get("top_k", self.vocab["top_k"])

    def has_vocabulary(self, name):
        settings = self.columns[name]
        return (
            settings["kind"] in keys.CATEGORICAL_KINDS
            and settings.get("hash_buckets") is None
        )

    def vocab_name(self, name):
        """Vocabulary file stem of a column (its group, or itself); None
        for hashed and numeric columns."""
        if not self.has_vocabulary(name):
            return None
        return self.columns[name].get("embedding_group") or name

    @property
    def vocab_names(self):
        """Every vocabulary, in column order, each once."""
        names = []
        for name in self.columns:
            vocab = self.vocab_name(name)
            if vocab is not None and vocab not in names:
                names.append(vocab)
        return tuple(names)

    def vocab_settings(self, vocab_name):
        """`(min_count, top_k)` of one vocabulary."""
        for name in self.columns:
            if self.vocab_name(name) == vocab_name:
                return self.min_count(name), self.top_k(name)
        raise KeyError(f"No vocabulary named {vocab_name!r}")

    @property
    def numeric_columns(self):
        return tuple(n for n in self.columns if self.kind(n) == keys.NUMERIC)

    @property
    def source_columns(self):
        """Every raw column the job reads, each once, in spec order."""
        names = list(self.columns) + list(self.labels.values())
        names += list(self.extra_columns)
        names += [c for c in (self.timestamp, self.row_key) if c is not None]
        return tuple(dict.fromkeys(names))

    @property
    def feature_source_columns(self):
        """The raw columns that scoring needs: features and the row key."""
        names = list(self.columns)
        if self.row_key is not None:
            names.append(self.row_key)
        return tuple(dict.fromkeys(names))

    def check_columns(self, available, source="the input", features_only=False):
        """Raises a one-line ValueError naming source columns not available
        (only the `feature_source_columns` when `features_only`)."""
        available = set(available)
        needed = (
            self.feature_source_columns if features_only else self.source_columns
        )
        missing = [c for c in needed if c not in available]
        if missing:
            raise ValueError(
                f"The input spec names columns that {source} does not have: "
                f"{missing}. Available: {sorted(available)[:50]}"
            )

    # === Schema ===

    def to_schema(self, vocab_sizes=None, stats=None, metadata=None):
        """The `Schema` with vocabulary sizes and numeric statistics filled.

        Args:
            vocab_sizes: dict. Vocabulary name -> entries (missing: 0).
            stats: dict. Numeric column -> dict with `mean`, `std`, `min`,
                `max` (missing: mean 0, std 1).
            metadata: dict or None. Stored as `schema.metadata`.
        """
        vocab_sizes = vocab_sizes or {}
        stats = stats or {}
        features = []
        for name, settings in self.columns.items():
            computed = {}
            if self.has_vocabulary(name):
                vocab = self.vocab_name(name)
                computed["vocab_size"] = int(vocab_sizes.get(vocab, 0))
                computed["vocab_file"] = f"{keys.VOCAB_DIR}/{vocab}.txt"
                settings = {**settings, "num_oov": self.num_oov(name)}
            elif settings["kind"] == keys.NUMERIC:
                column_stats = stats.get(name) or {}
                for key in ("mean", "std", "min", "max"):
                    if column_stats.get(key) is not None:
                        computed[key] = float(column_stats[key])
            features.append(self._feature_spec(name, settings, **computed))
        return Schema(
            features=tuple(features),
            labels=tuple(self.labels),
            user_id=self.user_id,
            item_id=self.item_id,
            extra_columns=self.extra_columns,
            timestamp=self.timestamp,
            metadata=dict(metadata or {}),
        )

    def computed_from(self, schema):
        """`(vocab_sizes, stats)` for `to_schema`, taken from an existing
        schema instead of computed from rows (encoding a log with another
        dataset's vocabulary)."""
        given = {f.name: f for f in schema.features}
        sizes, stats = {}, {}
        for name in self.columns:
            if name not in given:
                continue
            if self.vocab_name(name) is not None:
                sizes[self.vocab_name(name)] = given[name].vocab_size
            elif self.kind(name) == keys.NUMERIC:
                stats[name] = {
                    k: getattr(given[name], k)
                    for k in ("mean", "std", "min", "max")
                }
        return sizes, stats

    def check_matches(self, schema, source="the schema"):
        """Raises a one-line ValueError unless this spec, with `schema`'s
        vocabulary sizes and statistics, gives `schema`'s features with the
        same encoding (`vocab_fingerprint.ENCODING_FIELDS`: kinds, dtypes,
        buckets, lengths, transforms) and vocabulary files (embedding
        groups), so that rows read with it mean what
        the schema's vocabulary and model expect. How raw text is split
        (`separator`) may differ: it describes the log, not the encoding.

        Args:
            schema: `Schema` (of a dataset or model directory).
            source: str. How the schema is named in the message.
        """
        given = {f.name: f for f in schema.features}
        sizes, stats = self.computed_from(schema)
        derived = {f.name: f for f in self.to_schema(sizes, stats).features}
        differences = []
        for name in sorted(set(given) | set(derived)):
            if name not in derived:
                differences.append(f"{name} (not in the spec)")
            elif name not in given:
                differences.append(f"{name} (not in {source})")
            else:
                fields = [
                    k for k in ENCODING_FIELDS + ("vocab_file",)
                    if getattr(derived[name], k) != getattr(given[name], k)
                ]
                if fields:
                    differences.append(f"{name} ({', '.join(fields)})")
        if differences:
            raise ValueError(
                f"The input spec does not describe the features of {source}: "
                f"{'; '.join(differences)}. Use the spec that data was "
                f"preprocessed with (its {SPEC_FILE})."
            )

    # === Serialization ===

    def to_dict(self):
        config = {
            "columns": {n: dict(s) for n, s in self.columns.items()},
            "labels": dict(self.labels),
            "user_id": self.user_id,
            "item_id": self.item_id,
            "extra_columns": list(self.extra_columns),
            "timestamp": self.timestamp,
            "row_key": self.row_key,
            "vocab": dict(self.vocab),
            "max_value_bytes": self.max_value_bytes,
        }
        return config

    @classmethod
    def from_dict(cls, config):
        if not isinstance(config, dict) or "columns" not in config:
            raise ValueError(
                "An input spec is a JSON object with a `columns` object."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"Input spec has unknown keys {unknown}. Known: {sorted(known)}"
            )
        return cls(**config)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"input spec is not valid JSON: {e}") from None
        return cls.from_dict(config)

    def save(self, path):
        if os.path.isdir(path):
            path = os.path.join(path, SPEC_FILE)
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path):
        """Reads `spec.json` (or `<dir>/spec.json`)."""
        if os.path.isdir(path):
            path = os.path.join(path, SPEC_FILE)
        if not os.path.exists(path):
            raise ValueError(f"No input spec file at {path}")
        with open(path) as f:
            return cls.from_json(f.read())
