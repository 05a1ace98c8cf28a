"""Readers: one `beam.PTransform` per log format.

A reader is applied to the pipeline root,
`outputs = pipeline | ReaderClass(file_pattern, spec=None, **options)`,
returns `{"rows": PCollection, "rejected": PCollection}` (`dead_letter.ROWS`
and `dead_letter.REJECTED`) and exposes `reader.spec` (the `InputSpec` of
its rows) and `reader.files`; a reader whose rows carry their split from
their files may also expose `reader.split_files` (`{split: [path, ...]}`),
so the job names those files when a split gets no rows. See
`beam_jobs.preprocess`.

`FORMATS` maps a format name to its reader class; a new format plugs in
with one module and one line here. A reader that lives outside this
package may be registered as a `"module:Class"` string, imported on first
use.
"""

import importlib

from beam_jobs.readers.aliccp import ReadAliCCP
from beam_jobs.readers.aliccp import ReadAliCCPCsv
from beam_jobs.readers.aliccp import ReadAliExpressCsv
from beam_jobs.readers.aliccp import ReadPaddleRec
from beam_jobs.readers.csv_reader import CsvReader
from beam_jobs.readers.dead_letter import DeadLetter
from beam_jobs.readers.generic_reader import GenericReader
from beam_jobs.readers.generic_reader import load_spec
from beam_jobs.readers.jsonl_reader import JsonlReader
from beam_jobs.readers.parquet_reader import ParquetReader
from beam_jobs.readers.row_converter import RowConverter

__all__ = [
    "FORMATS",
    "GENERIC_FORMATS",
    "CsvReader",
    "DeadLetter",
    "GenericReader",
    "JsonlReader",
    "ParquetReader",
    "ReadAliCCP",
    "ReadAliCCPCsv",
    "ReadAliExpressCsv",
    "ReadPaddleRec",
    "RowConverter",
    "get_reader_class",
    "load_spec",
]

FORMATS = {
    "csv": CsvReader,
    "parquet": ParquetReader,
    "jsonl": JsonlReader,
    "aliccp": ReadAliCCP,
    "aliccp_csv": ReadAliCCPCsv,
    "aliexpress": ReadAliExpressCsv,
    "paddlerec": ReadPaddleRec,
}

# Formats whose rows follow a user-written input spec (`--spec`).
GENERIC_FORMATS = ("csv", "parquet", "jsonl")


def get_reader_class(name):
    """The reader class registered for a format name (ValueError if none)."""
    if name not in FORMATS:
        raise ValueError(
            f"Unknown input format {name!r}. Known formats: "
            f"{', '.join(sorted(FORMATS))}"
        )
    reader = FORMATS[name]
    if not isinstance(reader, str):
        return reader
    module_name, _, class_name = reader.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ValueError(
            f"Format {name!r} is registered but its reader module "
            f"{module_name} is not installed."
        ) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(
            f"Format {name!r}: module {module_name} has no class "
            f"{class_name}."
        ) from None
