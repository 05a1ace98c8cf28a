"""The base of the fixed-format readers (Ali-CCP, AliExpress, PaddleRec).

A fixed format builds its own `InputSpec` (from the format, or from the
header of its files), so these readers take no `spec`. `FixedLineReader`
and `FixedLineFn` are the base of the formats with one row per line; the
helpers below (line preparation, labels, option checks, file splits, the
spec) also serve the raw Ali-CCP reader, whose rows come out of a join.
Dead letters, file listing and row-key hashing are the core readers'
(`dead_letter`, `input_files`, `row_converter`), so every reader writes the
same records and counters.
"""

import os

import apache_beam as beam

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import clean_line
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import read_lines
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from tfcvr.features import input_spec as input_spec_lib
from tfcvr.features import keys

# Exact text of a 0/1 label; anything else is a `bad_label` dead letter.
LABEL_VALUES = {"0": 0, "1": 1}
# The word for each split in the file names of these datasets.
FILE_SPLIT_WORDS = {"train": keys.TRAIN_SPLIT, "test": keys.EVAL_SPLIT}


# === Lines and labels ===


def prepare_line(raw):
    """A raw bytes line without a trailing CR or byte-order mark (see
    `clean_line`), or None for a blank line.

    Blank lines are skipped and counted (`blank_lines_skipped`), as the
    generic readers do; they are neither rows nor dead letters.
    """
    raw = clean_line(raw)
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
    """`(click, conversion)` of two label texts; raises `DeadLetter`."""
    click = parse_label(click_text)
    conversion = parse_label(conversion_text)
    if click is None or conversion is None:
        empty = not click_text.strip() or not conversion_text.strip()
        raise dl.DeadLetter(
            dl.MISSING_LABEL if empty else dl.BAD_LABEL,
            f"labels must be 0 or 1; received click={click_text[:40]!r} "
            f"conversion={conversion_text[:40]!r}",
        )
    if drop_click0_conversion1 and click == 0 and conversion == 1:
        raise dl.DeadLetter(
            dl.CLICK0_CONVERSION1, "conversion=1 without a click (click=0)"
        )
    return click, conversion


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
    found = [split for word, split in FILE_SPLIT_WORDS.items() if word in name]
    if len(found) != 1:
        raise ValueError(
            f"split_by_filename=True needs every file name to contain "
            f"exactly one of 'train' or 'test'. Received: {path}"
        )
    return found[0]


def file_splits(paths, split_by_filename):
    if not split_by_filename:
        return [None] * len(paths)
    return [split_from_filename(p) for p in paths]


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


# === One row per line ===


class FixedLineReader(beam.PTransform):
    """Base of the fixed-format readers that read one row per line.

    Lists the input files (and their splits) at construction. Subclasses
    set `format_name` (and `header_lines`, the lines skipped at the top of
    each file), build `self.spec` and implement `line_fn()`, the
    `FixedLineFn` that parses one line.

    Args:
        file_pattern: str. A file, directory or glob.
        spec: must be None: the format builds its own spec.
        drop_click0_conversion1: bool. Reject click=0, conversion=1 lines.
        split_by_filename: bool. Take the split from the file names
            ("train" or "test").
    """

    format_name = "fixed"
    header_lines = 0

    def __init__(
        self, file_pattern, spec, drop_click0_conversion1, split_by_filename
    ):
        super().__init__()
        check_no_user_spec(self.format_name, spec)
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.files = match_files(file_pattern)
        self.splits = file_splits(self.files, split_by_filename)
        # The files each split's rows come from (the job names them when a
        # split gets no rows).
        self.split_files = {}
        for path, split in zip(self.files, self.splits):
            if split is not None:
                self.split_files.setdefault(split, []).append(path)

    def line_fn(self):
        raise TypeError(f"{type(self).__name__} must implement line_fn().")

    def expand(self, pbegin):
        lines = read_lines(pbegin, self.files, self.header_lines)
        parsed = lines | "ParseLines" >> beam.ParDo(self.line_fn()).with_outputs(
            dl.REJECTED, main=dl.ROWS
        )
        return {dl.ROWS: parsed[dl.ROWS], dl.REJECTED: parsed[dl.REJECTED]}


class FixedLineFn(beam.DoFn):
    """Base DoFn of `FixedLineReader`: `(path, bytes line)` -> row, or a
    dead letter tagged `rejected`.

    Skips and counts blank lines, counts every other line as read, rejects
    a non-UTF-8 line, then calls `parse(line, raw, source)`, which returns
    `(columns, click, conversion, row key)` or raises `DeadLetter`; the row
    gets the labels, `__key__` and the file's `__split__` (if any).

    Args:
        paths: the input files, in the order `splits` follows.
        splits: per file, `"train"`/`"eval"` or None (no `__split__`).
        drop_click0_conversion1: bool.
    """

    def __init__(self, paths, splits, drop_click0_conversion1):
        self._paths = list(paths)
        self._splits = list(splits)
        self._drop = drop_click0_conversion1

    def setup(self):
        self._index = source_index(self._paths)

    def parse(self, line, raw, source):
        raise TypeError(f"{type(self).__name__} must implement parse().")

    def process(self, element):
        path, raw = element
        index = lookup_source(self._index, path)
        source = self._paths[index]
        raw = prepare_line(raw)
        if raw is None:
            return
        dl.count_read()
        line, error = decode_line(raw)
        if error is not None:
            yield dl.reject(dl.NON_UTF8, source, error, raw)
            return
        try:
            row, click, conversion, key = self.parse(line, raw, source)
        except dl.DeadLetter as e:
            yield dl.reject(e.reason, source, e.detail, line)
            return
        row[keys.CLICK] = click
        row[keys.CONVERSION] = conversion
        row[KEY_FIELD] = key
        split = self._splits[index]
        if split is not None:
            row[SPLIT_FIELD] = split
        yield row
