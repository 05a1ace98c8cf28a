"""An estimator trained with the simulator's true click probability as its
propensity: the experiment that separates a loss from its propensity."""

from keras import ops

from tfcvr.features import keys

# Loss terms that weight by 1 / propensity, by the names the estimators use.
PROPENSITY_TERMS = ("ipw", "ips")


def oracle_propensity(estimator, terms=PROPENSITY_TERMS):
    """A subclass of `estimator` whose propensity-weighted terms use `true_ctr`.

    IPW-family losses are unbiased when the propensity is the true click
    probability. Simulated data knows it (`true_ctr`), so the same estimator
    can be trained twice on the same data, as shipped (propensity = its own
    pCTR) and with the oracle propensity: the named loss terms are computed
    with `outputs["ctr"]` replaced by `labels["true_ctr"]`, every other term
    and the whole network unchanged. If the oracle version removes the
    unclicked-row bias and the shipped one does not, the loss is right and
    the learned propensity is what falls short (docs/leaderboard.md).

    For experiments on simulated data only: train on
    `DatasetDir.dataset(..., include_extra=True)` so the labels carry
    `true_ctr`. The class is not registered (a SavedModel of it serves like
    the shipped estimator, whose network it is).

    Args:
        estimator: a `CVRModel` subclass with at least one of `terms` among
            its `loss_terms` (e.g. `tfcvr.models.MultiIPW`, `ESCM2IPS`).
        terms: tuple of str. The loss terms to recompute. Defaults to
            `("ipw", "ips")`.

    Returns:
        The subclass, named `Oracle<Estimator>`.
    """
    if not isinstance(estimator, type) or not hasattr(estimator, "loss_terms"):
        raise ValueError(
            f"estimator must be a CVRModel subclass. Received: estimator={estimator!r}")
    terms = tuple(terms)
    if not terms:
        raise ValueError("terms must name at least one loss term. Received: terms=()")

    def loss_terms(self, labels, outputs):
        shipped = estimator.loss_terms(self, labels, outputs)
        wanted = [name for name in terms if name in shipped]
        if not wanted:
            raise ValueError(
                f"{estimator.__name__} has none of the propensity terms {list(terms)}; "
                f"its loss terms: {sorted(shipped)}")
        if keys.TRUE_CTR not in labels:
            raise ValueError(
                f"The oracle propensity needs `{keys.TRUE_CTR}` in the labels: train "
                f"on simulated data with `include_extra=True`. Received labels: "
                f"{sorted(labels)}")
        oracle = dict(outputs)
        oracle[keys.CTR] = ops.reshape(
            ops.cast(labels[keys.TRUE_CTR], outputs[keys.CTR].dtype),
            ops.shape(outputs[keys.CTR]))
        recomputed = estimator.loss_terms(self, labels, oracle)
        return {**shipped, **{name: recomputed[name] for name in wanted}}

    return type(f"Oracle{estimator.__name__}", (estimator,), {
        "loss_terms": loss_terms,
        "__doc__": f"{estimator.__name__} with `true_ctr` as its propensity "
                   f"in {list(terms)} (see `tfcvr.models.oracle_propensity`).",
    })
