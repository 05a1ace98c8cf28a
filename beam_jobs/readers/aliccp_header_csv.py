"""Header-driven CSV parsing shared by the preprocessed Ali-CCP (torch-rechub)
and AliExpress readers.

Both formats are plain comma-separated files with a header, no quoting, 0/1
labels, integer categorical ids and float numeric columns. The header is
read and validated when the reader is built (every file must carry the same
one); each non-blank data line is counted as read and becomes a row dict
or one dead letter with reason `non_utf8`, `wrong_field_count`,
`missing_label`, `bad_label`, `click0_conversion1`, `bad_categorical` (not
an integer) or `bad_numeric` (not a finite float).
"""

import math
import os

import apache_beam as beam

from beam_jobs.readers import aliccp_io as io_lib
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import content_key, read_first_line
from tfcvr.features import keys

_MISSING_NUMERIC = frozenset({"", "nan", "NaN", "NAN"})


def read_common_header(paths, format_name):
    """The header (list of column names) shared by all files."""
    header = None
    for path in paths:
        line = read_first_line(path)
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


def parse_header_csv(
    lines,
    paths,
    splits,
    num_columns,
    plan,
    click_index,
    conversion_index,
    key_index,
    drop_click0_conversion1,
):
    """Applies the line parser; returns `{"rows", "rejected"}`.

    Args:
        lines: PCollection of `(path, bytes line)` (header lines skipped).
        paths: the input files, in the order `splits` follows.
        splits: per file, `"train"`/`"eval"` or None (no `__split__`).
        num_columns: columns of every line.
        plan: tuple of `(column_index, name, kind)` for the features, kind
            `categorical_int` or `numeric`.
        click_index, conversion_index: label column positions.
        key_index: column whose text prefixes `__key__` (None: the file
            base name does).
        drop_click0_conversion1: reject click=0, conversion=1 lines.
    """
    parsed = lines | "ParseLines" >> beam.ParDo(
        _ParseHeaderCsvLine(
            paths,
            splits,
            num_columns,
            plan,
            click_index,
            conversion_index,
            key_index,
            drop_click0_conversion1,
        )
    ).with_outputs(io_lib.REJECTED, main=io_lib.ROWS)
    return {"rows": parsed[io_lib.ROWS], "rejected": parsed[io_lib.REJECTED]}


class _ParseHeaderCsvLine(beam.DoFn):
    def __init__(
        self,
        paths,
        splits,
        num_columns,
        plan,
        click_index,
        conversion_index,
        key_index,
        drop_click0_conversion1,
    ):
        self._paths = list(paths)
        self._splits = list(splits)
        self._num_columns = num_columns
        self._plan = tuple(plan)
        self._click = click_index
        self._conversion = conversion_index
        self._key = key_index
        self._drop = drop_click0_conversion1

    def setup(self):
        self._index = io_lib.source_index(self._paths)
        self._ints = tuple(
            (i, name) for i, name, kind in self._plan
            if kind == keys.CATEGORICAL_INT
        )
        self._floats = tuple(
            (i, name) for i, name, kind in self._plan if kind == keys.NUMERIC
        )

    def process(self, element):
        path, raw = element
        index = io_lib.lookup_source(self._index, path)
        source = self._paths[index]
        raw = io_lib.prepare_line(raw)
        if raw is None:
            return
        dl.count_read()
        line, error = io_lib.decode_line(raw)
        if error is not None:
            yield io_lib.reject(dl.NON_UTF8, source, error, raw)
            return
        columns = line.split(",")
        if len(columns) != self._num_columns:
            yield io_lib.reject(
                dl.WRONG_FIELD_COUNT,
                source,
                f"the header has {self._num_columns} columns, this line has "
                f"{len(columns)}",
                line,
            )
            return
        click, conversion, problem = io_lib.check_labels(
            columns[self._click], columns[self._conversion], self._drop
        )
        if problem is not None:
            yield io_lib.reject(problem[0], source, problem[1], line)
            return
        row = {}
        for i, name in self._ints:
            value = io_lib.parse_int(columns[i])
            if value is None:
                yield io_lib.reject(
                    dl.BAD_CATEGORICAL,
                    source,
                    f"categorical column {name!r} needs an integer id; "
                    f"received {columns[i][:40]!r}",
                    line,
                )
                return
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
                yield io_lib.reject(
                    dl.BAD_NUMERIC,
                    source,
                    f"numeric column {name!r} needs a finite number; "
                    f"received {text[:40]!r}",
                    line,
                )
                return
            row[name] = value
        row[keys.CLICK] = click
        row[keys.CONVERSION] = conversion
        prefix = (
            columns[self._key].strip()
            if self._key is not None
            else os.path.basename(source)
        )
        row[io_lib.KEY_FIELD] = f"{prefix}:{content_key(raw)}"
        split = self._splits[index]
        if split is not None:
            row[io_lib.SPLIT_FIELD] = split
        yield row
