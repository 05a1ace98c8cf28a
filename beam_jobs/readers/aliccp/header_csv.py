"""Header-driven CSV readers: the preprocessed Ali-CCP (torch-rechub) and
AliExpress files.

Both formats are plain comma-separated files with a header, no quoting, 0/1
labels, integer categorical ids and float numeric columns. The header is
read and validated when the reader is built (every file must carry the same
one) and names the columns: `HeaderCsvReader` holds that handling, each
format says which header columns are labels, key and features. Each
non-blank data line is counted as read and becomes a row dict or one dead
letter with reason `non_utf8`, `wrong_field_count`, `missing_label`,
`bad_label`, `click0_conversion1`, `bad_categorical` (not an integer) or
`bad_numeric` (not a finite float).
"""

import math
import os
import re

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.aliccp import fields as fields_lib
from beam_jobs.readers.aliccp.fixed_format_reader import FixedLineFn
from beam_jobs.readers.aliccp.fixed_format_reader import FixedLineReader
from beam_jobs.readers.aliccp.fixed_format_reader import build_spec
from beam_jobs.readers.aliccp.fixed_format_reader import check_labels
from beam_jobs.readers.aliccp.fixed_format_reader import parse_int
from beam_jobs.readers.input_files import content_key
from beam_jobs.readers.input_files import read_header_line
from tfcvr.features import keys

_MISSING_NUMERIC = frozenset({"", "nan", "NaN", "NAN"})


def read_common_header(paths, format_name):
    """The header (list of column names) shared by all files."""
    header = None
    for path in paths:
        line = read_header_line(path, f"every {format_name} file")
        columns = [c.strip() for c in line.split(",")]
        if header is None:
            header, first = columns, path
        elif columns != header:
            raise ValueError(
                f"Every {format_name} file needs the same header; {path} "
                f"differs from {first}."
            )
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise ValueError(
            f"The {format_name} header of {paths[0]} repeats columns "
            f"{duplicates}."
        )
    return header


class HeaderCsvReader(FixedLineReader):
    """Base of the CSV readers whose header names the columns.

    Subclasses describe their header: `label_columns` (the click and the
    conversion column), `key_column` (the column whose text prefixes
    `__key__`, or None for the file name), `classify_column(name)` (the
    schema column and kind of a feature column, None for an unexpected one)
    and the words of the error messages (`title`, `header_name`,
    `expected_columns`, `feature_word`).

    Args:
        file_pattern: str. A CSV file, directory or glob.
        spec: must be None; see `column_overrides` and `vocab`.
        drop_click0_conversion1: bool. Reject click=0, conversion=1 lines.
            Defaults to True.
        split_by_filename: bool. Take the split from the file names.
            Defaults to False.
        column_overrides: dict or None. Per-column spec settings.
        vocab: dict or None. The spec's vocabulary settings.
    """

    header_lines = 1
    # Headers that name their labels like the schema does (AliExpress).
    label_columns = (keys.CLICK, keys.CONVERSION)
    key_column = None
    title = "CSV"
    header_name = "a CSV header"
    expected_columns = ""
    feature_word = "feature"

    def __init__(
        self,
        file_pattern,
        spec=None,
        *,
        drop_click0_conversion1=True,
        split_by_filename=False,
        column_overrides=None,
        vocab=None,
    ):
        super().__init__(
            file_pattern, spec, drop_click0_conversion1, split_by_filename
        )
        self.header = read_common_header(self.files, self.title)
        self.plan = self.plan_header(
            self.header, f"The header of {self.files[0]}"
        )
        columns = {name: {"kind": kind} for _, name, kind in self.plan}
        click, conversion = self.label_columns
        self.spec = build_spec(
            columns,
            {keys.CLICK: click, keys.CONVERSION: conversion},
            column_overrides=column_overrides,
            vocab=vocab,
            **self.id_roles(columns),
        )

    @staticmethod
    def classify_column(name):
        """`(schema column, kind)` of a feature column, or None."""
        raise TypeError("HeaderCsvReader subclasses implement classify_column().")

    def id_roles(self, columns):
        """The spec's `user_id` / `item_id` among the schema columns."""
        return {}

    @classmethod
    def plan_header(cls, header, source="the header"):
        """`[(position, schema column, kind), ...]` of the feature columns.

        Raises a one-line ValueError for an unexpected column, a missing
        label or key column, or a header without feature columns.
        """
        required = (cls.key_column,) if cls.key_column else ()
        required += tuple(cls.label_columns)
        plan = []
        for i, name in enumerate(header):
            if name in required:
                continue
            planned = cls.classify_column(name)
            if planned is None:
                raise ValueError(
                    f"{source} is not {cls.header_name}: unexpected column "
                    f"{name!r} (expected {cls.expected_columns})."
                )
            plan.append((i,) + planned)
        missing = [c for c in required if c not in header]
        if missing or not plan:
            raise ValueError(
                f"{source} is not {cls.header_name}: it needs "
                f"{', '.join(required)} and at least one {cls.feature_word} "
                f"column. Missing: {missing or [cls.feature_word + ' columns']}"
            )
        return plan

    def line_fn(self):
        click, conversion = self.label_columns
        return ParseHeaderCsvLineFn(
            self.files,
            self.splits,
            self.drop_click0_conversion1,
            len(self.header),
            self.plan,
            self.header.index(click),
            self.header.index(conversion),
            self.header.index(self.key_column) if self.key_column else None,
        )


class ParseHeaderCsvLineFn(FixedLineFn):
    """Parses one data line of a `HeaderCsvReader`.

    Args:
        paths, splits, drop_click0_conversion1: see `FixedLineFn`.
        num_columns: columns of every line.
        plan: tuple of `(column_index, name, kind)` for the features, kind
            `categorical_int` or `numeric`.
        click_index, conversion_index: label column positions.
        key_index: column whose text prefixes `__key__` (None: the file
            base name does).
    """

    def __init__(
        self,
        paths,
        splits,
        drop_click0_conversion1,
        num_columns,
        plan,
        click_index,
        conversion_index,
        key_index,
    ):
        super().__init__(paths, splits, drop_click0_conversion1)
        self._num_columns = num_columns
        self._plan = tuple(plan)
        self._click = click_index
        self._conversion = conversion_index
        self._key = key_index

    def setup(self):
        super().setup()
        self._ints = tuple(
            (i, name) for i, name, kind in self._plan
            if kind == keys.CATEGORICAL_INT
        )
        self._floats = tuple(
            (i, name) for i, name, kind in self._plan if kind == keys.NUMERIC
        )

    def parse(self, line, raw, source):
        columns = line.split(",")
        if len(columns) != self._num_columns:
            raise dl.DeadLetter(
                dl.WRONG_FIELD_COUNT,
                f"the header has {self._num_columns} columns, this line has "
                f"{len(columns)}",
            )
        click, conversion = check_labels(
            columns[self._click], columns[self._conversion], self._drop
        )
        row = {}
        for i, name in self._ints:
            value = parse_int(columns[i])
            if value is None:
                raise dl.DeadLetter(
                    dl.BAD_CATEGORICAL,
                    f"categorical column {name!r} needs an integer id; "
                    f"received {columns[i][:40]!r}",
                )
            row[name] = value
        for i, name in self._floats:
            text = columns[i].strip()
            if text in _MISSING_NUMERIC:
                row[name] = None
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.inf
            if not math.isfinite(value):
                raise dl.DeadLetter(
                    dl.BAD_NUMERIC,
                    f"numeric column {name!r} needs a finite number; "
                    f"received {text[:40]!r}",
                )
            row[name] = value
        prefix = (
            columns[self._key].strip()
            if self._key is not None
            else os.path.basename(source)
        )
        return row, click, conversion, f"{prefix}:{content_key(raw)}"


# === The formats ===

_DENSE_RE = re.compile(r"D[0-9]+(_[0-9]+)?\Z")
_CATEGORICAL_RE = re.compile(r"categorical_[0-9]+\Z")
_NUMERICAL_RE = re.compile(r"numerical_[0-9]+\Z")


class ReadAliCCPCsv(HeaderCsvReader):
    """Reads the preprocessed Ali-CCP CSVs of torch-rechub.

    Header `click,purchase,101,121,...,150_14,D109_14,...,D853`: `purchase`
    is the conversion label, a field-id column `F` holds label-encoded ids
    (categorical_int column `fF`, the same names as the raw Ali-CCP reader)
    and a `D*` column a min-max scaled value (numeric column of the same
    name, None when empty or NaN). The header is read from every input file
    when the reader is built; the column set is derived from it.

    Rows: `fF` ints, `D*` floats or None, `click` and `conversion` (from
    `purchase`) ints, `__key__` = `"<file name>:<hash of the line>"` (the
    files carry no row id, so identical lines share a key), and with
    `split_by_filename` a `__split__` of `"train"` (name holds "train") or
    `"eval"` (name holds "test"). User id `f101`, item id `f205` when
    present. Every non-blank data line is counted as read and gives one row
    or one dead letter: `non_utf8`, `wrong_field_count`, `missing_label`,
    `bad_label`, `click0_conversion1`, `bad_categorical`, `bad_numeric`.

    Args:
        file_pattern: str. A CSV file, directory or glob.
        spec: must be None; see `column_overrides` and `vocab`.
        drop_click0_conversion1: bool. Reject click=0, purchase=1 lines
            (torch-rechub's preprocessing already dropped them). Defaults
            to True.
        split_by_filename: bool. Take the split from the file names (e.g.
            `ali_ccp_train.csv` and `ali_ccp_test.csv`). Defaults to False.
        column_overrides: dict or None. Per-column spec settings.
        vocab: dict or None. The spec's vocabulary settings.
    """

    format_name = "aliccp_csv"
    # The torch-rechub header names its click label like the schema does.
    label_columns = (keys.CLICK, "purchase")
    title = "Ali-CCP CSV"
    header_name = "a torch-rechub Ali-CCP header"
    expected_columns = (
        "click,purchase, field ids such as 101 or 109_14, and dense columns "
        "such as D508"
    )
    feature_word = "field"

    @staticmethod
    def classify_column(name):
        if fields_lib.FIELD_ID_RE.match(name):
            return fields_lib.column_name(name), keys.CATEGORICAL_INT
        if _DENSE_RE.match(name):
            return name, keys.NUMERIC
        return None

    def id_roles(self, columns):
        return fields_lib.id_roles([n[1:] for n in columns if n.startswith("f")])


class ReadAliExpressCsv(HeaderCsvReader):
    """Reads the AliExpress search-system CSVs (Tianchi dataset 74690).

    The layout of MTReclib's preprocessing as published by torch-rechub and
    FuxiCTR: `search_id,categorical_1..16,numerical_1..63,click,conversion`.
    The column set is derived from the header (read from every file when
    the reader is built), so other counts of categorical/numerical columns
    work too.

    Rows: `categorical_N` ints (categorical_int), `numerical_N` floats or
    None when empty or NaN (numeric), `click`/`conversion` ints, `__key__` =
    `"<search_id>:<hash of the line>"` (a search id is a session, shared by
    several impressions; the hash separates them), and with
    `split_by_filename` a `__split__` of `"train"`/`"eval"` from file names
    holding "train"/"test". No user or item id column is known. Every
    non-blank data line is counted as read and gives one row or one dead
    letter: `non_utf8`, `wrong_field_count`, `missing_label`, `bad_label`,
    `click0_conversion1`, `bad_categorical`, `bad_numeric`.

    Reference: Li et al., "Improving Multi-Scenario Learning to Rank in
    E-commerce by Exploiting Task Relationships in the Label Space", CIKM
    2020 (the dataset).

    Args: those of `HeaderCsvReader`.
    """

    format_name = "aliexpress"
    key_column = "search_id"
    title = "AliExpress"
    header_name = "an AliExpress header"
    expected_columns = "search_id, categorical_N, numerical_N, click, conversion"

    @staticmethod
    def classify_column(name):
        if _CATEGORICAL_RE.match(name):
            return name, keys.CATEGORICAL_INT
        if _NUMERICAL_RE.match(name):
            return name, keys.NUMERIC
        return None
