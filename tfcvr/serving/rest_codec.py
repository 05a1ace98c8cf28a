"""JSON <-> arrays for TF Serving's REST predict API (numpy only).

Request bodies follow TF Serving: `{"signature_name": ..., "instances":
[...]}` (row format) or `{"signature_name": ..., "inputs": {...}}`
(columnar format); binary strings are `{"b64": "..."}`. Replies are
`{"predictions": [...]}` or `{"outputs": {...}}`. Every problem with a
request raises `TFServingError` with status 400 and a one-line message;
float32 values follow the numeric rule of preprocessing
(`tfcvr.features.wire.numeric_value`): NaN is missing, infinity and values
beyond float32 range are refused.
"""

import base64
import binascii
import numpy as np

from tfcvr.features import wire
from tfcvr.serving.tf_serving_error import TFServingError

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def _bad(message):
    return TFServingError(message, status=400)


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _string(value, name):
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _bad(f"Input `{name}`: invalid base64 data.") from None
    raise _bad(
        f"Input `{name}` expects strings (DT_STRING). Received: "
        f"{_show(value)}"
    )


def _integer(value, name, dtype):
    low, high = (
        (_INT64_MIN, _INT64_MAX)
        if dtype == wire.DT_INT64
        else (_INT32_MIN, _INT32_MAX)
    )
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(
            f"Input `{name}` expects integers ({dtype}). Received: "
            f"{_show(value)}"
        )
    if not low <= value <= high:
        raise _bad(f"Input `{name}`: {value} is out of range for {dtype}.")
    return value


def _float(value, name, dtype):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(
            f"Input `{name}` expects numbers ({dtype}). Received: "
            f"{_show(value)}"
        )
    if dtype == wire.DT_DOUBLE:
        # No tfcvr input is a double; only what a double cannot hold fails.
        try:
            return float(value)
        except OverflowError:
            raise _bad(
                f"Input `{name}`: {_show(value)} overflows {dtype}."
            ) from None
    # The rule preprocessing applies, so serving sees only what training
    # could have seen.
    try:
        number = wire.numeric_value(value)
    except ValueError as e:
        raise _bad(f"Input `{name}` {e}.") from None
    return wire.FLOAT_MISSING if number is None else number


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar_converter(dtype, name):
    if dtype == wire.DT_STRING:
        return lambda v: _string(v, name)
    if dtype in wire.INTEGER_DTYPES:
        return lambda v: _integer(v, name, dtype)
    if dtype in wire.FLOAT_DTYPES:
        return lambda v: _float(v, name, dtype)
    raise _bad(f"Input `{name}` has an unsupported dtype {dtype}.")


def to_array(values, dtype, rank, name):
    """A JSON batch (a list per row) -> numpy array of the input's dtype."""
    if not isinstance(values, list):
        raise _bad(f"Input `{name}` must be a list of rows. Received: {_show(values)}")
    convert = _scalar_converter(dtype, name)
    if rank <= 1:
        rows = []
        for v in values:
            if isinstance(v, list):
                raise _bad(
                    f"Input `{name}` takes one value per row; received a "
                    f"list {_show(v)}."
                )
            rows.append(convert(v))
    elif rank == 2:
        rows = []
        width = None
        for v in values:
            if not isinstance(v, list):
                raise _bad(
                    f"Input `{name}` takes a list per row; received "
                    f"{_show(v)}."
                )
            if width is None:
                width = len(v)
            elif len(v) != width:
                raise _bad(
                    f"Input `{name}`: rows have different lengths ({width} "
                    f"and {len(v)}); pad them (see tfcvr.features.wire)."
                )
            if any(isinstance(x, list) for x in v):
                raise _bad(f"Input `{name}` takes a flat list per row.")
            rows.append([convert(x) for x in v])
        if width == 0:
            raise _bad(f"Input `{name}`: lists are empty; send a padding value.")
    else:
        raise _bad(f"Input `{name}` has rank {rank}; only ranks 1 and 2 are served.")
    if dtype == wire.DT_STRING:
        # Element by element: numpy would turn bytes into fixed-width 'S'.
        if rank <= 1:
            array = np.empty(len(rows), dtype=object)
            array[:] = rows
        else:
            array = np.empty((len(rows), width), dtype=object)
            for i, row in enumerate(rows):
                array[i, :] = row
        return array
    np_dtype = {
        wire.DT_INT64: np.int64,
        wire.DT_INT32: np.int32,
        wire.DT_FLOAT: np.float32,
        wire.DT_DOUBLE: np.float64,
    }[dtype]
    array = np.array(rows, dtype=np_dtype)
    if rank == 2:
        array = array.reshape(len(rows), -1)
    return array


def decode_predict_request(body, specs, strict=False):
    """A parsed JSON predict body -> `({input: array}, row_format)`.

    Args:
        body: the decoded JSON object.
        specs: `{input name: (dtype, rank)}` of the chosen signature.
        strict: bool. Behave exactly like TF Serving: every input must be
            given and lists must be rectangular. Otherwise absent inputs and
            `null` values take the missing-value markers and lists are
            padded (`tfcvr.features.wire`).
    """
    has_instances = "instances" in body
    has_inputs = "inputs" in body
    if has_instances == has_inputs:
        raise _bad(
            "The request must have exactly one of 'instances' (row format) "
            "or 'inputs' (columnar format)."
        )
    names = list(specs)
    if has_instances:
        columns = _columns_from_instances(body["instances"], specs, strict)
    else:
        columns = _columns_from_inputs(body["inputs"], specs, strict)
    arrays = {}
    batch = None
    for name in names:
        dtype, rank = specs[name]
        arrays[name] = to_array(columns[name], dtype, rank, name)
        size = arrays[name].shape[0]
        if batch is None:
            batch = size
        elif size != batch:
            raise _bad(
                f"Inputs have different batch sizes ({batch} and {size} for "
                f"`{name}`)."
            )
    return arrays, has_instances


def _check_names(given, specs):
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise _bad(
            f"Unknown input(s) {unknown}; the signature takes {sorted(specs)}."
        )


def _check_complete(given, specs):
    missing = sorted(set(specs) - set(given))
    if missing:
        raise _bad(
            f"Missing input(s) {missing}: the signature needs every input "
            f"{sorted(specs)}."
        )


def _columns_from_instances(instances, specs, strict):
    if not isinstance(instances, list) or not instances:
        raise _bad("'instances' must be a non-empty list of rows.")
    names = list(specs)
    named = all(isinstance(r, dict) and not _is_b64(r) for r in instances)
    if not named:
        if len(names) != 1:
            raise _bad(
                f"Each instance must be an object naming the inputs "
                f"{sorted(specs)}."
            )
        return {names[0]: instances}
    for row in instances:
        _check_names(row, specs)
        if strict:
            _check_complete(row, specs)
            for name in names:
                if row[name] is None:
                    raise _bad(f"Input `{name}` is null.")
    if not strict:
        instances = wire.complete_instances(instances, specs)
    return {name: [row[name] for row in instances] for name in names}


def _columns_from_inputs(inputs, specs, strict):
    names = list(specs)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) != 1:
            raise _bad(
                f"'inputs' must be an object naming the inputs {sorted(specs)}."
            )
        inputs = {names[0]: inputs}
    _check_names(inputs, specs)
    if strict:
        _check_complete(inputs, specs)
        return inputs
    for name, value in inputs.items():
        if not isinstance(value, list):
            raise _bad(f"Input `{name}` must be a list of rows.")
    sizes = {len(v) for v in inputs.values()}
    if len(sizes) > 1:
        raise _bad(f"Inputs have different batch sizes {sorted(sizes)}.")
    batch = sizes.pop() if sizes else 0
    if batch == 0:
        raise _bad("'inputs' must give at least one row.")
    return wire.complete_columns(inputs, specs, batch)


def _json_value(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def encode_predict_response(outputs, row_format):
    """`{output: array}` -> TF Serving's JSON reply object."""
    lists = {}
    for name, value in outputs.items():
        value = np.asarray(value)
        if value.dtype == object:
            lists[name] = [_json_value(v) for v in value.reshape(-1)]
            lists[name] = np.array(lists[name], dtype=object).reshape(
                value.shape
            ).tolist()
        else:
            lists[name] = value.tolist()
    if not row_format:
        if len(lists) == 1:
            return {"outputs": next(iter(lists.values()))}
        return {"outputs": lists}
    names = list(lists)
    batch = len(lists[names[0]]) if names else 0
    if len(names) == 1:
        return {"predictions": lists[names[0]]}
    return {
        "predictions": [
            {name: lists[name][i] for name in names} for i in range(batch)
        ]
    }
