from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.doubly_robust_estimator import DoublyRobustEstimator
from tfcvr.models.registry import register_estimator


@register_estimator(
    "multi_dr",
    paper="Zhang et al., Large-scale Causal Approaches to Debiasing "
    "Post-click Conversion Rate Estimation with Multi-task Learning, WWW 2020",
)
class MultiDR(DoublyRobustEstimator):
    """Multi-task doubly robust estimator (Multi-DR).

    Three towers on one embedding: CTR (the propensity `ô`), CVR (`r̂`) and
    an imputation tower whose output `ê` predicts the CVR error
    `e = e(r, r̂)`. Trained jointly (paper §3.3, Fig. 4) on
    `L = w_ctr * mean_D e(o, ô)
       + w_cvr * (1/|D|) sum_D [ê + o * (e - ê) / p̂]
       + w_imp * (1/|D|) sum_D o * (ê - e)^2 / p̂`,
    `p̂ = clip(sg(ô), propensity_floor, 1)`. The DR term is unbiased for the
    entire-space risk when either `ô` or `ê` is right (paper Thm 3.2). `ê`
    enters the DR term and `e` the imputation term through `stop_gradient`
    (DR-JL practice; the paper does not say), so each term trains its own
    tower. Outputs add `imputation` (`ê`, a sigmoid, as in ESCM2's code).

    Reference: Zhang et al., "Large-scale Causal Approaches to Debiasing
    Post-click Conversion Rate Estimation with Multi-task Learning", WWW
    2020.

    Args:
        ctr_weight: float. `w_ctr`. Defaults to 1.0.
        cvr_weight: float. `w_cvr`, weight of the DR term. Defaults to 1.0.
        propensity_floor: float. Lower clip of `ô`; the paper states none.
            Defaults to 0.01.
        alternating: bool. DR-JL's alternating updates instead of the
            paper's joint training. Defaults to False.
        **kwargs: `DoublyRobustEstimator` arguments, with `w_imp` its
            `imputation_weight`, and `CVRModel` arguments (schema,
            embedding_dim, backbone, ...).
    """

    def __init__(self, schema, ctr_weight=1.0, cvr_weight=1.0, **kwargs):
        super().__init__(schema, **kwargs)
        check_weights(ctr_weight=ctr_weight, cvr_weight=cvr_weight)
        # === Config ===
        self.ctr_weight = ctr_weight
        self.cvr_weight = cvr_weight

    def loss_terms(self, labels, outputs):
        click, ctr = labels[keys.CLICK], outputs[keys.CTR]
        dr, imputation = self.dr_risks(labels, outputs)
        return {
            keys.CTR: self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "dr": self.cvr_weight * dr,
            IMPUTATION_TERM: self.imputation_weight * imputation,
        }
