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
    "dr_jl",
    paper="Wang et al., Doubly Robust Joint Learning for Recommendation on "
    "Data Missing Not at Random, ICML 2019",
)
class DRJL(AlternatingTraining, CVRModel):
    """Doubly robust joint learning (DR-JL).

    A prediction model θ (CTR and CVR towers) and an imputation model φ
    (the `imputation` tower, `ê` predicting the CVR error) learn in turns
    on every batch (paper Alg. 1): first φ on
    `L_e = (1/|D|) sum_D o * (ê - e)^2 / p̂` with θ fixed, then θ on
    `w_ctr * mean_D e(o, ô) + w_cvr * (1/|D|) sum_D [ê + o * (e - ê) / p̂]`
    with φ fixed, `e = e(r, r̂)`, `p̂ = clip(sg(ô), propensity_floor, 1)`.
    The paper estimates propensities beforehand; here the jointly trained
    CTR tower gives them, as in Multi-DR's DR-JL baseline.

    Reference: Wang et al., "Doubly Robust Joint Learning for
    Recommendation on Data Missing Not at Random", ICML 2019.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        cvr_weight: float. Weight of the DR term. Defaults to 1.0.
        imputation_weight: float. Weight of the imputation loss. Defaults
            to 1.0.
        normalization: str. DR term: `"exposure"` (the paper's `1/|D|`) or
            `"snips"`. Defaults to `"exposure"`.
        imputation_normalization: str. `"exposure"`, `"click"` or
            `"snips"`. Defaults to `"exposure"`.
        propensity_floor: float. Lower clip of `ô`. Defaults to 0.01.
        stop_gradient_propensity: bool. Defaults to True.
        stop_gradient_imputation: bool. `ê` enters the DR term and `e` the
            imputation loss through `stop_gradient`. Defaults to True.
        imputation_target: str. `"error"` (the paper: `ê` is the imputed
            error) or `"label"` (a pseudo label `r̃`, `ê = e(r̃, r̂)`, as in
            the DR-JL baselines of MRDR's and AutoDebias' code). Defaults to
            `"error"`.
        alternating: bool. The paper's alternating updates; False trains
            all terms jointly in one step. Defaults to True.
        imputation_steps: int. Imputation steps per batch. Defaults to 1.
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
        alternating=True,
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

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ctr_weight": self.ctr_weight,
                "cvr_weight": self.cvr_weight,
                "imputation_weight": self.imputation_weight,
                "normalization": self.normalization,
                "imputation_normalization": self.imputation_normalization,
                "propensity_floor": self.propensity_floor,
                "stop_gradient_propensity": self.stop_gradient_propensity,
                "stop_gradient_imputation": self.stop_gradient_imputation,
                "imputation_target": self.imputation_target,
                "alternating": self.alternating,
                "imputation_steps": self.imputation_steps,
            }
        )
        return config
