import dataclasses
import hashlib
import json
import os

from tfcvr.features import keys

KIND = "external"
SUMMARY_FILE = "summary.json"
# Reader formats (beam_jobs.readers.FORMATS) whose output is Ali-CCP.
ALICCP_FORMATS = ("aliccp", "aliccp_csv", "paddlerec")
ALICCP_LABEL_PREFIXES = ("aliccp", "ali-ccp", "ali_ccp")


def _fingerprint(path):
    digest = hashlib.sha256()
    for name in (keys.SCHEMA_FILE, SUMMARY_FILE):
        file = os.path.join(path, name)
        if os.path.exists(file):
            with open(file, "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def _reader_format(path):
    file = os.path.join(path, SUMMARY_FILE)
    if not os.path.exists(file):
        return None
    try:
        with open(file) as f:
            return json.load(f).get("format")
    except (OSError, ValueError, AttributeError):
        return None


@dataclasses.dataclass(frozen=True)
class ExternalDataset:
    """A preprocessed dataset directory given to the grid (`--datasets`).

    Its identity in the cell hash is the absolute path plus a fingerprint of
    `schema.json` and `summary.json`, so preprocessing it again reruns its
    cells. It is marked Ali-CCP (and the report adds the papers' reference
    numbers) when `summary.json` names an Ali-CCP reader format or the
    label starts with "aliccp".

    Args:
        path: str. Absolute path of the dataset directory.
        label: str. Name in the report.
        fingerprint: str. Hash of schema.json and summary.json.
        aliccp: bool. Whether the data is Ali-CCP.
        has_ground_truth: bool. Whether rows carry the simulator's truth.
    """

    path: str
    label: str
    fingerprint: str = ""
    aliccp: bool = False
    has_ground_truth: bool = False

    def __post_init__(self):
        if not isinstance(self.path, str) or not os.path.isabs(self.path):
            raise ValueError(
                f"path must be an absolute path. Received: path={self.path!r}"
            )
        if not isinstance(self.label, str) or not self.label or "/" in self.label:
            raise ValueError(
                f"label must be a non-empty name without '/'. Received: "
                f"label={self.label!r}"
            )

    kind = KIND
    selection_bias = None
    seed = None

    @classmethod
    def from_path(cls, spec):
        """`DIR` or `LABEL=DIR` -> ExternalDataset; one-line error if bad."""
        label, sep, path = str(spec).partition("=")
        if not sep:
            label, path = "", label
        path = os.path.abspath(os.path.expanduser(path.strip()))
        if not os.path.isdir(path):
            raise ValueError(f"--datasets: no such directory: {path}")
        if not os.path.exists(os.path.join(path, keys.SCHEMA_FILE)):
            raise ValueError(
                f"--datasets: {path} has no {keys.SCHEMA_FILE}; give a "
                f"directory written by `tfcvr preprocess`."
            )
        label = label.strip() or os.path.basename(path.rstrip(os.sep))
        with open(os.path.join(path, keys.SCHEMA_FILE)) as f:
            schema = json.load(f)
        extra = set(schema.get("extra_columns") or ())
        truth = {keys.TRUE_CVR, keys.CONVERSION_IF_CLICKED} <= extra
        aliccp = _reader_format(path) in ALICCP_FORMATS or label.lower().startswith(
            ALICCP_LABEL_PREFIXES
        )
        return cls(path, label, _fingerprint(path), aliccp, truth)

    @property
    def key(self):
        return self.fingerprint

    def to_dict(self):
        return {"kind": KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, config):
        config = dict(config)
        config.pop("kind", None)
        return cls(**config)
