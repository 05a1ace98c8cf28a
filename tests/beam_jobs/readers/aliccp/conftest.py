import collections

import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import BeamAssertException
from apache_beam.testing.util import assert_that


@pytest.fixture
def write_lines():
    """`write_lines(path, lines)`: str or bytes lines, newline-terminated."""

    def write(path, lines):
        path.write_bytes(
            b"".join(
                (line if isinstance(line, bytes) else line.encode("utf-8"))
                + b"\n"
                for line in lines
            )
        )
        return path

    return write


@pytest.fixture
def reasons_are():
    """Matcher factory: the `(reason, source)` multiset of the dead letters,
    each a record of the reader contract with a one-line detail."""

    def matcher(expected):
        expected = sorted(expected)

        def check(actual):
            got = sorted((r["reason"], r["source"]) for r in actual)
            if got != expected:
                raise BeamAssertException(f"dead letters {got} != {expected}")
            for record in actual:
                if set(record) != {"reason", "source", "detail", "raw"}:
                    raise BeamAssertException(f"bad record keys {sorted(record)}")
                if "\n" in record["detail"] or not record["detail"]:
                    raise BeamAssertException(f"bad detail {record['detail']!r}")
                if not isinstance(record["raw"], str):
                    raise BeamAssertException("raw must be str")

        return check

    return matcher


@pytest.fixture
def run_reader():
    """`run_reader(reader, rows_matcher, rejected_matcher)`: runs the reader
    on the FnApiRunner; returns its Beam counters by name."""

    def run(reader, rows_matcher, rejected_matcher):
        pipeline = TestPipeline(runner="FnApiRunner")
        outputs = pipeline | reader
        assert_that(outputs["rows"], rows_matcher, label="CheckRows")
        assert_that(outputs["rejected"], rejected_matcher, label="CheckRejected")
        result = pipeline.run()
        result.wait_until_finish()
        counters = collections.Counter()
        for counter in result.metrics().query(MetricsFilter())["counters"]:
            counters[counter.key.metric.name] += counter.committed
        return counters

    return run
