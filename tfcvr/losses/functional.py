"""Elementwise loss pieces shared by every estimator (keras.ops only), and
the batch statistics every loss reads.

Under a multi-replica `tf.distribute` strategy each replica computes the
objective on its slice of the global batch and Keras sums the replicas'
gradients. A loss term is therefore computed as this replica's *share* of
the global batch's term: summed over replicas, the shares are the term on
the global batch (with one replica, the share is the term). Numerators are
sums over this replica's rows (`ops.sum`); every normaliser is a statistic
of the global batch (`batch_sum`, `batch_size`), all-reduced across the
replicas; `batch_mean` and `masked_mean` are shares of global means. A term
that does not depend on the batch (a weight penalty) is shared out by
`weight_penalty`. On the JAX backend `keras.distribution.DataParallel`
traces the loss on the global batch, so every statistic is already global.
"""

import contextlib
import contextvars

import keras
from keras import ops

# float32-safe clip of probabilities before taking logs (estimators.md §13).
EPSILON = 1e-7

# Normalisers of an inverse-propensity weighted sum (estimators.md §13).
NORMALIZATIONS = ("exposure", "click", "snips")


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
    0/1 `mask` is set (e.g. clicked rows), 0 for a batch with none. The
    count is the global batch's (this replica's share of the mean)."""
    mask = flat(mask)
    return ops.sum(mask * flat(values)) / ops.maximum(batch_sum(mask), 1.0)


def binary_entropy(y_prob, epsilon=EPSILON):
    """`-[p log p + (1 - p) log(1 - p)]` per element, `p` clipped to
    `[epsilon, 1 - epsilon]`: the BCE of a prediction against itself with
    the gradient flowing through both sides (NISE's unlabeled-row term)."""
    p = ops.clip(ops.cast(y_prob, "float32"), epsilon, 1.0 - epsilon)
    return -(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p))


def _replica_context():
    """The `tf.distribute` replica context of a multi-replica step, or None
    (one replica, the cross-replica context, or another backend)."""
    if keras.backend.backend() != "tensorflow":
        return None
    # The one TensorFlow call of the portable code: all-reducing a batch
    # statistic needs the replica context, which keras.ops does not expose.
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def num_replicas():
    """Replicas that each compute a share of the loss in this step: the
    strategy's replicas in sync inside a `tf.distribute` replica context,
    else 1."""
    context = _replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def cross_replica_sum(x):
    """Sum of `x` over the replicas of this step (`x` itself with one): the
    global batch's value of a share, e.g. of a loss term. Differentiable:
    the gradient of the sum is all-reduced too, so a normaliser that
    depends on the parameters (SNIPS without stop-gradient) gets the
    gradient it has on the global batch."""
    context = _replica_context()
    if context is None:
        return x
    return context.all_reduce("SUM", x)


def batch_sum(x):
    """Sum of `x` over the global batch (all replicas): the statistic every
    normaliser reads. Never a loss numerator; a numerator sums this
    replica's rows (`ops.sum`), and the replicas' shares add up."""
    return cross_replica_sum(ops.sum(flat(x)))


def batch_size(x):
    """Rows of the global batch, as float32; `x` is any `(batch,)` or
    `(batch, 1)` tensor of this replica's rows."""
    return cross_replica_sum(ops.cast(ops.shape(flat(x))[0], "float32"))


def batch_mean(values):
    """This replica's share of the mean of `values` over the global batch:
    `sum(v) / B`, with `B` the global batch size (the plain mean with one
    replica). Every batch mean of a loss goes through it."""
    values = flat(values)
    return ops.sum(values) / ops.maximum(batch_size(values), 1.0)


def weight_penalty(x):
    """This replica's share of a term that does not depend on the batch
    (a penalty on weights): each of the `R` replicas computes the same
    value, so each counts `1/R` of it and the summed gradients count it
    once."""
    return x / ops.cast(num_replicas(), "float32")


class GivenPropensity:
    """A click propensity handed to the losses from outside the model.

    Inside `given_click_propensity(click, q)` every `propensity_weights`
    call ignores the model's own propensity and weights each observed row
    by the probability of the click outcome it shows:
    `p_i = c_i q_i + (1 - c_i)(1 - q_i)`, i.e. `q` on the clicks and
    `1 - q` on the non-clicks. Every propensity-weighted term of tfcvr
    weights either the clicks (`m = c`, model propensity `ô`) or the
    non-clicks (`m = 1 - c`, model propensity `1 - ô`), so this one rule
    replaces `ô` in both without any estimator knowing. `uses` counts the
    calls it served (a model with none has no propensity to replace).

    Args:
        click: `(batch,)` or `(batch, 1)` 0/1 click labels `c`.
        propensity: `(batch,)` or `(batch, 1)` click probabilities `q`.
    """

    def __init__(self, click, propensity):
        self.click = flat(click)
        self.propensity = flat(propensity)
        self.uses = 0

    def of_observed(self):
        """`(batch,)`: the probability of each row's own click outcome."""
        c, q = self.click, self.propensity
        return c * q + (1.0 - c) * (1.0 - q)


_GIVEN = contextvars.ContextVar("tfcvr_given_propensity", default=None)


@contextlib.contextmanager
def given_click_propensity(click, propensity):
    """Context in which `propensity_weights` uses `propensity` (see
    `GivenPropensity`); yields the `GivenPropensity`. Entered by
    `CVRModel` around its loss terms when the labels carry
    `keys.PROPENSITY`."""
    given = GivenPropensity(click, propensity)
    token = _GIVEN.set(given)
    try:
        yield given
    finally:
        _GIVEN.reset(token)


def propensity_weights(
    observed,
    propensity,
    normalization="exposure",
    floor=1e-6,
    cap=None,
    stop_gradient=True,
    weight_fn=None,
):
    """Per-row weights of an inverse-propensity estimate over observed rows.

    `w_i = m_i * g(p_i) / N` with `m` the 0/1 mask of the rows whose value
    is observed (the clicks, or the non-clicks for an estimate over the
    unclicked space), `p = clip(sg(propensity), floor, 1)` the probability
    of being observed, `g(p) = 1/p` unless `weight_fn` says otherwise, and
    `N` the batch size (`"exposure"`, the unbiased form), the observed rows
    (`"click"`), or `sum_i m_i g(p_i)` (`"snips"`, self-normalised), each
    over the global batch (see the module docstring). `cap`
    clips each normalised weight from above (ESCM2's official code caps it
    at 15). A batch with no observed row gets all-zero weights. Inside
    `given_click_propensity` the given propensity replaces `propensity`
    (floor, cap and normalisation still apply).

    Args:
        observed: `(batch,)` or `(batch, 1)` 0/1 mask `m`.
        propensity: `(batch,)` or `(batch, 1)` probability of `m = 1`.
        normalization: str. `"exposure"`, `"click"` or `"snips"`.
        floor: float in (0, 1). Lower clip of the propensity.
        cap: float or None. Upper clip of each normalised weight.
        stop_gradient: bool. The propensity enters through `stop_gradient`.
        weight_fn: callable or None. `g`, applied to the clipped propensity.

    Returns:
        `(batch,)` float32 weights; `sum_i w_i * v_i` is the estimate.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {NORMALIZATIONS}. Received: "
            f"normalization={normalization!r}"
        )
    mask = flat(observed)
    given = _GIVEN.get()
    if given is not None:
        given.uses += 1
        p = ops.stop_gradient(given.of_observed())
    else:
        p = flat(propensity)
        if stop_gradient:
            p = ops.stop_gradient(p)
    p = ops.clip(p, floor, 1.0)
    weight = mask * (weight_fn(p) if weight_fn is not None else 1.0 / p)
    if normalization == "exposure":
        weight = weight / ops.maximum(batch_size(mask), 1.0)
    elif normalization == "click":
        weight = weight / ops.maximum(batch_sum(mask), 1.0)
    else:
        # With no observed row every weight is 0; the floor keeps 0 / 0 out.
        weight = weight / ops.maximum(batch_sum(weight), 1e-12)
    if cap is not None:
        weight = ops.minimum(weight, cap)
    return weight
