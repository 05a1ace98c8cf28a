"""Input pipeline (tf.data) and the log simulator."""

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.data.make_dataset import make_dataset

__all__ = ["DatasetDir", "FeatureTransform", "make_dataset"]
