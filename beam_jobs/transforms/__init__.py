"""PTransforms and DoFns of the preprocessing job (beam_jobs.preprocess)."""
