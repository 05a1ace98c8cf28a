"""NumPy references the estimator and loss tests compare against."""

import numpy as np


def np_bce(y, p, eps=1e-7):
    """Binary cross-entropy per row, in float64, probabilities clipped to
    `[eps, 1 - eps]` as `tfcvr.losses.functional.binary_crossentropy`."""
    p = np.clip(np.asarray(p).astype("float64"), eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
