"""The tf.data input pipeline: a preprocessed dataset directory to batches."""

from tfcvr.data.dataset_dir import INPUT_FORMATS
from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.data.encode_splits import encode_split
from tfcvr.data.encode_splits import encode_splits
from tfcvr.data.encoded_dataset import make_encoded_dataset
from tfcvr.data.encoded_manifest import EncodedManifest
from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.data.tfrecord_dataset import make_dataset

__all__ = [
    "INPUT_FORMATS",
    "DatasetDir",
    "EncodedManifest",
    "FeatureTransform",
    "encode_split",
    "encode_splits",
    "make_dataset",
    "make_encoded_dataset",
]
