"""Elementwise loss pieces shared by every estimator (keras.ops only)."""

import contextlib
import contextvars

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
    0/1 `mask` is set (e.g. clicked rows), 0 for a batch with none."""
    mask = flat(mask)
    return ops.sum(mask * flat(values)) / ops.maximum(ops.sum(mask), 1.0)


def binary_entropy(y_prob, epsilon=EPSILON):
    """`-[p log p + (1 - p) log(1 - p)]` per element, `p` clipped to
    `[epsilon, 1 - epsilon]`: the BCE of a prediction against itself with
    the gradient flowing through both sides (NISE's unlabeled-row term)."""
    p = ops.clip(ops.cast(y_prob, "float32"), epsilon, 1.0 - epsilon)
    return -(p * ops.log(p) + (1.0 - p) * ops.log(1.0 - p))


def batch_sum(x):
    """Sum of `x` over the batch: the one place where a loss reads a batch
    statistic (a normaliser), so that every estimator normalises alike."""
    return ops.sum(flat(x))


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
    (`"click"`), or `sum_i m_i g(p_i)` (`"snips"`, self-normalised). `cap`
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
        weight = weight / ops.cast(ops.shape(mask)[0], "float32")
    elif normalization == "click":
        weight = weight / ops.maximum(batch_sum(mask), 1.0)
    else:
        # With no observed row every weight is 0; the floor keeps 0 / 0 out.
        weight = weight / ops.maximum(batch_sum(weight), 1e-12)
    if cap is not None:
        weight = ops.minimum(weight, cap)
    return weight
