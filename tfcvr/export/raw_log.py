"""Raw logs read without a pipeline: the Beam readers' rows and dead letters.

`tfcvr predict`, `tfcvr evaluate --input` and `tfcvr export --check
--input` read a csv, parquet or jsonl log with the Beam job's own readers
(`beam_jobs.readers`, `read_local()`), so a row is good or a dead letter for
the same reason everywhere. The input spec comes from `--spec`, else the one
recorded beside the model (`spec.json` in the model directory, `input_spec`
in a SavedModel's `tfcvr_export.json`), else `spec.json` beside the log; it
must describe the model's features (`InputSpec.check_matches`).
"""

import dataclasses
import os

from beam_jobs.readers import GENERIC_FORMATS
from beam_jobs.readers import get_reader_class
from beam_jobs.readers.generic_reader import load_spec
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.row_converter import KEY_FIELD
from tfcvr.features.input_spec import SPEC_FILE
from tfcvr.features.input_spec import InputSpec

LOG_FORMATS = GENERIC_FORMATS


def find_input_spec(spec=None, recorded=None, recorded_from=None, log=None):
    """The input spec of a log and where it came from.

    Args:
        spec: str, dict, `InputSpec` or None. Given by the user (`--spec`).
        recorded: dict, `InputSpec` or None. The spec recorded with the
            model.
        recorded_from: str. Where `recorded` was found (for messages).
        log: str or None. The log's path or glob; `spec.json` beside its
            first file is the last resort.

    Returns:
        `(InputSpec, source description)`.
    """
    if spec is not None:
        return load_spec(spec), str(spec) if isinstance(spec, str) else "--spec"
    if recorded is not None:
        return load_spec(recorded), recorded_from or "the model"
    if log is not None:
        first = match_files(log)[0]
        candidates = [os.path.join(os.path.dirname(first), SPEC_FILE)]
        if os.path.isdir(log):
            candidates.insert(0, os.path.join(log, SPEC_FILE))
        for path in candidates:
            if os.path.exists(path):
                return InputSpec.load(path), path
    raise ValueError(
        f"No input spec: pass --spec spec.json (the model directory records "
        f"none; directories from `tfcvr preprocess` and `tfcvr train` keep "
        f"theirs as {SPEC_FILE})."
    )


def recorded_spec(model_dir):
    """The dict of `model_dir/spec.json`, or None."""
    path = os.path.join(model_dir, SPEC_FILE)
    if not os.path.exists(path):
        return None
    return InputSpec.load(path).to_dict()


def open_log(path, fmt, spec, features_only=True, id_column=None,
             delimiter=","):
    """A Beam reader of a csv, parquet or jsonl log, for `read_local()`.

    Args:
        path: str. File, directory, glob or comma-separated list.
        fmt: str. One of `LOG_FORMATS`.
        spec: `InputSpec`.
        features_only: bool. Read only features and the row key (scoring);
            False also reads and checks labels and extra columns.
        id_column: str or None. A column passed through as each row's id
            (the spec's `row_key`, replaced when given).
        delimiter: str. CSV field delimiter.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(
            f"--format must be one of {', '.join(LOG_FORMATS)}. Received: "
            f"{fmt!r}"
        )
    if id_column is not None:
        spec = dataclasses.replace(spec, row_key=id_column)
    options = {"delimiter": delimiter} if fmt == "csv" else {}
    return get_reader_class(fmt)(
        path, spec=spec, features_only=features_only, **options
    )


def iter_log_batches(reader, batch_size, counts=None):
    """`(rows, rejected)` lists of at most `batch_size` good rows each, in
    input order (`rejected` holds the dead letters met since the last
    batch); ends with the leftover, possibly empty, lists.

    Args:
        reader: a reader from `open_log`.
        batch_size: int.
        counts: `tfcvr.export.log_counts.LogCounts` or None. Updated as
            records are read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
    rows, rejected = [], []
    for row, dead in reader.read_local():
        if counts is not None:
            counts.add(row, dead)
        if row is None:
            rejected.append(dead)
            continue
        rows.append(row)
        if len(rows) == batch_size:
            yield rows, rejected
            rows, rejected = [], []
    if rows or rejected:
        yield rows, rejected


def row_id(row):
    """The id a reader passed through (`--id-column`, the spec's row key)."""
    return row.get(KEY_FIELD)
