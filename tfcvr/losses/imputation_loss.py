from keras import ops

from tfcvr.losses import functional as F
from tfcvr.losses.counterfactual_loss import CounterfactualLoss
from tfcvr.serialization import register_serializable

IMPUTATION_TARGETS = ("error", "label")


def check_imputation_target(imputation_target):
    if imputation_target not in IMPUTATION_TARGETS:
        raise ValueError(
            f"imputation_target must be one of {IMPUTATION_TARGETS}. "
            f"Received: imputation_target={imputation_target!r}"
        )


@register_serializable
class ImputationLoss(CounterfactualLoss):
    """Propensity-weighted loss of the imputation model of a DR estimator.

    With `imputation_target="error"` the imputation output `ê` predicts the
    CVR error and `L = (1/N) sum_i o_i * (ê_i - e_i)^2 / p̂_i`, the DR-JL
    imputation loss (Wang et al., ICML 2019; Multi-DR, WWW 2020), with
    `e_i = e(r_i, r̂_i)` through `stop_gradient` unless told otherwise.
    With `"label"` the output `r̃` is a pseudo CVR label (MRDR's double
    learning, Guo et al., SIGIR 2021) and `L = (1/N) sum_i o_i *
    e(r_i, r̃_i) / p̂_i`. Only clicked rows count; `N` as in
    `CounterfactualLoss`.

    Call: `loss(observed=o, target=r, prediction=r̂, propensity=p̂,
    imputation=ê)` (`imputation=r̃` with the `"label"` target), each
    `(batch,)` or `(batch, 1)`; returns a scalar.

    Args:
        imputation_target: str. `"error"` or `"label"`. Defaults to
            `"error"`.
        stop_gradient_prediction: bool. With the `"error"` target, `e_i`
            enters as a fixed target, so this loss never pushes the CVR
            tower (the `"label"` target does not involve `r̂`). ESCM2-DR's
            official code has no stop-gradient (False). Defaults to True.
        **kwargs: `CounterfactualLoss` arguments.
    """

    uses_imputation = True

    def __init__(
        self,
        imputation_target="error",
        stop_gradient_prediction=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_imputation_target(imputation_target)
        self.imputation_target = imputation_target
        self.stop_gradient_prediction = bool(stop_gradient_prediction)

    def row_terms(self, target, prediction, imputation):
        if self.imputation_target == "label":
            return None, self.bce(target, imputation)
        error = self.bce(target, prediction)
        if self.stop_gradient_prediction:
            error = ops.stop_gradient(error)
        return None, ops.square(F.flat(imputation) - error)
