import numpy as np

from tfcvr.training.isotonic_calibrator import as_rows


class PlattCalibrator:
    """Platt scaling of a probability: `q = sigmoid(a * logit(p) + b)`.

    `a, b` maximise the Bernoulli likelihood of the labels (Newton's
    method); a model whose pCTR is well ranked but mis-scaled (e.g. a CTR
    model trained on another click rate) gets its scale and offset back
    with two parameters, which a small eval split can afford (Platt,
    "Probabilistic Outputs for Support Vector Machines", 1999).

    Args:
        epsilon: float. Clip of `p` before the logit. Defaults to 1e-6.

    `fit(p, y)` on `(N,)` arrays returns self; `__call__(p)` maps NumPy
    arrays, `tf_apply(p)` TensorFlow tensors, the same way.
    """

    name = "platt"

    def __init__(self, epsilon=1e-6):
        self.epsilon = epsilon
        self.a = 1.0
        self.b = 0.0

    def _logit(self, p, ops=np):
        p = ops.clip(p, self.epsilon, 1.0 - self.epsilon)
        return ops.log(p) - ops.log(1.0 - p)

    def fit(self, p, y, iterations=100):
        p, y = as_rows(p, y)
        x = self._logit(p)
        a, b = 1.0, 0.0
        for _ in range(iterations):
            q = 1.0 / (1.0 + np.exp(-(a * x + b)))
            w = q * (1.0 - q) + 1e-12
            grad = np.array([np.sum((q - y) * x), np.sum(q - y)])
            hess = np.array([[np.sum(w * x * x), np.sum(w * x)],
                             [np.sum(w * x), np.sum(w)]])
            step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
            a, b = a - step[0], b - step[1]
            if np.max(np.abs(step)) < 1e-10:
                break
        self.a, self.b = float(a), float(b)
        return self

    def __call__(self, p):
        x = self._logit(np.asarray(p, np.float64))
        return 1.0 / (1.0 + np.exp(-(self.a * x + self.b)))

    def tf_apply(self, p):
        import tensorflow as tf

        p = tf.clip_by_value(tf.cast(p, tf.float32), self.epsilon, 1.0 - self.epsilon)
        return tf.sigmoid(self.a * (tf.math.log(p) - tf.math.log(1.0 - p)) + self.b)

    def record(self):
        return {"calibration": self.name, "a": self.a, "b": self.b}
