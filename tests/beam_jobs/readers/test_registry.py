import apache_beam as beam
import pytest

from beam_jobs.readers import FORMATS
from beam_jobs.readers import GENERIC_FORMATS
from beam_jobs.readers import get_reader_class


def test_every_contract_format_is_registered():
    assert set(FORMATS) == {
        "csv", "parquet", "jsonl", "aliccp", "aliccp_csv", "aliexpress",
        "paddlerec",
    }
    assert set(GENERIC_FORMATS) <= set(FORMATS)


@pytest.mark.parametrize("name", sorted(GENERIC_FORMATS))
def test_generic_readers_resolve_to_ptransforms(name):
    assert issubclass(get_reader_class(name), beam.PTransform)


def test_unknown_format_is_a_one_line_error():
    with pytest.raises(ValueError, match="Unknown input format 'xml'"):
        get_reader_class("xml")
