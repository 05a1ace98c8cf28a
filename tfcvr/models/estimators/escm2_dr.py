from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.doubly_robust_estimator import DoublyRobustEstimator
from tfcvr.models.registry import register_estimator


@register_estimator(
    "escm2_dr",
    paper="Wang et al., ESCM2: Entire Space Counterfactual Multi-Task Model "
    "for Post-Click Conversion Rate Estimation, SIGIR 2022",
)
class ESCM2DR(DoublyRobustEstimator):
    """ESCM² with the doubly robust counterfactual regulariser.

    ESMM plus a DR counterfactual risk with an imputation tower `ê`:
    `L = w_ctr * L_CTR + λ_c * (L_DR + w_imp * L_IMP) + λ_g * L_CTCVR`, with
    `L_DR = mean_D [ê + o * (e - ê) / p̂]`,
    `L_IMP = mean_D o * (e - ê)^2 / p̂`, `e = e(r, r̂)`,
    `p̂ = clip(ô, propensity_floor, 1)`, `L_CTR` and `L_CTCVR` as in ESMM
    (official code `counterfact_dr`, both DR pieces under `λ_c`).

    The official PaddleRec code has no stop-gradient anywhere in the DR
    branch and trains everything jointly. The defaults keep its weights,
    floor and joint training but put `ô` (`stop_gradient_propensity`) and
    the coupling between the two models (`stop_gradient_imputation`)
    through `stop_gradient`, the zoo's rule for propensities that the
    paper's "gradient truncation" tip supports; set both False for the
    official gradients. `alternating=True` is the paper appendix's
    alternating training (imputation tower first, then the rest).

    Reference: Wang et al., "ESCM2: Entire Space Counterfactual Multi-Task
    Model for Post-Click Conversion Rate Estimation", SIGIR 2022.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        counterfactual_weight: float. `λ_c`. Defaults to 0.5.
        global_weight: float. `λ_g`, weight of the CTCVR term. Defaults to
            0.5.
        propensity_floor: float. Lower clip of `ô`. Defaults to 1e-6
            (official).
        **kwargs: the other `DoublyRobustEstimator` arguments
            (`imputation_weight`, the weight of `L_IMP` inside `λ_c`;
            normalisations; stop-gradients; `imputation_target`, official
            `"error"`, the tower predicting the error with a sigmoid;
            `alternating`, False as the official joint training;
            `imputation_steps`) and `CVRModel` arguments (schema,
            embedding_dim, backbone, ...). The official network is an MMoE
            of 8 experts with one gate and tower per task, the imputation
            task included.
    """

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        counterfactual_weight=0.5,
        global_weight=0.5,
        propensity_floor=1e-6,
        **kwargs,
    ):
        super().__init__(schema, propensity_floor=propensity_floor, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            counterfactual_weight=counterfactual_weight,
            global_weight=global_weight,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.counterfactual_weight = counterfactual_weight
        self.global_weight = global_weight

    def loss_terms(self, labels, outputs):
        click = labels[keys.CLICK]
        ctcvr_label = click * labels[keys.CONVERSION]
        dr, imputation = self.dr_risks(labels, outputs)
        return {
            keys.CTR: self.ctr_weight
            * F.batch_mean(self.bce(click, outputs[keys.CTR])),
            "dr": self.counterfactual_weight * dr,
            IMPUTATION_TERM: self.counterfactual_weight
            * self.imputation_weight
            * imputation,
            keys.CTCVR: self.global_weight
            * F.batch_mean(self.bce(ctcvr_label, outputs[keys.CTCVR])),
        }
