from tfcvr.losses.counterfactual_loss import CounterfactualLoss
from tfcvr.serialization import register_serializable


@register_serializable
class IPWLoss(CounterfactualLoss):
    """Inverse propensity weighted CVR loss.

    `L = (1/N) sum_i o_i * e(r_i, r̂_i) / p̂_i` with `p̂` the propensity of
    `o` (pCTR for the clicks): unbiased for the entire-space risk
    `(1/|D|) sum_D e_i` when `p̂` is the true propensity and `N = |D|`
    (Zhang et al., Multi-IPW, WWW 2020, Thm 3.1; ESCM2-IPS, SIGIR 2022).
    `"click"` (`N = |O|`) is ESCM2's official code, `"snips"`
    (`N = sum o / p̂`) the self-normalised estimator.

    Call: `loss(observed=o, target=r, prediction=r̂, propensity=p̂)`, each
    `(batch,)` or `(batch, 1)`; returns a scalar. See `CounterfactualLoss`
    for the arguments.

    Example:
        loss = tfcvr.losses.IPWLoss(propensity_floor=0.01)
        outputs = model(features)
        value = loss(observed=labels["click"], target=labels["conversion"],
                     prediction=outputs["cvr"], propensity=outputs["ctr"])
    """

    def row_terms(self, target, prediction, imputation):
        return None, self.bce(target, prediction)
