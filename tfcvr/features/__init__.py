"""Feature schema: the single source of truth for column names and kinds,
and the serving wire contract shared by export and serving."""

from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint
from tfcvr.features import wire
from tfcvr.features.feature_spec import FeatureSpec
from tfcvr.features.input_spec import InputSpec
from tfcvr.features.schema import Schema
from tfcvr.features.vocab_fingerprint import check_same_vocabulary

__all__ = [
    "FeatureSpec",
    "InputSpec",
    "Schema",
    "check_same_vocabulary",
    "keys",
    "vocab_fingerprint",
    "wire",
]
