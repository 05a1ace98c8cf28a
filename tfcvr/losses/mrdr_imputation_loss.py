from tfcvr.losses.imputation_loss import ImputationLoss
from tfcvr.serialization import register_serializable


@register_serializable
class MRDRImputationLoss(ImputationLoss):
    """The "more robust" imputation loss of MRDR (Guo et al., SIGIR 2021).

    `L = (1/N) sum_i o_i * (1 - p̂_i) / p̂_i^2 * l_i`, with `l_i` the
    imputation error of `ImputationLoss` (`(ê_i - e_i)^2`, or
    `e(r_i, r̃_i)` for the double-learning pseudo label). Weighting by
    `(1 - p̂)/p̂^2` instead of `1/p̂` minimises the variance of the DR
    estimate rather than the imputation error. Arguments, call and output
    as in `ImputationLoss`; with `"snips"` `N = sum_i o_i (1 - p̂_i)/p̂_i^2`.
    """

    def propensity_weight(self, propensity):
        return (1.0 - propensity) / (propensity * propensity)
