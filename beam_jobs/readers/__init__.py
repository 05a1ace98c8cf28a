"""Readers: one `beam.PTransform` per log format.

A reader is applied to the pipeline root,
`outputs = pipeline | ReaderClass(file_pattern, spec=None, **options)`,
returns `{"rows": PCollection, "rejected": PCollection}` and exposes
`reader.spec` (the `InputSpec` of its rows). See `beam_jobs.preprocess`.

`FORMATS` maps a format name to a lazy "module:Class" import string so a
new format plugs in by adding one line here and one module.
"""

import importlib

FORMATS = {
    "csv": "beam_jobs.readers.csv_reader:CsvReader",
    "parquet": "beam_jobs.readers.parquet_reader:ParquetReader",
    "jsonl": "beam_jobs.readers.jsonl_reader:JsonlReader",
    "aliccp": "beam_jobs.readers.aliccp:ReadAliCCP",
    "aliccp_csv": "beam_jobs.readers.aliccp_csv:ReadAliCCPCsv",
    "aliexpress": "beam_jobs.readers.aliexpress:ReadAliExpressCsv",
    "paddlerec": "beam_jobs.readers.paddlerec:ReadPaddleRec",
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
    module_name, _, class_name = FORMATS[name].partition(":")
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
