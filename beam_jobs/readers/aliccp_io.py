"""Shared plumbing of the fixed-format readers (Ali-CCP, AliExpress, PaddleRec).

Line preparation and accounting, label parsing, option checks, file splits
and the `InputSpec` every fixed-format reader builds for itself. Dead
letters, file listing and row-key hashing come from the core readers'
helpers (`dead_letter`, `input_files`, `row_converter`), so every reader
writes the same records and counters.
"""

import os

import apache_beam as beam
from apache_beam import coders
from apache_beam.io import textio

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.row_converter import KEY_FIELD, SPLIT_FIELD
from tfcvr.features import input_spec as input_spec_lib
from tfcvr.features import keys

# Exact text of a 0/1 label; anything else is a `bad_label` dead letter.
LABEL_VALUES = {"0": 0, "1": 1}
REASON_REPEATED_FIELD = "repeated_single_valued_field"
ON_REPEATED_CHOICES = ("first", "last", "reject")
REJECTED = "rejected"
ROWS = "rows"


def reject(reason, source, detail, raw):
    """A tagged dead-letter output of a reader DoFn."""
    return beam.pvalue.TaggedOutput(
        REJECTED, dl.rejected_record(reason, source, detail, raw)
    )


def prepare_line(raw):
    """A raw bytes line without a trailing CR, or None for a blank line.

    Blank lines are skipped and counted (`blank_lines_skipped`), as the
    generic readers do; they are neither rows nor dead letters.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw.strip():
        dl.count_blank_line()
        return None
    return raw


def decode_line(raw):
    """`(text, None)` or `(None, detail)` for a bytes line."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"line is not UTF-8 at byte {e.start}: {e.reason}"


def parse_label(text):
    return LABEL_VALUES.get(text.strip())


def check_labels(click_text, conversion_text, drop_click0_conversion1):
    """`(click, conversion, None)` or `(None, None, (reason, detail))`."""
    click = parse_label(click_text)
    conversion = parse_label(conversion_text)
    if click is None or conversion is None:
        empty = not click_text.strip() or not conversion_text.strip()
        return None, None, (
            dl.MISSING_LABEL if empty else dl.BAD_LABEL,
            f"labels must be 0 or 1; received click={click_text[:40]!r} "
            f"conversion={conversion_text[:40]!r}",
        )
    if drop_click0_conversion1 and click == 0 and conversion == 1:
        return None, None, (
            dl.CLICK0_CONVERSION1,
            "conversion=1 without a click (click=0)",
        )
    return click, conversion, None


def parse_int(text):
    """Strict int of ascii digits with an optional minus; None otherwise."""
    text = text.strip()
    digits = text[1:] if text.startswith("-") else text
    if digits.isdigit() and digits.isascii():
        return int(text)
    return None


# === Option checks ===


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


def file_splits(paths, split_by_filename):
    if not split_by_filename:
        return [None] * len(paths)
    return [split_from_filename(p) for p in paths]


def read_lines(pbegin, paths, skip_header_lines=0):
    """PCollection of `(path, bytes line)` over the given files.

    Lines stay bytes so that a non-UTF-8 line becomes a dead letter in the
    parsing DoFn instead of failing the read.
    """
    return (
        pbegin
        | "ListFiles" >> beam.Create(list(paths))
        | "ReadLines"
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


def lookup_source(index, path):
    position = index.get(path)
    if position is None:
        position = index[os.path.basename(path)]
    return position


# === Spec ===


def build_spec(
    columns,
    label_sources,
    user_id=None,
    item_id=None,
    column_overrides=None,
    vocab=None,
    extra_columns=(),
):
    """The `InputSpec` of a fixed format, with user overrides merged in.

    `column_overrides` maps a column to spec settings (e.g.
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
            kind = settings.get("kind", columns[name]["kind"])
            if kind != columns[name]["kind"]:
                raise ValueError(
                    f"column_overrides may not change the kind of {name!r} "
                    f"(it is {columns[name]['kind']!r}). Received: "
                    f"kind={kind!r}"
                )
            columns[name].update(settings)
    if vocab is not None and not isinstance(vocab, dict):
        raise ValueError(f"vocab must be a dict. Received: vocab={vocab!r}")
    return input_spec_lib.InputSpec.from_dict(
        {
            "columns": columns,
            "labels": dict(label_sources),
            "user_id": user_id,
            "item_id": item_id,
            "extra_columns": list(extra_columns),
            "vocab": {**input_spec_lib.DEFAULT_VOCAB, **(vocab or {})},
        }
    )
