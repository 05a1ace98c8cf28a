"""Proposes an input spec (`spec.json`) from a sample of a log file.

The rules are heuristics meant to give a starting point to edit, applied to
the first `rows` records:
- 0/1 columns named like click / conversion / purchase -> labels;
- ground truth and row ids (true_ctr, true_cvr, conversion_if_clicked,
  row_id, true_*) -> extra_columns (row_id also becomes the row key);
- timestamp-like names (time, timestamp, ts, date, ...) with epoch numbers
  or parseable dates, and datetime columns -> timestamp;
- integer columns -> categorical_int (numeric when the name says amount,
  price, count, ...); the id-like ones named user / item become
  user_id / item_id;
- strings -> categorical_string, or multi_categorical when one of `|`, `;`,
  `,` splits them into several tokens (int64 tokens when all are integers);
- floats -> numeric, with `log` for a heavy right skew (non-negative values
  with skewness > 2); integral floats named like ids -> categorical_int.
"""

import math
import os
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tfcvr.features import keys
from tfcvr.features.input_spec import InputSpec

FORMAT_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}
SEPARATORS = ("|", ";", ",")
_LABEL_PATTERNS = {
    keys.CLICK: re.compile(r"^(is_)?(click|clicked|clicks|clk)(_label)?$"),
    keys.CONVERSION: re.compile(
        r"^(is_)?(conversion|converted|conv|purchase|purchased|buy|bought|"
        r"order|ordered|pay|paid)(_label)?$"
    ),
}
_EXTRA = set(keys.GROUND_TRUTH_KEYS) | {keys.ROW_ID}
_TIME = re.compile(r"(^|_)(time|timestamp|ts|date|datetime|event_time|day)($|_)")
_USER = re.compile(r"^(user|uid|userid|user_id|user_idx|customer_id|member_id)$")
_ITEM = re.compile(
    r"^(item|iid|itemid|item_id|item_idx|product_id|goods_id|ad_id|adgroup_id)$"
)
_ID = re.compile(r"(^|_)(id|idx|uid|iid)$|_id(_|$)")
_NUMERIC_NAME = re.compile(
    r"(price|amount|count|cnt|num|qty|quantity|duration|score|rate|ratio|"
    r"value|sum|avg|mean|total|age_days|length|len)"
)
# Epoch seconds between 2000-01-01 and 2100-01-01 (or the same in ms).
_EPOCH_RANGES = ((946684800, 4102444800), (946684800000, 4102444800000))


def _format_of(path, fmt):
    if fmt is not None:
        return fmt
    name = path[:-3] if path.endswith(".gz") else path
    ext = os.path.splitext(name)[1].lower()
    if ext not in FORMAT_BY_EXTENSION:
        raise ValueError(
            f"Cannot tell the format of {path}; pass --format csv|parquet|jsonl."
        )
    return FORMAT_BY_EXTENSION[ext]


def read_sample(path, fmt=None, rows=10000, delimiter=None):
    """The first `rows` records of a csv/parquet/jsonl file as a DataFrame."""
    if not os.path.exists(path):
        raise ValueError(f"No input file at {path}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1. Received: rows={rows}")
    fmt = _format_of(path, fmt)
    try:
        if fmt == "csv":
            if delimiter is None:
                delimiter = "\t" if ".tsv" in path else ","
            return pd.read_csv(path, nrows=rows, sep=delimiter)
        if fmt == "parquet":
            batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows), None)
            if batch is None:
                return pd.DataFrame()
            return batch.to_pandas()
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, nrows=rows)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ValueError(
            f"Cannot read {path} as {fmt}: {' '.join(str(e).split())[:200]}"
        ) from None
    raise ValueError(
        f"schema infer reads csv, parquet or jsonl. Received: format={fmt!r}"
    )


def _is_binary(values):
    return len(values) > 0 and set(np.unique(values)) <= {0, 1}


def _integral(series):
    values = series.dropna()
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int)
    if pd.api.types.is_integer_dtype(values):
        return values
    if pd.api.types.is_float_dtype(values) and len(values):
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            return values.astype(np.int64)
    return None


def _looks_like_time(name, series):
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    if not _TIME.search(name):
        return False
    values = series.dropna()
    if not len(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        low, high = float(values.min()), float(values.max())
        return any(a <= low and high <= b for a, b in _EPOCH_RANGES)
    if values.dtype == object:
        parsed = pd.to_datetime(values.astype(str), errors="coerce", format="mixed")
        return parsed.notna().mean() > 0.95
    return False


def _split_tokens(values, separator):
    return [[t.strip() for t in v.split(separator) if t.strip()] for v in values]


def _string_column(name, series):
    values = [v for v in series.dropna() if isinstance(v, str) and v.strip()]
    if not values:
        return {"kind": keys.CATEGORICAL_STRING}
    best = None
    for separator in SEPARATORS:
        share = sum(separator in v for v in values) / len(values)
        if share >= 0.2 and (best is None or share > best[1]):
            best = (separator, share)
    if best is not None:
        tokens = _split_tokens(values, best[0])
        lengths = [len(t) for t in tokens]
        if np.mean(lengths) > 1.2 or max(lengths) > 2:
            return _multi_column(tokens, separator=best[0])
    return {"kind": keys.CATEGORICAL_STRING}


def _multi_column(tokens, separator=None):
    flat = [t for ts in tokens for t in ts]
    all_int = bool(flat) and all(
        re.fullmatch(r"-?\d+", str(t)) is not None for t in flat
    )
    lengths = [len(t) for t in tokens] or [1]
    max_len = int(min(100, max(1, math.ceil(np.percentile(lengths, 95)))))
    column = {
        "kind": keys.MULTI_CATEGORICAL,
        "value_dtype": "int64" if all_int else "string",
        "max_len": max_len,
    }
    if separator is not None:
        column["separator"] = separator
    return column


def _numeric_column(values):
    column = {"kind": keys.NUMERIC}
    values = values.dropna().astype(float)
    if len(values) >= 20 and values.min() >= 0 and values.skew() > 2:
        column["log"] = True
    return column


def _pick_role(candidates, pattern, cardinality):
    matched = [c for c in candidates if pattern.match(c.lower())]
    if not matched:
        return None
    return max(matched, key=lambda c: cardinality[c])


def infer_spec(path, fmt=None, rows=10000, delimiter=None):
    """Proposes an `InputSpec` for a csv/parquet/jsonl file.

    Args:
        path: str. A local file.
        fmt: str or None. "csv", "parquet" or "jsonl"; None guesses from
            the extension.
        rows: int. Records sampled from the start of the file.
        delimiter: str or None. CSV delimiter (default "," or tab for .tsv).

    Returns:
        `(spec, notes)`: the proposed `InputSpec` and a list of one-line
        notes about choices the user should check.
    """
    frame = read_sample(path, fmt, rows, delimiter)
    if frame.empty or not len(frame.columns):
        raise ValueError(f"{path} has no records to infer a spec from.")
    notes = []
    labels, extra, columns = {}, [], {}
    timestamp = None
    cardinality = {}
    for name in frame.columns:
        if not isinstance(name, str) or not name or name.startswith("__"):
            notes.append(f"skipped column {name!r} (not a usable name)")
            continue
        series = frame[name]
        lower = name.lower()
        integral = _integral(series)
        try:
            cardinality[name] = int(series.nunique(dropna=True))
        except TypeError:  # list values are unhashable
            cardinality[name] = 0
        label = next(
            (k for k, p in _LABEL_PATTERNS.items() if p.match(lower)), None
        )
        if label is not None and label not in labels and integral is not None:
            if _is_binary(integral.to_numpy()):
                labels[label] = name
                continue
            notes.append(f"{name!r} is named like a label but is not 0/1")
        if lower in _EXTRA or lower.startswith("true_"):
            extra.append(name)
            continue
        if timestamp is None and _looks_like_time(lower, series):
            timestamp = name
            continue
        non_null = series.dropna()
        if len(non_null) and all(isinstance(v, (list, tuple, np.ndarray)) for v in non_null):
            columns[name] = _multi_column([list(v) for v in non_null])
        elif integral is not None and not pd.api.types.is_float_dtype(series):
            if _NUMERIC_NAME.search(lower) and not _ID.search(lower):
                columns[name] = _numeric_column(series)
            else:
                columns[name] = {"kind": keys.CATEGORICAL_INT}
        elif integral is not None and (
            _ID.search(lower) or _USER.match(lower) or _ITEM.match(lower)
        ):
            columns[name] = {"kind": keys.CATEGORICAL_INT}
            notes.append(f"{name!r} holds integral floats; read as an id")
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            columns[name] = _numeric_column(series)
        elif pd.api.types.is_bool_dtype(series):
            columns[name] = {"kind": keys.CATEGORICAL_INT}
        else:
            columns[name] = _string_column(name, series.astype(object))
    for label in keys.LABEL_KEYS:
        if label not in labels:
            raise ValueError(
                f"No 0/1 column named like a {label} label in {path} "
                f"(columns: {list(frame.columns)[:30]}); rename it or write "
                f"the spec's labels by hand."
            )
    if not columns:
        raise ValueError(f"{path} has no feature columns besides labels.")
    candidates = [n for n, c in columns.items() if c["kind"] != keys.NUMERIC]
    user_id = _pick_role(candidates, _USER, cardinality)
    item_id = _pick_role(candidates, _ITEM, cardinality)
    if user_id is None:
        notes.append("no user id column found (GAUC and graph layers need one)")
    row_key = next((c for c in extra if c.lower() == keys.ROW_ID), None)
    spec = InputSpec(
        columns=columns,
        labels=labels,
        user_id=user_id,
        item_id=item_id,
        extra_columns=tuple(extra),
        timestamp=timestamp,
        row_key=row_key,
    )
    return spec, notes
