import dataclasses
import math

from tfcvr.features import keys


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One model input as `schema.json` describes it.

    A categorical value is encoded to an index in `[0, input_dim)`: 0 means
    padding or missing, `1 .. num_oov` are out-of-vocabulary buckets and the
    vocabulary entries follow in file order. With `hash_buckets` set there is
    no vocabulary: a value maps to `1 + fingerprint(value) % hash_buckets`.
    A numeric value is optionally log-transformed (`log1p` of the value
    clipped at 0), clipped to `[clip_min, clip_max]`, then standardised with
    `mean`/`std`; a missing numeric value takes `default`.

    Args:
        name: str. Column name in the logs, the TFRecords and the serving
            signature.
        kind: str. One of `"categorical_int"`, `"categorical_string"`,
            `"multi_categorical"`, `"numeric"`.
        vocab_size: int. Vocabulary entries (excluding padding and OOV).
        num_oov: int. Out-of-vocabulary buckets. Defaults to 1.
        hash_buckets: int or None. Hash instead of a vocabulary.
        vocab_file: str or None. Vocabulary path relative to the dataset
            directory, one token per line, most frequent first.
        value_dtype: str. `"int64"` or `"string"`: how raw values are stored
            for categorical kinds (numeric values are always float32).
        embedding_group: str or None. Features with the same group share one
            embedding table (e.g. item id and clicked-item history).
        max_len: int. Values kept per row for `"multi_categorical"`.
        separator: str or None. Separator of a multi-valued raw column.
        weighted: bool. A multi-valued field whose values carry weights,
            stored as the float list `<name>__weight`.
        mean, std, min, max: float. Numeric statistics from the training
            split (after `log`).
        log: bool. Apply `log1p(max(x, 0))` before standardising.
        clip_min, clip_max: float or None. Clip after `log`.
        default: float. Raw value used for a missing numeric input.
    """

    name: str
    kind: str
    vocab_size: int = 0
    num_oov: int = 1
    hash_buckets: int | None = None
    vocab_file: str | None = None
    value_dtype: str = "int64"
    embedding_group: str | None = None
    max_len: int = 1
    separator: str | None = None
    weighted: bool = False
    mean: float = 0.0
    std: float = 1.0
    min: float | None = None
    max: float | None = None
    log: bool = False
    clip_min: float | None = None
    clip_max: float | None = None
    default: float = 0.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"A feature needs a non-empty string name. Received: "
                f"name={self.name!r}"
            )
        if self.kind not in keys.FEATURE_KINDS:
            raise ValueError(
                f"Feature `{self.name}` has an unknown kind. Expected one of "
                f"{list(keys.FEATURE_KINDS)}. Received: kind={self.kind!r}"
            )
        if self.value_dtype not in ("int64", "string"):
            raise ValueError(
                f"Feature `{self.name}`: value_dtype must be 'int64' or "
                f"'string'. Received: value_dtype={self.value_dtype!r}"
            )
        if self.kind == keys.CATEGORICAL_STRING and self.value_dtype != "string":
            object.__setattr__(self, "value_dtype", "string")
        if self.is_categorical:
            if self.hash_buckets is not None and self.hash_buckets < 1:
                raise ValueError(
                    f"Feature `{self.name}`: hash_buckets must be >= 1. "
                    f"Received: hash_buckets={self.hash_buckets}"
                )
            if self.num_oov < 1:
                raise ValueError(
                    f"Feature `{self.name}`: num_oov must be >= 1. "
                    f"Received: num_oov={self.num_oov}"
                )
            if self.vocab_size < 0:
                raise ValueError(
                    f"Feature `{self.name}`: vocab_size must be >= 0. "
                    f"Received: vocab_size={self.vocab_size}"
                )
        if self.max_len < 1:
            raise ValueError(
                f"Feature `{self.name}`: max_len must be >= 1. "
                f"Received: max_len={self.max_len}"
            )
        if self.kind == keys.NUMERIC and not (
            math.isfinite(self.std) and self.std > 0
        ):
            raise ValueError(
                f"Feature `{self.name}`: std must be a positive finite "
                f"number. Received: std={self.std}"
            )

    @property
    def is_categorical(self):
        return self.kind in keys.CATEGORICAL_KINDS

    @property
    def is_multi_valued(self):
        return self.kind == keys.MULTI_CATEGORICAL

    @property
    def input_dim(self):
        """Rows of this feature's embedding table."""
        if not self.is_categorical:
            return 0
        if self.hash_buckets is not None:
            return 1 + self.hash_buckets
        return 1 + self.num_oov + self.vocab_size

    def to_dict(self):
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default or f.name in ("name", "kind")
        }

    @classmethod
    def from_dict(cls, config):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"Feature {config.get('name')!r} has unknown keys {unknown}. "
                f"Known keys: {sorted(known)}"
            )
        return cls(**config)
