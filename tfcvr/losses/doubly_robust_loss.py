from keras import ops

from tfcvr.losses import functional as F
from tfcvr.losses.counterfactual_loss import CounterfactualLoss
from tfcvr.losses.imputation_loss import check_imputation_target
from tfcvr.serialization import register_serializable


@register_serializable
class DoublyRobustLoss(CounterfactualLoss):
    """Doubly robust CVR loss.

    `L = (1/B) sum_i ê_i + (1/N) sum_i o_i * (e_i - ê_i) / p̂_i`, with
    `e_i = e(r_i, r̂_i)` and `ê_i` the imputed error: unbiased for the
    entire-space risk `(1/|D|) sum_D e_i` when either the propensity or the
    imputation is right (DR-JL, Wang et al., ICML 2019; Multi-DR, Zhang et
    al., WWW 2020, Thm 3.2; ESCM2-DR, SIGIR 2022). `N = B` (`"exposure"`)
    or `sum_i o_i / p̂_i` (`"snips"`).

    `ê` comes from the imputation model's output: the imputed error itself
    (`imputation_target="error"`), or `e(r̃_i, r̂_i)` for a pseudo label `r̃`
    (`"label"`, MRDR's double learning, where the prediction model also
    learns from `r̃` on unclicked rows).

    Call: `loss(observed=o, target=r, prediction=r̂, propensity=p̂,
    imputation=ê)` (`imputation=r̃` with the `"label"` target), each
    `(batch,)` or `(batch, 1)`; returns a scalar.

    Args:
        imputation_target: str. `"error"` or `"label"`. Defaults to
            `"error"`.
        stop_gradient_imputation: bool. The imputation output enters through
            `stop_gradient`, so this loss never trains the imputation model
            (DR-JL's joint learning). ESCM2-DR's official code has none
            (False). Defaults to True.
        **kwargs: `CounterfactualLoss` arguments; `normalization` is
            `"exposure"` or `"snips"`.
    """

    normalizations = ("exposure", "snips")
    uses_imputation = True

    def __init__(
        self,
        imputation_target="error",
        stop_gradient_imputation=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_imputation_target(imputation_target)
        self.imputation_target = imputation_target
        self.stop_gradient_imputation = bool(stop_gradient_imputation)

    def imputed_error(self, prediction, imputation):
        imputation = F.flat(imputation)
        if self.stop_gradient_imputation:
            imputation = ops.stop_gradient(imputation)
        if self.imputation_target == "error":
            return imputation
        return self.bce(imputation, prediction)

    def row_terms(self, target, prediction, imputation):
        error = self.bce(target, prediction)
        imputed = self.imputed_error(prediction, imputation)
        return imputed, error - imputed
