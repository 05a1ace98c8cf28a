import dataclasses
import json
import os

from tfcvr.features import keys
from tfcvr.features.feature_spec import FeatureSpec


@dataclasses.dataclass(frozen=True)
class Schema:
    """The single source of truth about a dataset's columns.

    Written as `schema.json` by the Beam jobs (or by hand). The tf.data
    parser, the embedding layer, the serving signature and the docs all
    derive from it.

    Args:
        features: tuple of `FeatureSpec`. Model inputs, in order.
        labels: tuple of str. Label columns; must contain `click` and
            `conversion` (extra ones, e.g. a post-click action, may follow).
        user_id: str or None. Name of the feature that is the user id.
        item_id: str or None. Name of the feature that is the item id.
        extra_columns: tuple of str. Stored float columns that are never
            features (row id, ground truth of simulated data).
        timestamp: str or None. Column used for time-based splits.
        metadata: dict. Free-form provenance (source format, row counts).
    """

    features: tuple
    labels: tuple = keys.LABEL_KEYS
    user_id: str | None = None
    item_id: str | None = None
    extra_columns: tuple = ()
    timestamp: str | None = None
    metadata: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        features = tuple(
            f if isinstance(f, FeatureSpec) else FeatureSpec.from_dict(f)
            for f in self.features
        )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "extra_columns", tuple(self.extra_columns))
        if not features:
            raise ValueError("A schema needs at least one feature.")
        names = [f.name for f in features] + list(self.labels)
        names += list(self.extra_columns)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Schema has duplicate column names. Received: {duplicates}"
            )
        for label in keys.LABEL_KEYS:
            if label not in self.labels:
                raise ValueError(
                    f"Schema is missing the label `{label}`. Received: "
                    f"labels={list(self.labels)}"
                )
        feature_names = {f.name for f in features}
        for role in ("user_id", "item_id"):
            value = getattr(self, role)
            if value is not None and value not in feature_names:
                raise ValueError(
                    f"Schema {role} names no feature. Received: "
                    f"{role}={value!r}"
                )
        groups = {}
        for f in features:
            if f.embedding_group is not None:
                groups.setdefault(f.embedding_group, set()).add(f.input_dim)
        for group, dims in groups.items():
            if len(dims) > 1:
                raise ValueError(
                    f"Features of embedding group `{group}` need one "
                    f"vocabulary size. Received input dims: {sorted(dims)}"
                )

    # === Lookups ===

    def __getitem__(self, name):
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"No feature named {name!r} in the schema.")

    @property
    def feature_names(self):
        return tuple(f.name for f in self.features)

    @property
    def categorical_features(self):
        return tuple(f for f in self.features if f.is_categorical)

    @property
    def numeric_features(self):
        return tuple(f for f in self.features if not f.is_categorical)

    @property
    def has_ground_truth(self):
        return all(k in self.extra_columns for k in keys.GROUND_TRUTH_KEYS)

    @property
    def columns(self):
        """Every stored column: features, labels and extra columns."""
        return self.feature_names + self.labels + self.extra_columns

    def check_columns(self, available, source="the input"):
        """Raises a one-line ValueError naming schema columns not available."""
        missing = [c for c in self.columns if c not in set(available)]
        if missing:
            raise ValueError(
                f"The schema names columns that {source} does not have: "
                f"{missing}"
            )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    # === Serialization ===

    def to_dict(self):
        return {
            "features": [f.to_dict() for f in self.features],
            "labels": list(self.labels),
            "user_id": self.user_id,
            "item_id": self.item_id,
            "extra_columns": list(self.extra_columns),
            "timestamp": self.timestamp,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, config):
        if not isinstance(config, dict) or "features" not in config:
            raise ValueError(
                "A schema is a JSON object with a `features` list."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"Schema has unknown keys {unknown}. Known: {sorted(known)}"
            )
        return cls(**config)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"schema is not valid JSON: {e}") from None
        return cls.from_dict(config)

    def save(self, path):
        if os.path.isdir(path):
            path = os.path.join(path, keys.SCHEMA_FILE)
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path):
        """Reads `schema.json` (or `<dir>/schema.json`)."""
        if os.path.isdir(path):
            path = os.path.join(path, keys.SCHEMA_FILE)
        if not os.path.exists(path):
            raise ValueError(f"No schema file at {path}")
        with open(path) as f:
            return cls.from_json(f.read())
