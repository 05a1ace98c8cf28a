"""Shared plumbing of the fixed-format readers (Ali-CCP, AliExpress, PaddleRec).

Input expansion, byte-line reading, dead-letter records, label parsing and
the InputSpec dict every fixed-format reader builds for itself.

Dead letters follow the reader contract: `{"reason", "source", "detail",
"raw"}` with `raw` the raw line as str (non-UTF-8 bytes escaped as `\\xNN`,
truncated to `MAX_RAW_CHARS`).
"""

import hashlib
import os
import re

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import textio
from apache_beam.io.filesystems import FileSystems

from tfcvr.features import keys

MAX_RAW_CHARS = 2000
KEY_FIELD = "__key__"
SPLIT_FIELD = "__split__"

# Exact text of a 0/1 label; anything else is a `bad_label` dead letter.
LABEL_VALUES = {"0": 0, "1": 1}

REASON_NON_UTF8 = "non_utf8"
REASON_WRONG_FIELD_COUNT = "wrong_field_count"
REASON_BAD_LABEL = "bad_label"
REASON_BAD_VALUE = "bad_value"
REASON_CLICK0_CONVERSION1 = "click0_conversion1"
REASON_REPEATED_FIELD = "repeated_single_valued_field"

ON_REPEATED_CHOICES = ("first", "last", "reject")

_SPEC_COLUMN_KEYS = frozenset(
    {
        "kind",
        "num_oov",
        "hash_buckets",
        "value_dtype",
        "embedding_group",
        "max_len",
        "separator",
        "weighted",
        "log",
        "clip_min",
        "clip_max",
        "default",
        "min_count",
        "top_k",
    }
)
DEFAULT_VOCAB = {"min_count": 1, "top_k": None, "num_oov": 1}


def raw_text(raw):
    """The raw record as str for a dead letter: escaped, truncated."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    elif not isinstance(raw, str):
        raw = repr(raw)
    return raw[:MAX_RAW_CHARS]


def dead_letter(reason, source, detail, raw):
    return {
        "reason": reason,
        "source": source,
        "detail": " ".join(str(detail).split())[:MAX_RAW_CHARS],
        "raw": raw_text(raw),
    }


def decode_line(raw):
    """Returns `(text, None)` or `(None, detail)` for a bytes line."""
    if isinstance(raw, str):
        return raw, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 at byte {e.start}: {e.reason}"


def line_digest(text):
    """A short content hash: the row key of formats without a row id."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {list(choices)}. Received: {name}={value!r}"
        )


def check_max_len(max_len):
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(
            f"max_len must be a positive integer. Received: max_len={max_len!r}"
        )


def check_no_user_spec(format_name, spec):
    if spec is not None:
        raise ValueError(
            f"The {format_name} format builds its own input spec; pass "
            f"column_overrides=... or vocab=... instead. Received: "
            f"spec={type(spec).__name__}"
        )


# === Files ===


def expand_input(file_pattern):
    """Every file a path, directory or glob names, sorted; ValueError if none."""
    if not isinstance(file_pattern, str) or not file_pattern:
        raise ValueError(
            f"The input must be a non-empty path, directory or glob. "
            f"Received: file_pattern={file_pattern!r}"
        )
    pattern = file_pattern
    if os.path.isdir(pattern) or pattern.endswith("/"):
        pattern = FileSystems.join(pattern.rstrip("/") or "/", "*")
    try:
        results = FileSystems.match([pattern])
    except Exception as e:  # noqa: BLE001 (filesystem errors vary by scheme)
        raise ValueError(
            f"Cannot list input {file_pattern!r}: "
            f"{' '.join(str(e).split())[:300]}"
        ) from None
    paths = sorted(
        m.path
        for r in results
        for m in r.metadata_list
        if not os.path.isdir(m.path)
    )
    if not paths:
        raise ValueError(f"No input files match {file_pattern!r}.")
    return paths


def read_first_line(path):
    """The first line of a (possibly compressed) file as str, no newline."""
    with FileSystems.open(path) as f:
        raw = f.readline()
    text, error = decode_line(raw.rstrip(b"\r\n"))
    if error is not None:
        raise ValueError(f"The first line of {path} is {error}.")
    return text


def split_from_filename(path):
    """`train` or `eval` from a file name holding 'train' or 'test'."""
    name = os.path.basename(path).lower()
    has_train, has_test = "train" in name, "test" in name
    if has_train == has_test:
        raise ValueError(
            f"split_by_filename=True needs every file name to contain "
            f"exactly one of 'train' or 'test'. Received: {path}"
        )
    return keys.TRAIN_SPLIT if has_train else keys.EVAL_SPLIT


def read_lines(pbegin, paths, label, skip_header_lines=0):
    """PCollection of `(path, bytes line)` over the given files.

    Lines stay bytes so that a non-UTF-8 line becomes a dead letter in the
    parsing DoFn instead of failing the read.
    """
    return (
        pbegin
        | f"{label}ListFiles" >> beam.Create(list(paths))
        | f"{label}ReadLines"
        >> textio.ReadAllFromText(
            with_filename=True,
            coder=coders.BytesCoder(),
            skip_header_lines=skip_header_lines,
        )
    )


def source_index(paths):
    """Maps a file path (and its base name) to its position in `paths`."""
    index = {}
    for i, p in enumerate(paths):
        index.setdefault(os.path.basename(p), i)
    for i, p in enumerate(paths):
        index[p] = i
    return index


# === Spec ===


def parse_label(text):
    return LABEL_VALUES.get(text.strip())


def build_spec_dict(
    columns,
    label_sources,
    user_id=None,
    item_id=None,
    row_key=None,
    column_overrides=None,
    vocab=None,
):
    """The InputSpec dict of a fixed format, with user overrides merged in.

    `column_overrides` maps a column to FeatureSpec keys (e.g.
    `{"f101": {"hash_buckets": 1000000}}`); it may not change a column's
    kind, because the rows' python types follow the kind.
    """
    columns = {name: dict(entry) for name, entry in columns.items()}
    if column_overrides is not None:
        if not isinstance(column_overrides, dict):
            raise ValueError(
                f"column_overrides must be a dict of column -> settings. "
                f"Received: column_overrides={column_overrides!r}"
            )
        for name, settings in column_overrides.items():
            if name not in columns:
                raise ValueError(
                    f"column_overrides names an unknown column {name!r}. "
                    f"Known columns: {sorted(columns)}"
                )
            if not isinstance(settings, dict):
                raise ValueError(
                    f"column_overrides[{name!r}] must be a dict. "
                    f"Received: {settings!r}"
                )
            unknown = sorted(set(settings) - _SPEC_COLUMN_KEYS)
            if unknown:
                raise ValueError(
                    f"column_overrides[{name!r}] has unknown keys {unknown}. "
                    f"Known: {sorted(_SPEC_COLUMN_KEYS)}"
                )
            kind = settings.get("kind", columns[name]["kind"])
            if kind != columns[name]["kind"]:
                raise ValueError(
                    f"column_overrides may not change the kind of {name!r} "
                    f"(it is {columns[name]['kind']!r}). Received: "
                    f"kind={kind!r}"
                )
            columns[name].update(settings)
    if vocab is None:
        vocab = dict(DEFAULT_VOCAB)
    elif not isinstance(vocab, dict):
        raise ValueError(f"vocab must be a dict. Received: vocab={vocab!r}")
    else:
        vocab = {**DEFAULT_VOCAB, **vocab}
    spec = {
        "columns": columns,
        "labels": dict(label_sources),
        "user_id": user_id,
        "item_id": item_id,
        "extra_columns": [],
        "vocab": vocab,
    }
    if row_key is not None:
        spec["row_key"] = row_key
    return spec


def to_input_spec(spec_dict):
    """The InputSpec of the core job for a spec dict."""
    from tfcvr.features.input_spec import InputSpec

    return InputSpec.from_dict(spec_dict)


def check_labels(click_text, conversion_text, drop_click0_conversion1):
    """Returns `(click, conversion, None)` or `(None, None, (reason, detail))`."""
    click = parse_label(click_text)
    conversion = parse_label(conversion_text)
    if click is None or conversion is None:
        return None, None, (
            REASON_BAD_LABEL,
            f"labels must be 0 or 1; received click={click_text!r} "
            f"conversion={conversion_text!r}",
        )
    if drop_click0_conversion1 and click == 0 and conversion == 1:
        return None, None, (
            REASON_CLICK0_CONVERSION1,
            "conversion without a click is dropped "
            "(drop_click0_conversion1=True)",
        )
    return click, conversion, None


_INT_RE = re.compile(r"-?[0-9]+\Z")


def parse_int(text):
    """Strict int parse (ascii digits, optional minus); None if not an int."""
    text = text.strip()
    return int(text) if _INT_RE.match(text) else None
