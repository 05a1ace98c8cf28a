"""Feature schema: the single source of truth for column names and kinds."""

from tfcvr.features import keys
from tfcvr.features.feature_spec import FeatureSpec
from tfcvr.features.schema import Schema

__all__ = ["keys", "FeatureSpec", "Schema"]
