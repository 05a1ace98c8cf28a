from tfcvr.features import keys
from tfcvr.losses.counterfactual_loss import CounterfactualLoss
from tfcvr.serialization import register_serializable


@register_serializable
class IPWLoss(CounterfactualLoss):
    """Inverse propensity weighted CVR loss.

    `L = (1/N) sum_i o_i * e(r_i, r̂_i) / p̂_i` with `p̂ = pCTR`: unbiased
    for the entire-space risk `(1/|D|) sum_D e_i` when `p̂` is the true click
    propensity and `N = |D|` (Zhang et al., Multi-IPW, WWW 2020, Thm 3.1;
    ESCM2-IPS, SIGIR 2022). `"click"` (`N = |O|`) is ESCM2's official code,
    `"snips"` (`N = sum o / p̂`) the self-normalised estimator.

    Inputs: `y_true` `{click, conversion}`, `y_pred` `{ctr, cvr}`, each
    `(batch,)` or `(batch, 1)`. Output: a scalar. See `CounterfactualLoss`
    for the arguments.

    Example:
        loss = tfcvr.losses.IPWLoss(propensity_floor=0.01)
        value = loss(labels, model(features))
    """

    required_outputs = (keys.CTR, keys.CVR)

    def row_terms(self, y_true, y_pred):
        return None, self.bce(y_true[keys.CONVERSION], y_pred[keys.CVR])
