"""Strict-JSON form of metric dicts."""

import math
import numbers

import numpy as np


def json_safe(value):
    """Copy of `value` that strict JSON accepts: NaN/inf become None.

    `json.dumps` writes NaN as the bare token `NaN`, which Python reads back
    but strict parsers (jq, browsers) reject; an undefined metric becomes
    `null` instead. Numpy scalars and arrays become Python numbers and lists.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
