"""Feature schema: the single source of truth for column names and kinds,
and the serving wire contract shared by export and serving."""

from tfcvr.features import keys
from tfcvr.features import wire
from tfcvr.features.feature_spec import FeatureSpec
from tfcvr.features.input_spec import InputSpec
from tfcvr.features.schema import Schema

__all__ = ["FeatureSpec", "InputSpec", "Schema", "keys", "wire"]
