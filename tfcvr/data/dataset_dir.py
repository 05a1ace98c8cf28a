import glob
import json
import logging
import os

from tfcvr.data.encoded_dataset import make_encoded_dataset
from tfcvr.data.encoded_manifest import EncodedManifest
from tfcvr.data.feature_transform import FeatureTransform
from tfcvr.data.tfrecord_dataset import make_dataset
from tfcvr.features import Schema
from tfcvr.features import keys

AUTO = "auto"
RAW = "raw"
ENCODED = "encoded"
INPUT_FORMATS = (AUTO, RAW, ENCODED)

_log = logging.getLogger(__name__)


class DatasetDir:
    """A preprocessed dataset directory written by a Beam job.

    Layout: `schema.json`, `vocab/`, `train/*.tfrecord.gz`,
    `eval/*.tfrecord.gz`, `rejected/`, `summary.json`, and, once encoded
    (`tfcvr encode`, or `tfcvr preprocess` by default),
    `encoded/<split>/part-*.tfrecord` + `manifest.json`: the model inputs
    already looked up, read at almost no cost per row.

    Which a split is read from follows `input_format`: `"auto"` reads the
    encoded shards when they are valid for the directory as it is now
    (`EncodedManifest.problem`: same vocabulary fingerprint, schema columns
    and raw shards) and the raw TFRecords otherwise, saying once why when
    encoded shards exist but are stale; `"raw"` always reads the raw
    TFRecords; `"encoded"` refuses a split without valid encoded shards.
    Both give the same rows with the same values.

    Args:
        path: str. The directory.
        input_format: str. `"auto"` (default), `"raw"` or `"encoded"`.
    """

    def __init__(self, path, input_format=AUTO):
        if not os.path.isdir(path):
            raise ValueError(f"Dataset directory not found: {path}")
        if not os.path.exists(os.path.join(path, keys.SCHEMA_FILE)):
            raise ValueError(
                f"{path} has no {keys.SCHEMA_FILE}; run `tfcvr preprocess` "
                f"first."
            )
        _check_input_format(input_format)
        self.path = path
        self.input_format = input_format
        self.schema = Schema.load(path)
        self._transform = None
        self._manifests = {}

    @property
    def transform(self):
        if self._transform is None:
            self._transform = FeatureTransform(self.schema, self.path)
        return self._transform

    def has_split(self, split):
        return bool(glob.glob(os.path.join(self.path, split, "*.tfrecord*")))

    def files(self, split):
        """The raw TFRecords of a split."""
        files = sorted(
            glob.glob(os.path.join(self.path, split, "*.tfrecord*"))
        )
        if not files:
            raise ValueError(f"No TFRecords for split {split!r} in {self.path}")
        return files

    def format_of(self, split, input_format=None):
        """`"raw"` or `"encoded"`: what `dataset(split, ...)` reads."""
        return RAW if self._manifest(split, input_format) is None else ENCODED

    def input_files(self, split, input_format=None):
        """The files `dataset(split, ...)` reads (the encoded shards or the
        raw TFRecords); a subset may be passed back as `files`, e.g. one
        worker's share."""
        manifest = self._manifest(split, input_format)
        if manifest is None:
            return self.files(split)
        return manifest.files(self.path)

    def dataset(self, split, batch_size, training=None, files=None,
                input_format=None, **kwargs):
        """`make_dataset` (raw) or `make_encoded_dataset` over one split.

        Args:
            split: str.
            batch_size: int.
            training: bool or None. Defaults to `split == "train"`.
            files: list of str or None. A subset of `input_files(split)`.
            input_format: str or None. Overrides the directory's.
            **kwargs: `make_dataset` arguments (`shuffle_buffer`, `seed`,
                `num_epochs`, `include_extra`, `cache`, `drop_remainder`;
                `transform`, `compression` and `num_parallel_reads` apply to
                the raw path only).
        """
        if training is None:
            training = split == keys.TRAIN_SPLIT
        manifest = self._manifest(split, input_format)
        if manifest is None:
            kwargs.setdefault("transform", self.transform)
            return make_dataset(
                files or self.files(split),
                self.schema,
                batch_size,
                vocab_dir=self.path,
                training=training,
                **kwargs,
            )
        for raw_only in ("transform", "compression", "num_parallel_reads"):
            kwargs.pop(raw_only, None)
        return make_encoded_dataset(
            files or manifest.files(self.path),
            manifest.columns,
            batch_size,
            manifest.chunk_rows,
            training=training,
            **kwargs,
        )

    def _manifest(self, split, input_format):
        """The split's valid `EncodedManifest`, or None to read raw."""
        input_format = input_format or self.input_format
        _check_input_format(input_format)
        if input_format == RAW:
            return None
        key = (split, input_format)
        if key not in self._manifests:
            self._manifests[key] = self._resolve(split, input_format)
        return self._manifests[key]

    def _resolve(self, split, input_format):
        manifest = EncodedManifest.load(self.path, split)
        problem = "it was never encoded" if manifest is None else None
        if manifest is not None:
            raw = self.files(split) if self.has_split(split) else []
            problem = manifest.problem(self.path, self.schema, raw)
        if problem is None:
            return manifest
        where = EncodedManifest.path(self.path, split)
        if input_format == ENCODED:
            raise ValueError(
                f"No valid encoded shards for split {split!r} of {self.path} "
                f"({problem}); run `tfcvr encode {self.path}`."
            )
        if manifest is not None:
            _log.warning(
                "Reading the raw TFRecords of %s/%s: its encoded shards (%s) "
                "are stale, %s; `tfcvr encode %s` rewrites them.",
                self.path, split, where, problem, self.path,
            )
        return None

    def summary(self):
        path = os.path.join(self.path, keys.SUMMARY_FILE)
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)


def _check_input_format(input_format):
    if input_format not in INPUT_FORMATS:
        raise ValueError(
            f"input_format must be one of {list(INPUT_FORMATS)}. Received: "
            f"input_format={input_format!r}"
        )
