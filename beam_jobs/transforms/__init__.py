"""PTransforms and DoFns of the preprocessing job (`beam_jobs.preprocess`),
one module per stage: `split`, `statistics`, `vocabularies`, `shards`
(encoding and writing) and `metadata`."""

from beam_jobs.transforms.metadata import WriteMetadataFn
from beam_jobs.transforms.shards import EncodeExampleFn
from beam_jobs.transforms.shards import WriteShards
from beam_jobs.transforms.split import AssignSplitFn
from beam_jobs.transforms.split import ComputeTimeCut
from beam_jobs.transforms.statistics import ComputeNumericStats
from beam_jobs.transforms.statistics import CountPerBundleFn
from beam_jobs.transforms.vocabularies import ComputeVocabularies
from beam_jobs.transforms.vocabularies import WriteVocabularyFn

__all__ = [
    "AssignSplitFn",
    "ComputeNumericStats",
    "ComputeTimeCut",
    "ComputeVocabularies",
    "CountPerBundleFn",
    "EncodeExampleFn",
    "WriteMetadataFn",
    "WriteShards",
    "WriteVocabularyFn",
]
