import glob
import json
import os

from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.data.tfrecord_dataset import make_dataset
from tfcvr.features import Schema
from tfcvr.features import keys


class DatasetDir:
    """A preprocessed dataset directory written by a Beam job.

    Layout: `schema.json`, `vocab/`, `train/*.tfrecord.gz`,
    `eval/*.tfrecord.gz`, `rejected/`, `summary.json`.

    Args:
        path: str. The directory.
    """

    def __init__(self, path):
        if not os.path.isdir(path):
            raise ValueError(f"Dataset directory not found: {path}")
        if not os.path.exists(os.path.join(path, keys.SCHEMA_FILE)):
            raise ValueError(
                f"{path} has no {keys.SCHEMA_FILE}; run `tfcvr preprocess` "
                f"first."
            )
        self.path = path
        self.schema = Schema.load(path)
        self._transform = None

    @property
    def transform(self):
        if self._transform is None:
            self._transform = FeatureTransform(self.schema, self.path)
        return self._transform

    def files(self, split):
        files = sorted(
            glob.glob(os.path.join(self.path, split, "*.tfrecord*"))
        )
        if not files:
            raise ValueError(f"No TFRecords for split {split!r} in {self.path}")
        return files

    def dataset(self, split, batch_size, training=None, **kwargs):
        """`make_dataset` over one split; training defaults to split=train."""
        if training is None:
            training = split == keys.TRAIN_SPLIT
        return make_dataset(
            self.files(split),
            self.schema,
            batch_size,
            vocab_dir=self.path,
            training=training,
            transform=self.transform,
            **kwargs,
        )

    def summary(self):
        path = os.path.join(self.path, keys.SUMMARY_FILE)
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)
