import csv

import apache_beam as beam

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.generic_reader import GenericReader
from beam_jobs.readers.generic_reader import LineParseFn
from beam_jobs.readers.input_files import read_header_line


def parse_header(line, delimiter):
    return [name.strip() for name in next(csv.reader([line], delimiter=delimiter))]


class CsvReader(GenericReader):
    """Reads delimited text files with a header row through an `InputSpec`.

    Every file's header is read at construction and checked against the
    spec (one-line ValueError naming the missing columns, or the file when
    it is empty or not text). Each line is split with the `csv` module
    rules (quotes allowed; a quoted field may not span lines); a line with
    another field count than its header is a `wrong_field_count` dead
    letter. Empty fields are missing values.
    Row keys default to a content hash of the line.

    Args:
        file_pattern: str. Path, directory, glob or comma-separated list
            (gzip/bz2 files by extension are decompressed).
        spec: `InputSpec`, dict or spec.json path.
        delimiter: str. One-character field delimiter. Defaults to ",".
        column_names: list of str or None. Names of the fields of files
            without a header row; None reads each file's first line.
        drop_click0_conversion1: bool. See `RowConverter`.
        features_only: bool. See `GenericReader`.
    """

    format_name = "csv"
    extensions = (".csv", ".tsv", ".txt")

    def __init__(
        self,
        file_pattern,
        spec=None,
        delimiter=",",
        column_names=None,
        drop_click0_conversion1=True,
        features_only=False,
    ):
        super().__init__(
            file_pattern, spec, drop_click0_conversion1, features_only
        )
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise ValueError(
                f"delimiter must be one character. Received: "
                f"delimiter={delimiter!r}"
            )
        self.delimiter = delimiter
        self.column_names = None if column_names is None else list(column_names)
        self.headers = {}
        for path in self.files:
            if self.column_names is not None:
                header = self.column_names
            else:
                header = parse_header(read_header_line(path), delimiter)
            duplicates = sorted({n for n in header if header.count(n) > 1})
            if duplicates:
                raise ValueError(
                    f"{path} has duplicate column names {duplicates}."
                )
            self.check_columns(header, source=path)
            self.headers[path] = header
        self.skip_header_lines = 0 if self.column_names else 1

    def parse_fn(self):
        return ParseCsvLineFn(
            self.spec,
            self.headers,
            self.delimiter,
            self.drop_click0_conversion1,
            self.features_only,
        )

    def local_elements(self):
        return self.local_lines(self.skip_header_lines)

    def expand(self, pbegin):
        lines = self.read_lines(pbegin, self.skip_header_lines)
        parsed = lines | "ParseCsv" >> beam.ParDo(
            self.parse_fn()
        ).with_outputs(dl.REJECTED, main=dl.ROWS)
        return {dl.ROWS: parsed[dl.ROWS], dl.REJECTED: parsed[dl.REJECTED]}


class ParseCsvLineFn(LineParseFn):
    """`(path, bytes line)` -> row, or a dead letter tagged `rejected`."""

    def __init__(
        self, spec, headers, delimiter=",", drop_click0_conversion1=True,
        features_only=False,
    ):
        super().__init__(spec, drop_click0_conversion1, features_only)
        self.headers = headers
        self.delimiter = delimiter

    def record(self, path, text):
        header = self.headers[path]
        if '"' in text:
            fields = next(csv.reader([text], delimiter=self.delimiter))
        else:
            fields = text.split(self.delimiter)
        if len(fields) != len(header):
            raise dl.DeadLetter(
                dl.WRONG_FIELD_COUNT,
                f"expected {len(header)} fields, got {len(fields)}",
            )
        return dict(zip(header, fields)), text
