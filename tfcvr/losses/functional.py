"""Elementwise loss pieces shared by every estimator (keras.ops only)."""

from keras import ops

# float32-safe clip of probabilities before taking logs (estimators.md §13).
EPSILON = 1e-7


def binary_crossentropy(y_true, y_prob, epsilon=EPSILON):
    """`-[y log p + (1 - y) log(1 - p)]` per element, `p` clipped to
    `[epsilon, 1 - epsilon]`; `y_true` may be soft."""
    p = ops.clip(ops.cast(y_prob, "float32"), epsilon, 1.0 - epsilon)
    y = ops.cast(y_true, "float32")
    return -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))


def flat(x):
    """`(batch, 1)` or `(batch,)` -> `(batch,)` float32."""
    return ops.reshape(ops.cast(x, "float32"), (-1,))


def masked_mean(values, mask):
    """`sum(mask * v) / max(sum(mask), 1)`: a mean over the rows where the
    0/1 `mask` is set (e.g. clicked rows), 0 for a batch with none."""
    mask = flat(mask)
    return ops.sum(mask * flat(values)) / ops.maximum(ops.sum(mask), 1.0)


def binary_entropy(y_prob, epsilon=EPSILON):
    """`-[p log p + (1 - p) log(1 - p)]` per element, `p` clipped to
    `[epsilon, 1 - epsilon]`: the BCE of a prediction against itself with
    the gradient flowing through both sides (NISE's unlabeled-row term)."""
    p = ops.clip(ops.cast(y_prob, "float32"), epsilon, 1.0 - epsilon)
    return -(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p))
