"""How raw feature values travel in a serving request (no TensorFlow here).

Shared by the exporter (the signatures), the local REST server and the
client, so all three agree on names and missing-value markers, and by the
Beam readers for the one rule on numeric values (`numeric_value`):

- a single-valued int64 categorical that is missing is `INT_MISSING`
  (-2**63, the value `tfcvr.data` parses a missing id to); a missing string
  is `""`; a missing numeric value is NaN (TF Serving's JSON accepts `NaN`);
- a multi-valued field is a padded list per row: negative ids (`-1`) and
  `""` are padding; its `<name>__weight` list is aligned with the ids and a
  NaN weight means "no weight given" (weight 1.0);
- a numeric value or weight must be finite and within float32 range
  (`numeric_value`): preprocessing sends any other to the dead letters
  (`bad_numeric`, `bad_weight`) and serving refuses it (HTTP 400), so a
  request cannot carry what training never saw.

Inputs are described as `{name: (dtype, rank)}` with TF Serving's dtype
names (`"DT_INT64"`, `"DT_STRING"`, `"DT_FLOAT"`) and rank 1 (one value per
row) or 2 (a list per row).
"""

SERVING_DEFAULT = "serving_default"
PREDICT_EXAMPLES = "predict_examples"
EXAMPLES_INPUT = "examples"

INT_MISSING = -(2**63)
INT_PADDING = -1
STRING_MISSING = ""
FLOAT_MISSING = float("nan")
# The largest finite float32: numeric values are stored and served as
# float32, where anything larger becomes infinity.
FLOAT32_MAX = 3.4028234663852886e38

DT_INT64 = "DT_INT64"
DT_INT32 = "DT_INT32"
DT_STRING = "DT_STRING"
DT_FLOAT = "DT_FLOAT"
DT_DOUBLE = "DT_DOUBLE"
INTEGER_DTYPES = (DT_INT64, DT_INT32)
FLOAT_DTYPES = (DT_FLOAT, DT_DOUBLE)


def missing_value(dtype, rank):
    """The marker of an absent value for one row of an input."""
    if dtype in INTEGER_DTYPES:
        return INT_MISSING if rank == 1 else INT_PADDING
    if dtype == DT_STRING:
        return STRING_MISSING
    if dtype in FLOAT_DTYPES:
        return FLOAT_MISSING
    raise ValueError(f"No missing-value marker for dtype {dtype}.")


def numeric_value(number):
    """The rule for one numeric value (a numeric feature or a weight).

    Shared by the Beam readers and the REST server, so preprocessing and
    serving accept the same values: NaN is a missing value, a finite number
    of at most `FLOAT32_MAX` in magnitude is kept, anything else (infinity,
    a number that overflows float32) is refused.

    Args:
        number: int or float.

    Returns:
        The value as a Python float, or None for NaN (missing).

    Raises:
        ValueError: "needs a finite float32 number; got ..." (callers put
            the column or input name in front).
    """
    try:
        result = float(number)
    except OverflowError:
        # An int beyond double range; its digits would flood the message.
        raise ValueError(
            f"needs a finite float32 number; got an integer of "
            f"{number.bit_length()} bits"
        ) from None
    if result != result:
        return None
    if -FLOAT32_MAX <= result <= FLOAT32_MAX:
        return result
    raise ValueError(f"needs a finite float32 number; got {result}")


def input_specs_from_metadata(metadata, signature_name=None):
    """`{name: (dtype, rank)}` from a TF Serving metadata JSON reply."""
    signature_name = signature_name or SERVING_DEFAULT
    try:
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
    except (KeyError, TypeError):
        raise ValueError(
            "The model metadata has no signature_def map."
        ) from None
    if signature_name not in signatures:
        raise ValueError(
            f"The model has no signature {signature_name!r}. Available: "
            f"{sorted(signatures)}"
        )
    specs = {}
    for name, info in signatures[signature_name].get("inputs", {}).items():
        shape = info.get("tensor_shape", {})
        rank = len(shape.get("dim", []))
        specs[name] = (info.get("dtype", "DT_INVALID"), rank)
    return specs


def _complete_value(value, dtype, rank, width):
    """One row of one input: None -> marker, scalars in list inputs become
    one-element lists, lists are padded to `width`."""
    marker = missing_value(dtype, rank)
    if rank != 2:
        return marker if value is None else value
    if value is None:
        value = [marker]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    value = [marker if v is None else v for v in value]
    if len(value) < width:
        value = value + [marker] * (width - len(value))
    return value


def _row_width(value):
    if isinstance(value, (list, tuple)):
        return max(len(value), 1)
    return 1


def complete_instances(instances, specs):
    """Row-format instances with absent inputs filled and lists padded.

    Args:
        instances: list of dicts `{input name: value}`.
        specs: `{name: (dtype, rank)}` of the signature.

    Returns:
        A new list of dicts naming every input of `specs`: an absent input
        or a `None` value becomes the missing-value marker, and every
        list-valued input is padded to the longest list in the batch (TF
        Serving needs rectangular tensors). Unknown keys are kept so the
        server can reject them.
    """
    widths = {
        name: max(
            [_row_width(row.get(name)) for row in instances
             if isinstance(row, dict)] or [1]
        )
        for name, (_, rank) in specs.items()
        if rank == 2
    }
    completed = []
    for row in instances:
        if not isinstance(row, dict):
            completed.append(row)
            continue
        new = dict(row)
        for name, (dtype, rank) in specs.items():
            new[name] = _complete_value(
                row.get(name), dtype, rank, widths.get(name, 1)
            )
        completed.append(new)
    return completed


def complete_columns(inputs, specs, batch_size):
    """Columnar `inputs` with absent inputs filled and lists padded.

    Args:
        inputs: dict `{input name: list of batch_size values}`.
        specs: `{name: (dtype, rank)}` of the signature.
        batch_size: int. Rows in the request.
    """
    completed = dict(inputs)
    for name, (dtype, rank) in specs.items():
        column = inputs.get(name)
        if column is None:
            column = [None] * batch_size
        if not isinstance(column, (list, tuple)):
            completed[name] = column
            continue
        width = max([_row_width(v) for v in column] or [1])
        completed[name] = [
            _complete_value(v, dtype, rank, width) for v in column
        ]
    return completed


def batch_size_of(inputs):
    """Rows of a columnar request: the length of its first list input."""
    for value in inputs.values():
        if isinstance(value, (list, tuple)):
            return len(value)
    return 1

