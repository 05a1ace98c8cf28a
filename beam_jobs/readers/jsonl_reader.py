import json

import apache_beam as beam

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.generic_reader import GenericReader
from beam_jobs.readers.generic_reader import LineParseFn
from beam_jobs.readers.input_files import read_head

# Lines of the first file checked against the spec at construction.
_HEAD_LINES = 200


class JsonlReader(GenericReader):
    """Reads JSON Lines files (one JSON object per line) through an
    `InputSpec`.

    At construction the first lines of the first file are checked: a spec
    column present in none of them is a one-line ValueError (a typo, not a
    missing value). A line that is not a JSON object is a `bad_json` dead
    letter; an absent key is a missing value. Multi-valued columns may be
    JSON lists or separated strings.

    Args:
        file_pattern: str. Path, directory, glob or comma-separated list.
        spec: `InputSpec`, dict or spec.json path.
        drop_click0_conversion1: bool. See `RowConverter`.
        features_only: bool. See `GenericReader`.
    """

    format_name = "jsonl"
    extensions = (".jsonl", ".ndjson")

    def __init__(
        self, file_pattern, spec=None, drop_click0_conversion1=True,
        features_only=False,
    ):
        super().__init__(
            file_pattern, spec, drop_click0_conversion1, features_only
        )
        seen = set()
        parsed_any = False
        for raw in read_head(self.files[0], _HEAD_LINES):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                parsed_any = True
                seen.update(record)
        if parsed_any:
            self.check_columns(
                seen, source=f"{self.files[0]} (first {_HEAD_LINES} lines)"
            )

    def parse_fn(self):
        return ParseJsonLineFn(
            self.spec, self.drop_click0_conversion1, self.features_only
        )

    def local_elements(self):
        return self.local_lines()

    def expand(self, pbegin):
        lines = self.read_lines(pbegin)
        parsed = lines | "ParseJsonl" >> beam.ParDo(
            self.parse_fn()
        ).with_outputs(dl.REJECTED, main=dl.ROWS)
        return {dl.ROWS: parsed[dl.ROWS], dl.REJECTED: parsed[dl.REJECTED]}


class ParseJsonLineFn(LineParseFn):
    """`(path, bytes line)` -> row, or a dead letter tagged `rejected`."""

    def record(self, path, text):
        try:
            record = json.loads(text)
        except ValueError as e:
            raise dl.DeadLetter(dl.BAD_JSON, f"invalid JSON: {e}") from None
        if not isinstance(record, dict):
            raise dl.DeadLetter(
                dl.BAD_JSON,
                f"a line must be a JSON object; got {type(record).__name__}",
            )
        return record, text
