"""PTransforms and DoFns of the preprocessing job (beam_jobs.preprocess),
one module per stage: `split`, `statistics`, `vocabularies`, `shards`
(encoding and writing) and `metadata`."""
