"""The base of the readers whose rows follow a user-written `InputSpec`."""

import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import clean_line
from beam_jobs.readers.input_files import is_local_dir
from beam_jobs.readers.input_files import iter_lines
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import read_lines
from beam_jobs.readers.row_converter import RowConverter
from tfcvr.features.input_spec import InputSpec


def load_spec(spec):
    """An `InputSpec` from an InputSpec, a dict or a spec.json path."""
    if isinstance(spec, InputSpec):
        return spec
    if isinstance(spec, dict):
        return InputSpec.from_dict(spec)
    if isinstance(spec, str):
        if not FileSystems.exists(spec):
            raise ValueError(f"No input spec file at {spec}")
        with FileSystems.open(spec) as f:
            return InputSpec.from_json(f.read().decode("utf-8"))
    raise ValueError(
        f"spec must be an InputSpec, a dict or a path to spec.json. "
        f"Received: spec={type(spec).__name__}"
    )


_COMPRESSED = (".gz", ".bz2", ".zst", ".deflate")


def _data_name(path):
    name = os.path.basename(path).lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class GenericReader(beam.PTransform):
    """Base of the readers whose rows follow a user-written `InputSpec`.

    Lists the input files and loads the spec at construction, so an empty
    glob or a bad spec fails with a one-line ValueError before any Beam
    work. A directory input keeps only files with the format's `extensions`
    (compressed or not); a glob or file list is read as given. Subclasses
    implement `expand` and return `{ROWS: ..., REJECTED: ...}`.

    `read_local()` runs the same parsing without a pipeline, in input
    order (scoring a log with `tfcvr predict`): one rule for what a good row
    is, whichever way a log is read.

    Args:
        file_pattern: str. Path, directory, glob or comma-separated list.
        spec: `InputSpec`, dict or path to spec.json. Required.
        drop_click0_conversion1: bool. Reject rows with conversion=1 and
            click=0 (see `RowConverter`).
        features_only: bool. Read only the feature columns and the row key
            (see `RowConverter`); the other spec columns may be absent.
    """

    format_name = "generic"
    # File name endings read from a directory input (globs are taken as is).
    extensions = ()

    def __init__(
        self, file_pattern, spec=None, drop_click0_conversion1=True,
        features_only=False,
    ):
        super().__init__()
        if spec is None:
            raise ValueError(
                f"The {self.format_name} format needs an input spec "
                f"(--spec spec.json, or spec.json beside the input files; "
                f"`tfcvr schema infer` proposes one)."
            )
        self.file_pattern = file_pattern
        self.spec = load_spec(spec)
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.features_only = bool(features_only)
        self.files = match_files(file_pattern)
        if is_local_dir(file_pattern):
            # A directory may hold other files (simulation.json, README...).
            kept = [f for f in self.files if _data_name(f).endswith(self.extensions)]
            if not kept:
                raise ValueError(
                    f"No {self.format_name} files ({', '.join(self.extensions)}) "
                    f"in directory {file_pattern}."
                )
            self.files = kept

    def read_lines(self, pbegin, skip_header_lines=0):
        """`(path, bytes line)` of every input file (see `read_lines`)."""
        return read_lines(pbegin, self.files, skip_header_lines)

    def local_lines(self, skip_header_lines=0):
        """`(path, bytes line)` of every input file, in order, without a
        pipeline (the lines `read_lines` gives)."""
        for path in self.files:
            for line in iter_lines(path, skip_header_lines):
                yield path, line

    def check_columns(self, available, source):
        self.spec.check_columns(
            available, source=source, features_only=self.features_only
        )

    def parse_fn(self):
        """The DoFn turning one element of `local_elements()` (and of the
        pipeline) into rows and tagged dead letters."""
        raise TypeError(f"{type(self).__name__} must implement parse_fn().")

    def local_elements(self):
        """The elements `parse_fn()` takes, file by file, in order."""
        raise TypeError(
            f"{type(self).__name__} must implement local_elements()."
        )

    def read_local(self):
        """Every record as `(row, None)` or `(None, dead letter)`, in input
        order, without a pipeline (the DoFn of `parse_fn()` called directly)."""
        fn = self.parse_fn()
        fn.setup()
        for element in self.local_elements():
            for output in fn.process(element):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield None, output.value
                else:
                    yield output, None


class LineParseFn(beam.DoFn):
    """Base DoFn of line formats: decode, skip blank lines, count, convert.

    Subclasses implement `record(path, text)` returning `(record dict,
    raw_for_key)` or raising `DeadLetter`.
    """

    def __init__(self, spec, drop_click0_conversion1=True, features_only=False):
        self.spec = spec
        self.drop_click0_conversion1 = drop_click0_conversion1
        self.features_only = features_only
        self._converter = None
        self._read = 0
        self._blank = 0

    def setup(self):
        self._converter = RowConverter(
            self.spec,
            drop_click0_conversion1=self.drop_click0_conversion1,
            features_only=self.features_only,
        )

    def start_bundle(self):
        self._read = 0
        self._blank = 0

    def finish_bundle(self):
        # One counter update per bundle: per-row updates cost more than parsing.
        dl.count_read(self._read)
        dl.count_blank_line(self._blank)

    def record(self, path, text):
        raise TypeError(f"{type(self).__name__} must implement record().")

    def process(self, element):
        path, raw = element
        raw = clean_line(raw)
        if not raw.strip():
            self._blank += 1
            return
        self._read += 1
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise dl.DeadLetter(
                    dl.NON_UTF8, f"line is not UTF-8 at byte {e.start}"
                ) from None
            record, raw_for_key = self.record(path, text)
            yield self._converter.convert(record, raw_for_key=raw_for_key)
        except dl.DeadLetter as e:
            yield dl.reject(e.reason, path, e.detail, raw)
