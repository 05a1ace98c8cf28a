"""Input checks shared by the metric functions (private)."""

import numpy as np


def to_numpy(value):
    """Converts a numpy, TensorFlow, JAX or PyTorch (CPU) array to numpy."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        # e.g. a PyTorch tensor on a GPU, which has no `__array__` copy path.
        import keras

        return np.asarray(keras.ops.convert_to_numpy(value))


def as_vector(name, value, length=None):
    """Returns `value` as a 1-D numpy array; accepts shape (B,) or (B, 1)."""
    array = to_numpy(value)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must have shape (batch,) or (batch, 1). Received: "
            f"shape={array.shape}"
        )
    if length is not None and len(array) != length:
        raise ValueError(
            f"`{name}` must have {length} rows like the other inputs. "
            f"Received: {len(array)} rows"
        )
    return array


def binary(name, value, length=None):
    """Returns `value` as a bool vector; every entry must be 0 or 1."""
    array = as_vector(name, value, length)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"`{name}` must be numeric 0/1 labels. Received: "
            f"dtype={array.dtype}"
        )
    bad = ~((array == 0) | (array == 1))
    if bad.any() and array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(
            f"`{name}` must contain only 0 and 1. Received: "
            f"{int(np.isnan(array).sum())} NaN (missing) values"
        )
    if bad.any():
        raise ValueError(
            f"`{name}` must contain only 0 and 1. Received: {int(bad.sum())} "
            f"other values, e.g. {array[bad][:3].tolist()}"
        )
    return array == 1


def probabilities(name, value, length=None, dtype=np.float64):
    """Returns `value` as a float vector; every entry must lie in [0, 1]."""
    array = as_vector(name, value, length)
    if array.dtype.kind not in "iufb":
        raise ValueError(
            f"`{name}` must be numeric probabilities. Received: "
            f"dtype={array.dtype}"
        )
    array = array.astype(dtype, copy=False)
    missing = np.isnan(array)
    if missing.any():
        raise ValueError(
            f"`{name}` must lie in [0, 1]. Received: {int(missing.sum())} "
            "NaN (missing) values"
        )
    bad = ~((array >= 0) & (array <= 1))
    if bad.any():
        raise ValueError(
            f"`{name}` must lie in [0, 1] (probabilities, not logits). "
            f"Received: {int(bad.sum())} values outside, e.g. "
            f"{array[bad][:3].tolist()}"
        )
    return array


def scores(name, value, length=None, dtype=np.float64):
    """Returns `value` as a finite numeric vector (any real ranking score).

    `dtype=None` keeps the input's numeric dtype.
    """
    array = as_vector(name, value, length)
    if array.dtype.kind not in "iufb":
        raise ValueError(
            f"`{name}` must be numeric scores. Received: dtype={array.dtype}"
        )
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    elif array.dtype == bool:
        array = array.astype(np.int8)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"`{name}` must be finite. Received: {int(bad.sum())} NaN or "
            f"infinite values"
        )
    return array


def mask(value, length):
    """Returns an optional row mask as a bool vector (None keeps every row)."""
    if value is None:
        return None
    array = as_vector("mask", value, length)
    if array.dtype != bool:
        return binary("mask", array, length)
    return array
