import pytest
from apache_beam.testing.test_pipeline import TestPipeline


@pytest.fixture
def make_pipeline():
    """TestPipeline factory on the FnApiRunner (the DirectRunner would first
    try to download the Prism runner)."""
    return lambda: TestPipeline(runner="FnApiRunner")
