import numpy as np


def as_rows(p, y):
    """Two `(N,)` float64 arrays, checked to match and to be non-empty."""
    p = np.asarray(p, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if len(p) != len(y) or len(p) == 0:
        raise ValueError(
            "calibration needs one label per prediction and at least one row. "
            f"Received: {len(p)} predictions, {len(y)} labels"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("calibration received a non-finite prediction.")
    return p, y


class IsotonicCalibrator:
    """Isotonic regression of a probability: the non-decreasing `q(p)`
    closest to the labels in squared error.

    Fitted by pool-adjacent-violators on the sorted predictions; between
    the fitted points `q` is interpolated linearly and held constant
    outside them. Unlike Platt scaling it fixes any monotone distortion,
    but it needs more eval rows (each pooled block is one estimate)
    (Zadrozny & Elkan, KDD 2002). `floor` keeps `q > 0`, since a block of
    non-clicks maps to 0 and an inverse propensity must stay finite (the
    estimator's `propensity_floor` clips again).

    Args:
        floor: float in (0, 1). Lower clip of `q`. Defaults to 1e-4.

    `fit(p, y)` on `(N,)` arrays returns self; `__call__(p)` maps NumPy
    arrays, `tf_apply(p)` TensorFlow tensors, the same way.
    """

    name = "isotonic"

    def __init__(self, floor=1e-4):
        if not 0.0 < floor < 1.0:
            raise ValueError(f"floor must be in (0, 1). Received: floor={floor!r}")
        self.floor = floor
        self.x = np.array([0.0, 1.0])
        self.y = np.array([floor, 1.0])

    def fit(self, p, y):
        p, y = as_rows(p, y)
        order = np.argsort(p, kind="stable")
        p, y = p[order], y[order]
        # Ties share one value: pool them before PAV.
        xs, start = np.unique(p, return_index=True)
        sums = np.add.reduceat(y, start)
        counts = np.diff(np.append(start, len(p))).astype(np.float64)
        values, weights, lo, hi = [], [], [], []
        for i in range(len(xs)):
            values.append(sums[i] / counts[i])
            weights.append(counts[i])
            lo.append(xs[i])
            hi.append(xs[i])
            while len(values) > 1 and values[-2] > values[-1]:
                w = weights[-2] + weights[-1]
                v = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
                h = hi[-1]
                del values[-1], weights[-1], lo[-1], hi[-1]
                values[-1], weights[-1], hi[-1] = v, w, h
        # Each block is flat from its lowest to its highest prediction.
        knots_x, knots_y = [], []
        for v, a, b in zip(values, lo, hi):
            knots_x.append(a)
            knots_y.append(v)
            if b > a:
                knots_x.append(b)
                knots_y.append(v)
        self.x = np.asarray(knots_x)
        self.y = np.maximum(np.asarray(knots_y), self.floor)
        return self

    def __call__(self, p):
        return np.interp(np.asarray(p, np.float64), self.x, self.y)

    def tf_apply(self, p):
        import tensorflow as tf

        p = tf.cast(p, tf.float64)
        x = tf.constant(self.x, tf.float64)
        y = tf.constant(self.y, tf.float64)
        if len(self.x) == 1:
            return tf.cast(tf.fill(tf.shape(p), self.y[0]), tf.float32)
        p = tf.clip_by_value(p, self.x[0], self.x[-1])
        i = tf.clip_by_value(tf.searchsorted(x, p, side="right"), 1, len(self.x) - 1)
        x0, x1 = tf.gather(x, i - 1), tf.gather(x, i)
        y0, y1 = tf.gather(y, i - 1), tf.gather(y, i)
        t = tf.where(x1 > x0, (p - x0) / tf.where(x1 > x0, x1 - x0, 1.0), 0.0)
        return tf.cast(y0 + t * (y1 - y0), tf.float32)

    def record(self):
        return {"calibration": self.name, "knots": int(len(self.x))}
