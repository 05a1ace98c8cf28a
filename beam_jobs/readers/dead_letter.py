"""Dead letters: rows a reader could not turn into a contract row.

A rejected record is `{"reason", "source", "detail", "raw"}`: a short
snake_case reason, the source file name, a one-line detail and the raw
record as str (non-UTF-8 bytes escaped as `\\xNN`, at most `MAX_RAW_CHARS`
characters). Readers raise `DeadLetter(reason, detail)` while converting a
record and turn it into a record with `DeadLetter.to_record`.

A reader returns `{ROWS: rows, REJECTED: dead letters}` (also the main and
dead-letter output tags of its parsing DoFns). Readers also call
`count_read()` once per raw record (row or rejected): the job checks
`rows_read == rows_written + rows_rejected` against it and writes that
accounting to `keys.SUMMARY_FILE`.
"""

import os

import apache_beam as beam

ROWS = "rows"
REJECTED = "rejected"
MAX_RAW_CHARS = 2000
METRICS_NAMESPACE = "tfcvr"
ROWS_READ = "rows_read"
BLANK_LINES = "blank_lines_skipped"
HEADER_LINES = "header_lines_skipped"
REJECTED_NAMESPACE = "tfcvr.rejected"

# Reasons used by the generic readers and the core job.
NON_UTF8 = "non_utf8"
WRONG_FIELD_COUNT = "wrong_field_count"
BAD_JSON = "bad_json"
MISSING_LABEL = "missing_label"
BAD_LABEL = "bad_label"
CLICK0_CONVERSION1 = "click0_conversion1"
BAD_NUMERIC = "bad_numeric"
BAD_CATEGORICAL = "bad_categorical"
VALUE_TOO_LONG = "value_too_long"
BAD_WEIGHT = "bad_weight"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
MISSING_ROW_KEY = "missing_row_key"
BAD_SPLIT = "bad_split"
# Scoring with a SavedModel whose serving contract requires a feature the
# row lacks (`tfcvr predict --saved-model`); the Beam job has no such rule.
MISSING_REQUIRED_FEATURE = "missing_required_feature"

_rows_read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, ROWS_READ)
_blank_lines = beam.metrics.Metrics.counter(METRICS_NAMESPACE, BLANK_LINES)
_header_lines = beam.metrics.Metrics.counter(METRICS_NAMESPACE, HEADER_LINES)


def escape_raw(raw, limit=MAX_RAW_CHARS):
    """A raw record as str: bytes decoded with `\\xNN` escapes, truncated."""
    if isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw).decode("utf-8", errors="backslashreplace")
    elif not isinstance(raw, str):
        raw = repr(raw)
    return raw[:limit]


def one_line(text, limit=MAX_RAW_CHARS):
    return " ".join(str(text).split())[:limit]


def rejected_record(reason, source, detail, raw):
    """The dead-letter dict of the reader contract."""
    return {
        "reason": reason,
        "source": os.path.basename(str(source)) if source else "",
        "detail": one_line(detail),
        "raw": escape_raw(raw),
    }


def reject(reason, source, detail, raw):
    """A dead letter as the tagged `REJECTED` output of a DoFn."""
    return beam.pvalue.TaggedOutput(
        REJECTED, rejected_record(reason, source, detail, raw)
    )


def count_read(n=1):
    """Counts raw records read (Beam counter `tfcvr:rows_read`)."""
    _rows_read.inc(n)


def count_blank_line(n=1):
    """Counts whitespace-only lines, which are skipped, not rows."""
    _blank_lines.inc(n)


def count_header_line(n=1):
    """Counts header lines a reader recognised and skipped (not rows)."""
    _header_lines.inc(n)


class DeadLetter(Exception):
    """A record that cannot become a row, with a short snake_case reason.

    Args:
        reason: str. Short snake_case reason, e.g. `"bad_label"`.
        detail: str. One line saying what was wrong (column and value).
    """

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def to_record(self, source, raw):
        return rejected_record(self.reason, source, self.detail, raw)
