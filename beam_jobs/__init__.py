"""Apache Beam jobs of tfcvr: raw impression logs -> TFRecords + schema.

`python -m beam_jobs.preprocess --help` (or `tfcvr preprocess --help`).
Every log format is a reader under `beam_jobs.readers`, registered in
`beam_jobs.readers.FORMATS`.
"""
