"""The tf.data input pipeline: a preprocessed dataset directory to batches."""

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.data.tfrecord_dataset import make_dataset

__all__ = ["DatasetDir", "FeatureTransform", "make_dataset"]
