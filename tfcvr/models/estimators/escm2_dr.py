from keras import ops

from tfcvr.features import keys
from tfcvr.losses import DoublyRobustLoss
from tfcvr.losses import ImputationLoss
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.models.alternating_training import AlternatingTraining
from tfcvr.models.alternating_training import check_alternating
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "escm2_dr",
    paper="Wang et al., ESCM2: Entire Space Counterfactual Multi-Task Model "
    "for Post-Click Conversion Rate Estimation, SIGIR 2022",
)
class ESCM2DR(AlternatingTraining, CVRModel):
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
        imputation_weight: float. Weight of `L_IMP` inside `λ_c`. Defaults
            to 1.0.
        normalization: str. DR term: `"exposure"` or `"snips"`. Defaults to
            `"exposure"`.
        imputation_normalization: str. `"exposure"`, `"click"` or
            `"snips"`. Defaults to `"exposure"`.
        propensity_floor: float. Defaults to 1e-6 (official).
        stop_gradient_propensity: bool. Defaults to True.
        stop_gradient_imputation: bool. Defaults to True.
        imputation_target: str. `"error"` (official: the tower predicts the
            error, a sigmoid) or `"label"`. Defaults to `"error"`.
        alternating: bool. Defaults to False (official joint training).
        imputation_steps: int. Imputation steps per batch when
            alternating. Defaults to 1.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
            The official network is an MMoE of 8 experts with one gate and
            tower per task, the imputation task included.
    """

    tasks = (keys.CTR, keys.CVR, keys.IMPUTATION)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        counterfactual_weight=0.5,
        global_weight=0.5,
        imputation_weight=1.0,
        normalization="exposure",
        imputation_normalization="exposure",
        propensity_floor=1e-6,
        stop_gradient_propensity=True,
        stop_gradient_imputation=True,
        imputation_target="error",
        alternating=False,
        imputation_steps=1,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            counterfactual_weight=counterfactual_weight,
            global_weight=global_weight,
            imputation_weight=imputation_weight,
        )
        check_alternating(alternating, imputation_steps)
        common = dict(
            propensity_floor=propensity_floor,
            stop_gradient_propensity=stop_gradient_propensity,
            imputation_target=imputation_target,
            epsilon=self.epsilon,
        )
        self.dr_loss = DoublyRobustLoss(
            normalization=normalization,
            stop_gradient_imputation=stop_gradient_imputation,
            **common,
        )
        self.imputation_loss = ImputationLoss(
            normalization=imputation_normalization,
            stop_gradient_prediction=stop_gradient_imputation,
            **common,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.counterfactual_weight = counterfactual_weight
        self.global_weight = global_weight
        self.imputation_weight = imputation_weight
        self.normalization = normalization
        self.imputation_normalization = imputation_normalization
        self.propensity_floor = propensity_floor
        self.stop_gradient_propensity = stop_gradient_propensity
        self.stop_gradient_imputation = stop_gradient_imputation
        self.imputation_target = imputation_target
        self.alternating = alternating
        self.imputation_steps = imputation_steps

    def loss_terms(self, labels, outputs):
        click = labels[keys.CLICK]
        ctcvr_label = click * labels[keys.CONVERSION]
        return {
            keys.CTR: self.ctr_weight
            * ops.mean(self.bce(click, outputs[keys.CTR])),
            "dr": self.counterfactual_weight * self.dr_loss(labels, outputs),
            IMPUTATION_TERM: self.counterfactual_weight
            * self.imputation_weight
            * self.imputation_loss(labels, outputs),
            keys.CTCVR: self.global_weight
            * ops.mean(self.bce(ctcvr_label, outputs[keys.CTCVR])),
        }
