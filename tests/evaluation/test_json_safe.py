import json

import numpy as np

from tfcvr.evaluation import json_safe


def test_non_finite_become_null_and_numpy_becomes_python():
    value = {
        "a": float("nan"),
        "b": np.float32(0.5),
        "c": [np.int64(3), float("inf")],
        "d": np.array([1.0, np.nan]),
        "e": {"f": True, "g": "x"},
    }
    safe = json_safe(value)
    assert safe == {
        "a": None,
        "b": 0.5,
        "c": [3, None],
        "d": [1.0, None],
        "e": {"f": True, "g": "x"},
    }
    json.dumps(safe, allow_nan=False)
