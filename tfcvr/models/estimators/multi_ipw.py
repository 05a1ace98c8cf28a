from tfcvr.features import keys
from tfcvr.losses import IPWLoss
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "multi_ipw",
    paper="Zhang et al., Large-scale Causal Approaches to Debiasing "
    "Post-click Conversion Rate Estimation with Multi-task Learning, WWW 2020",
)
class MultiIPW(CVRModel):
    """Multi-task inverse propensity weighting (Multi-IPW).

    The CTR task's prediction is the click propensity of the CVR task, and
    both are trained jointly (paper Fig. 4):
    `L = w_ctr * mean_D e(o, ô) + w_cvr * (1/N) sum_D o * e(r, r̂) / p̂`,
    `p̂ = clip(sg(ô), propensity_floor, 1)`. With `N = |D|` the CVR term is
    unbiased for the entire-space risk when `ô` is the true propensity
    (paper Thm 3.1).

    Reference: Zhang et al., "Large-scale Causal Approaches to Debiasing
    Post-click Conversion Rate Estimation with Multi-task Learning", WWW
    2020.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        cvr_weight: float. Weight of the IPW term. Defaults to 1.0.
        normalization: str. `"exposure"` (divide by the batch, the paper's
            `1/|D|`), `"click"` (by the clicks) or `"snips"` (by
            `sum o / p̂`). Defaults to `"exposure"`.
        propensity_floor: float. Lower clip of `ô`. The paper states no
            clip; 0.01 keeps `1/ô <= 100` at Ali-CCP's CTR of about 4%.
            Defaults to 0.01.
        stop_gradient_propensity: bool. The paper does not say whether the
            IPW term trains the CTR tower; the default follows the standard
            practice of treating the propensity as fixed. Defaults to True.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Example:
        model = tfcvr.models.MultiIPW(schema=schema)
        model.compile(optimizer="adam")
        model.fit(dataset, epochs=1)
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        cvr_weight=1.0,
        normalization="exposure",
        propensity_floor=0.01,
        stop_gradient_propensity=True,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(ctr_weight=ctr_weight, cvr_weight=cvr_weight)
        self.ipw_loss = IPWLoss(
            normalization=normalization,
            propensity_floor=propensity_floor,
            stop_gradient_propensity=stop_gradient_propensity,
            epsilon=self.epsilon,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.cvr_weight = cvr_weight
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.stop_gradient_propensity = stop_gradient_propensity

    def loss_terms(self, labels, outputs):
        click, ctr = labels[keys.CLICK], outputs[keys.CTR]
        ipw = self.ipw_loss(
            observed=click,
            target=labels[keys.CONVERSION],
            prediction=outputs[keys.CVR],
            propensity=ctr,
        )
        return {
            keys.CTR: self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "ipw": self.cvr_weight * ipw,
        }
