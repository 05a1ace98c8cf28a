import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.readers.row_converter import TIMESTAMP_FIELD
from beam_jobs.transforms.compute_time_cut import ComputeTimeCut
from beam_jobs.transforms.compute_time_cut import time_cut_from_counts


def test_cut_takes_the_last_fraction_of_rows():
    counts = [(float(t), 1) for t in range(100)]
    assert time_cut_from_counts(counts, 0.1) == 90.0
    assert time_cut_from_counts(counts, 0.25) == 75.0
    assert time_cut_from_counts(reversed(counts), 0.1) == 90.0


def test_ties_and_degenerate_inputs():
    # 80 rows at t=1 and 20 at t=2: 20% eval is the closest to 10%.
    assert time_cut_from_counts([(1.0, 80), (2.0, 20)], 0.1) == 2.0
    # Never the earliest time: train keeps rows even for a large fraction.
    assert time_cut_from_counts([(1.0, 5), (2.0, 95)], 0.9) == 2.0
    # Equal gaps: the later cut (smaller eval).
    assert time_cut_from_counts([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 0.375) == 4.0
    assert time_cut_from_counts([(5.0, 10)], 0.1) is None
    assert time_cut_from_counts([(1.0, 5), (2.0, 5)], 0.0) is None
    assert time_cut_from_counts([], 0.1) is None


def test_pipeline_cut(make_pipeline):
    rows = [{TIMESTAMP_FIELD: float(t % 50)} for t in range(200)] + [{}]
    with make_pipeline() as p:
        cut = p | beam.Create(rows) | ComputeTimeCut(0.2)
        assert_that(cut, equal_to([40.0]))


def test_bad_fraction():
    with pytest.raises(ValueError, match="eval_fraction"):
        ComputeTimeCut(1.0)
