import datetime
import functools
import math

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import content_key
from tfcvr.features import keys
from tfcvr.features.wire import numeric_value

KEY_FIELD = "__key__"
SPLIT_FIELD = "__split__"
TIMESTAMP_FIELD = "__timestamp__"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _text(value, column):
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise dl.DeadLetter(
                dl.NON_UTF8, f"column {column!r} is not UTF-8 at byte {e.start}"
            ) from None
    return value.strip()


def _is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def to_int(value, column, reason=dl.BAD_CATEGORICAL):
    """An int64 from an int, integral float or decimal string; None if
    missing (None, empty, NaN)."""
    if type(value) is str:
        try:
            result = int(value)
        except ValueError:
            pass
        else:
            if _INT64_MIN <= result <= _INT64_MAX:
                return result
    if value is None or _is_nan(value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise dl.DeadLetter(
                reason, f"column {column!r} needs an integer; got {value!r}"
            )
        result = int(value)
    elif isinstance(value, (str, bytes, bytearray)):
        text = _text(value, column)
        if not text:
            return None
        try:
            result = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is not None and math.isnan(number):
                return None
            if number is None or not number.is_integer():
                raise dl.DeadLetter(
                    reason,
                    f"column {column!r} needs an integer; got {text[:80]!r}",
                ) from None
            result = int(number)
    else:
        raise dl.DeadLetter(
            reason,
            f"column {column!r} needs an integer; got "
            f"{type(value).__name__}",
        )
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise dl.DeadLetter(
            reason, f"column {column!r} value {result} overflows int64"
        )
    return result


def to_float(value, column, reason=dl.BAD_NUMERIC):
    """A finite float32-range float; None if missing (None, empty, NaN).

    The range rule is `tfcvr.features.wire.numeric_value`, which serving
    applies to requests too.
    """
    if type(value) is str:
        try:
            result = float(value)
        except ValueError:
            pass
        else:
            return _numeric(result, column, reason)
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        return _numeric(value, column, reason)
    if isinstance(value, (str, bytes, bytearray)):
        text = _text(value, column)
        if not text:
            return None
        try:
            result = float(text)
        except ValueError:
            raise dl.DeadLetter(
                reason, f"column {column!r} needs a number; got {text[:80]!r}"
            ) from None
        return _numeric(result, column, reason)
    raise dl.DeadLetter(
        reason,
        f"column {column!r} needs a number; got {type(value).__name__}",
    )


def _numeric(number, column, reason):
    try:
        return numeric_value(number)
    except ValueError as e:
        raise dl.DeadLetter(reason, f"column {column!r} {e}") from None


def check_length(text, column, max_bytes):
    """Raises a `value_too_long` DeadLetter when `text` takes more than
    `max_bytes` bytes in UTF-8 (None: no cap)."""
    # A character takes at most 4 bytes: shorter texts need no encoding.
    if max_bytes is None or len(text) * 4 <= max_bytes:
        return
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise dl.DeadLetter(
            dl.VALUE_TOO_LONG,
            f"column {column!r} value is {size:,} bytes, more than "
            f"max_value_bytes={max_bytes:,}",
        )


def to_string(value, column, max_bytes=None):
    """A non-empty str of at most `max_bytes` UTF-8 bytes (None: no cap);
    None if missing."""
    if type(value) is str and "\n" not in value and "\r" not in value:
        text = value.strip()
        check_length(text, column, max_bytes)
        return text or None
    if value is None or _is_nan(value):
        return None
    if isinstance(value, (str, bytes, bytearray)):
        text = _text(value, column)
        # Vocabulary files hold one token per line.
        if "\n" in text or "\r" in text:
            raise dl.DeadLetter(
                dl.BAD_CATEGORICAL,
                f"column {column!r} value contains a line break",
            )
        check_length(text, column, max_bytes)
        return text or None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise dl.DeadLetter(
        dl.BAD_CATEGORICAL,
        f"column {column!r} needs a single value; got {type(value).__name__}",
    )


_LABEL_TEXT = {"0": 0, "1": 1}


def to_label(value, column):
    """0 or 1 from 0/1, False/True, 0.0/1.0 or their decimal text."""
    label = _LABEL_TEXT.get(value) if type(value) is str else None
    if label is not None:
        return label
    if value is None or _is_nan(value) or (
        isinstance(value, (str, bytes, bytearray)) and not _text(value, column)
    ):
        raise dl.DeadLetter(dl.MISSING_LABEL, f"label column {column!r} is empty")
    number = None
    if isinstance(value, (bool, int, float)):
        number = float(value)
    elif isinstance(value, (str, bytes, bytearray)):
        try:
            number = float(_text(value, column))
        except ValueError:
            number = None
    if number == 0.0 or number == 1.0:
        return int(number)
    shown = value if not isinstance(value, str) else value[:80]
    raise dl.DeadLetter(
        dl.BAD_LABEL, f"label column {column!r} must be 0 or 1; got {shown!r}"
    )


def to_timestamp(value, column):
    """Seconds since the epoch from a number, an ISO-8601 string or a
    datetime (naive times are UTC)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, datetime.date):
        return datetime.datetime(
            value.year, value.month, value.day, tzinfo=datetime.timezone.utc
        ).timestamp()
    try:
        number = to_float(value, column, reason=dl.BAD_TIMESTAMP)
    except dl.DeadLetter:
        if not isinstance(value, (str, bytes, bytearray)):
            raise
        text = _text(value, column)
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise dl.DeadLetter(
                dl.BAD_TIMESTAMP,
                f"column {column!r} needs epoch seconds or an ISO-8601 time; "
                f"got {text[:80]!r}",
            ) from None
        return to_timestamp(parsed, column)
    if number is None:
        raise dl.DeadLetter(
            dl.MISSING_TIMESTAMP, f"timestamp column {column!r} is empty"
        )
    return number


def to_row_key(value, column):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = to_string(value, column)
    if key is None:
        raise dl.DeadLetter(dl.MISSING_ROW_KEY, f"row key column {column!r} is empty")
    return key


class RowConverter:
    """Turns a raw record into a row of the reader contract.

    A record maps source column names to raw values: strings (CSV), JSON
    values (JSONL) or Arrow values (Parquet). The row uses schema names and
    python types: categorical_int -> int, categorical_string -> str,
    multi_categorical -> list (plus `<name>__weight` floats if weighted),
    numeric -> float or None, labels -> 0/1, extra columns -> float or None,
    `__key__` -> str and `__timestamp__` -> float when the spec has a
    timestamp. Missing feature values are allowed (stored as 0 values);
    a missing label, row key or timestamp is a dead letter, and so is a
    string value (or token) longer than the spec's `max_value_bytes`
    (`value_too_long`).

    A multi-valued string is split by the column's `separator` (the whole
    string is one token when it has none); a weighted column's tokens are
    `value:weight` (or `[value, weight]` pairs in JSON).

    With `features_only` (scoring a log: `tfcvr predict`) only the feature
    columns and the row key are read: labels, extra columns and the
    timestamp are neither needed nor checked.

    Args:
        spec: `tfcvr.features.input_spec.InputSpec`.
        drop_click0_conversion1: bool. Reject rows with a conversion but no
            click (reason `click0_conversion1`): the entire-space model
            reads conversion as click-and-convert.
        features_only: bool. Read only features and the row key.
    """

    def __init__(self, spec, drop_click0_conversion1=True, features_only=False):
        self.spec = spec
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.features_only = bool(features_only)
        self._labels = [] if features_only else list(spec.labels.items())
        # (row name, fn(value, column), weighted): one call per column.
        self._steps = [
            (name, self._column_fn(name, settings), bool(settings.get("weighted")))
            for name, settings in spec.columns.items()
        ]
        if not features_only:
            self._steps += [(name, to_float, False) for name in spec.extra_columns]

    def _column_fn(self, name, settings):
        kind = settings["kind"]
        if kind == keys.CATEGORICAL_INT:
            return to_int
        if kind == keys.CATEGORICAL_STRING:
            return functools.partial(
                to_string, max_bytes=self.spec.max_value_bytes
            )
        if kind == keys.NUMERIC:
            return to_float
        return _MultiValued(
            separator=settings.get("separator"),
            max_len=settings["max_len"],
            weighted=bool(settings.get("weighted", False)),
            int_tokens=self.spec.value_dtype(name) == "int64",
            max_bytes=self.spec.max_value_bytes,
        )

    def convert(self, record, raw_for_key=None):
        """The row of one record; raises `DeadLetter`.

        Args:
            record: dict. Source column -> raw value (absent means missing).
            raw_for_key: str or bytes. Content hashed into `__key__` when the
                spec has no `row_key`.
        """
        spec = self.spec
        row = {}
        get = record.get
        for label, source in self._labels:
            row[label] = to_label(get(source), source)
        if (
            self.drop_click0_conversion1
            and not self.features_only
            and row[keys.CLICK] == 0
            and row[keys.CONVERSION] == 1
        ):
            raise dl.DeadLetter(
                dl.CLICK0_CONVERSION1,
                "conversion=1 without a click (click=0)",
            )
        for name, fn, weighted in self._steps:
            if weighted:
                row[name], row[name + keys.WEIGHT_SUFFIX] = fn(get(name), name)
            else:
                row[name] = fn(get(name), name)
        if spec.timestamp is not None and not self.features_only:
            row[TIMESTAMP_FIELD] = to_timestamp(
                get(spec.timestamp), spec.timestamp
            )
        if spec.row_key is not None:
            row[KEY_FIELD] = to_row_key(get(spec.row_key), spec.row_key)
        else:
            row[KEY_FIELD] = content_key(
                raw_for_key if raw_for_key is not None else repr(record)
            )
        return row


class _MultiValued:
    """Parses one multi-valued column (a picklable callable)."""

    def __init__(self, separator, max_len, weighted, int_tokens, max_bytes=None):
        self.separator = separator
        self.max_len = max_len
        self.weighted = weighted
        self.int_tokens = int_tokens
        self.max_bytes = max_bytes

    def _token(self, token, column):
        if self.int_tokens:
            return to_int(token, column)
        return to_string(token, column, self.max_bytes)

    def _split_weight(self, item, column):
        if isinstance(item, (list, tuple)) and len(item) == 2:
            token, weight = item
        elif isinstance(item, (str, bytes, bytearray)):
            token, colon, weight = _text(item, column).rpartition(":")
            if not colon:
                raise dl.DeadLetter(
                    dl.BAD_WEIGHT,
                    f"weighted column {column!r} needs value:weight "
                    f"tokens; got {item[:80]!r}",
                )
        else:
            raise dl.DeadLetter(
                dl.BAD_WEIGHT,
                f"weighted column {column!r} needs value:weight tokens; "
                f"got {type(item).__name__}",
            )
        weight = to_float(weight, column, reason=dl.BAD_WEIGHT)
        if weight is None:
            raise dl.DeadLetter(
                dl.BAD_WEIGHT, f"weighted column {column!r} has an empty weight"
            )
        return token, weight

    def __call__(self, value, column):
        if (
            type(value) is str
            and self.int_tokens
            and not self.weighted
            and self.separator is not None
        ):
            # Fast path of the common "12|7|9" id list.
            try:
                tokens = [int(t) for t in value.split(self.separator) if t]
            except ValueError:
                pass
            else:
                if all(_INT64_MIN <= t <= _INT64_MAX for t in tokens):
                    return tokens[: self.max_len]
        if value is None or _is_nan(value):
            items = []
        elif isinstance(value, (str, bytes, bytearray)):
            text = _text(value, column)
            if not text:
                items = []
            elif self.separator is None:
                items = [text]
            else:
                items = text.split(self.separator)
        elif isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            items = [value]
        else:
            raise dl.DeadLetter(
                dl.BAD_CATEGORICAL,
                f"column {column!r} needs a list or a separated string; "
                f"got {type(value).__name__}",
            )
        tokens, weights = [], []
        for item in items:
            if len(tokens) >= self.max_len:
                break
            if self.weighted:
                item, weight = self._split_weight(item, column)
            token = self._token(item, column)
            if token is None:
                continue
            tokens.append(token)
            if self.weighted:
                weights.append(weight)
        return (tokens, weights) if self.weighted else tokens
