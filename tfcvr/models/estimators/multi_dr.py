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
    "multi_dr",
    paper="Zhang et al., Large-scale Causal Approaches to Debiasing "
    "Post-click Conversion Rate Estimation with Multi-task Learning, WWW 2020",
)
class MultiDR(AlternatingTraining, CVRModel):
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
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        cvr_weight: float. Weight of the DR term. Defaults to 1.0.
        imputation_weight: float. Weight of the imputation term. Defaults
            to 1.0.
        normalization: str. DR term: `"exposure"` (the paper's `1/|D|`) or
            `"snips"`. Defaults to `"exposure"`.
        imputation_normalization: str. Imputation term: `"exposure"`,
            `"click"` or `"snips"`. Defaults to `"exposure"`.
        propensity_floor: float. Lower clip of `ô`; the paper states none.
            Defaults to 0.01.
        stop_gradient_propensity: bool. Defaults to True.
        stop_gradient_imputation: bool. Decouples the two models as above.
            Defaults to True.
        imputation_target: str. `"error"` (the tower predicts `e`) or
            `"label"` (it predicts a pseudo label `r̃` and
            `ê = e(r̃, r̂)`). Defaults to `"error"`.
        alternating: bool. Alternating imputation / prediction updates in
            each batch (DR-JL) instead of the paper's joint training.
            Defaults to False.
        imputation_steps: int. Imputation steps per batch when
            alternating. Defaults to 1.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
    """

    tasks = (keys.CTR, keys.CVR, keys.IMPUTATION)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        cvr_weight=1.0,
        imputation_weight=1.0,
        normalization="exposure",
        imputation_normalization="exposure",
        propensity_floor=0.01,
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
            cvr_weight=cvr_weight,
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
        self.cvr_weight = cvr_weight
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
        return {
            keys.CTR: self.ctr_weight
            * ops.mean(self.bce(click, outputs[keys.CTR])),
            "dr": self.cvr_weight * self.dr_loss(labels, outputs),
            IMPUTATION_TERM: self.imputation_weight
            * self.imputation_loss(labels, outputs),
        }
