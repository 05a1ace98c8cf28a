import datetime
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import parquetio
from apache_beam.io.filesystems import FileSystems

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.generic_reader import GenericReader
from beam_jobs.readers.row_converter import RowConverter


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return dl.escape_raw(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def record_text(record):
    """A canonical one-line JSON text of a record (row key and dead letter)."""
    return json.dumps(record, sort_keys=True, default=_json_default)


class ParquetReader(GenericReader):
    """Reads Parquet files through an `InputSpec`.

    Only the spec's columns are read. Each file's Arrow schema is checked
    at construction (one-line ValueError naming missing columns). Arrow
    values are converted like text: integral floats are accepted for ids
    and labels (pandas stores nullable ints as float), NaN/null is missing,
    list columns feed multi-valued features, timestamps become epoch
    seconds. Row keys default to a hash of the record's canonical JSON.

    Args:
        file_pattern: str. Path, directory, glob or comma-separated list.
        spec: `InputSpec`, dict or spec.json path.
        drop_click0_conversion1: bool. See `RowConverter`.
        features_only: bool. See `GenericReader`.
    """

    format_name = "parquet"
    extensions = (".parquet", ".pq")
    # Records per Arrow table when read without a pipeline.
    local_batch_rows = 65536

    def __init__(
        self, file_pattern, spec=None, drop_click0_conversion1=True,
        features_only=False,
    ):
        super().__init__(
            file_pattern, spec, drop_click0_conversion1, features_only
        )
        self.columns = list(
            self.spec.feature_source_columns
            if self.features_only
            else self.spec.source_columns
        )
        for path in self.files:
            try:
                with FileSystems.open(path) as f:
                    names = pq.read_schema(f).names
            except Exception as e:  # noqa: BLE001 (arrow raises many kinds)
                raise ValueError(
                    f"{path} is not a readable Parquet file: "
                    f"{dl.one_line(e, 200)}"
                ) from None
            self.check_columns(names, source=path)

    def parse_fn(self):
        return ConvertArrowTableFn(
            self.spec, self.drop_click0_conversion1, self.features_only
        )

    def local_elements(self):
        for path in self.files:
            with FileSystems.open(path) as f:
                batches = pq.ParquetFile(f).iter_batches(
                    batch_size=self.local_batch_rows, columns=self.columns
                )
                for batch in batches:
                    yield path, pa.Table.from_batches([batch])

    def expand(self, pbegin):
        tables = (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "ReadParquet"
            >> parquetio.ReadAllFromParquetBatched(
                columns=self.columns, with_filename=True
            )
        )
        parsed = tables | "ConvertRecords" >> beam.ParDo(
            self.parse_fn()
        ).with_outputs(dl.REJECTED, main=dl.ROWS)
        return {dl.ROWS: parsed[dl.ROWS], dl.REJECTED: parsed[dl.REJECTED]}


class ConvertArrowTableFn(beam.DoFn):
    """`(path, pyarrow.Table)` -> one row per record, or dead letters."""

    def __init__(self, spec, drop_click0_conversion1=True, features_only=False):
        self.spec = spec
        self.drop_click0_conversion1 = drop_click0_conversion1
        self.features_only = features_only
        self._converter = None

    def setup(self):
        self._converter = RowConverter(
            self.spec,
            drop_click0_conversion1=self.drop_click0_conversion1,
            features_only=self.features_only,
        )

    def process(self, element):
        path, table = element
        dl.count_read(table.num_rows)
        # The canonical text is needed for content keys and dead letters only.
        needs_text = self.spec.row_key is None
        for record in table.to_pylist():
            text = record_text(record) if needs_text else None
            try:
                yield self._converter.convert(record, raw_for_key=text)
            except dl.DeadLetter as e:
                raw = text if text is not None else record_text(record)
                yield dl.reject(e.reason, path, e.detail, raw)
