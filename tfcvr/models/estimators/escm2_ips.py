from tfcvr.features import keys
from tfcvr.losses import IPWLoss
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "escm2_ips",
    paper="Wang et al., ESCM2: Entire Space Counterfactual Multi-Task Model "
    "for Post-Click Conversion Rate Estimation, SIGIR 2022",
)
class ESCM2IPS(CVRModel):
    """ESCM² with the inverse propensity score counterfactual regulariser.

    ESMM plus a counterfactual CVR risk that de-biases pCVR in the entire
    space: `L = w_ctr * L_CTR + λ_c * L_IPS + λ_g * L_CTCVR`, with
    `L_CTR = mean_D e(o, ô)`, `L_CTCVR = mean_D e(o r, ô r̂)` and
    `L_IPS = (1/N) sum_D o * e(r, r̂) / p̂`, `p̂ = clip(sg(ô), floor, 1)`.
    `λ_c = 0` is ESMM.

    Sources disagree on `L_IPS`'s normaliser: the paper's formula divides by
    `|D|`, the official PaddleRec code and Ant's port by the clicks in the
    batch and cap each normalised weight `1/(p̂ * n_clicks)` at 15. The
    defaults are the official code's (`"click"`, cap 15, floor 1e-6,
    `λ_c = λ_g = 0.5`, without Paddle's second factor of `n_clicks`, very
    likely a bug); `normalization="exposure", weight_cap=None` gives the
    paper's formula.

    Reference: Wang et al., "ESCM2: Entire Space Counterfactual Multi-Task
    Model for Post-Click Conversion Rate Estimation", SIGIR 2022.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        counterfactual_weight: float. `λ_c`. Defaults to 0.5.
        global_weight: float. `λ_g`, weight of the CTCVR term. Defaults to
            0.5.
        normalization: str. `"click"`, `"exposure"` or `"snips"`. Defaults
            to `"click"`.
        propensity_floor: float. Lower clip of `ô`. Defaults to 1e-6.
        weight_cap: float or None. Cap of each normalised IPS weight.
            Defaults to 15.0.
        stop_gradient_propensity: bool. Defaults to True (the official
            code's `stop_gradient` on the weights).
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
            The official network is an MMoE of 8 experts.
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        counterfactual_weight=0.5,
        global_weight=0.5,
        normalization="click",
        propensity_floor=1e-6,
        weight_cap=15.0,
        stop_gradient_propensity=True,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            counterfactual_weight=counterfactual_weight,
            global_weight=global_weight,
        )
        self.ips_loss = IPWLoss(
            normalization=normalization,
            propensity_floor=propensity_floor,
            weight_cap=weight_cap,
            stop_gradient_propensity=stop_gradient_propensity,
            epsilon=self.epsilon,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.counterfactual_weight = counterfactual_weight
        self.global_weight = global_weight
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.weight_cap = weight_cap
        self.stop_gradient_propensity = stop_gradient_propensity

    def loss_terms(self, labels, outputs):
        click, conversion = labels[keys.CLICK], labels[keys.CONVERSION]
        ctr = outputs[keys.CTR]
        ips = self.ips_loss(
            observed=click,
            target=conversion,
            prediction=outputs[keys.CVR],
            propensity=ctr,
        )
        return {
            keys.CTR: self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "ips": self.counterfactual_weight * ips,
            keys.CTCVR: self.global_weight
            * F.batch_mean(self.bce(click * conversion, outputs[keys.CTCVR])),
        }
