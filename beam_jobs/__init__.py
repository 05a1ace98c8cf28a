"""Apache Beam jobs of tfcvr: raw impression logs -> TFRecords + schema.

The job is `beam_jobs.preprocess` (`python -m beam_jobs.preprocess --help`,
or `tfcvr preprocess --help`): its `run(argv)` and `run_job(argv)` run it
from Python. It is not imported here, so that `python -m` runs the module
once, as `__main__`. Every log format is a reader under `beam_jobs.readers`,
registered in `beam_jobs.readers.FORMATS`; `beam_jobs.transforms` holds the
job's stages.
"""

import logging as _logging


class _DropApitoolsWarning(_logging.Filter):
    # Beam's GCP module warns at import when only part of the GCP extras is
    # installed; it concerns BigQuery only, never this package.
    def filter(self, record):
        return "apitools not found" not in record.getMessage()


def _import_beam_quietly():
    # Imported inside the filter's lifetime, before any module below
    # imports Beam.
    root = _logging.getLogger()
    quiet = _DropApitoolsWarning()
    root.addFilter(quiet)
    try:
        import apache_beam  # noqa: F401
    finally:
        root.removeFilter(quiet)


_import_beam_quietly()

# The public names; they import Beam, so they follow the quiet import.
from beam_jobs import readers
from beam_jobs import transforms
from beam_jobs.example_encoder import ExampleEncoder
from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from beam_jobs.readers import FORMATS
from beam_jobs.readers import get_reader_class
from beam_jobs.spec_inference import infer_spec

__all__ = [
    "FORMATS",
    "ExampleEncoder",
    "get_reader_class",
    "impression_frame",
    "impression_spec",
    "infer_spec",
    "readers",
    "transforms",
]
