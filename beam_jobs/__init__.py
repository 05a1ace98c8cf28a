"""Apache Beam jobs of tfcvr: raw impression logs -> TFRecords + schema.

`python -m beam_jobs.preprocess --help` (or `tfcvr preprocess --help`).
Every log format is a reader under `beam_jobs.readers`, registered in
`beam_jobs.readers.FORMATS`.
"""

import logging as _logging


class _DropApitoolsWarning(_logging.Filter):
    # Beam's GCP module warns at import when only part of the GCP extras is
    # installed; it concerns BigQuery only, never this package.
    def filter(self, record):
        return "apitools not found" not in record.getMessage()


def _import_beam_quietly():
    root = _logging.getLogger()
    quiet = _DropApitoolsWarning()
    root.addFilter(quiet)
    try:
        import apache_beam  # noqa: F401
    finally:
        root.removeFilter(quiet)


_import_beam_quietly()
