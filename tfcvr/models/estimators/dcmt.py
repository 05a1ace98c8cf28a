import keras
from keras import ops

from tfcvr.features import keys
from tfcvr.losses import IPWLoss
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator

TWIN_TOWERS = ("separate", "shared")
NORMALIZATIONS = ("exposure", "snips")


@register_estimator(
    "dcmt",
    paper="Zhu et al., DCMT: A Direct Entire-Space Causal Multi-Task "
    "Framework for Post-Click Conversion Estimation, ICDE 2023",
)
class DCMT(CVRModel):
    """Direct entire-space causal multi-task model with a counterfactual twin.

    Each unclicked row gets a counterfactual twin "had it been clicked",
    with the flipped label `r* = 1 - r`; a twin tower `r̂*` learns it in the
    counterfactual space with propensity `1 - ô`, the factual tower `r̂`
    learns the clicks with propensity `ô`, and the prior `r̂ + r̂* ≈ 1` ties
    them over the whole space (NISE's restatement, Eq. 6):
    `L_DCMT = (1/N) sum_D o e(r, r̂) / p̂
            + (1/N*) sum_D (1 - o) e(1 - r, r̂*) / (1 - p̂)
            + λ * mean_D |1 - (r̂ + r̂*)|`,
    `p̂ = clip(sg(ô), propensity_floor, 1)` in the factual term and
    `1 - p̂` read as `clip(1 - sg(ô), unclick_propensity_floor, 1)` in the
    counterfactual one. The objective is
    `w_ctr * L_CTR + w_cvr * L_DCMT + w_ctcvr * L_CTCVR` (NISE's and
    ESCIM's implementations; whether the paper keeps `L_CTCVR` is
    unverified). `r̂` is the served pCVR; outputs add `counterfactual_cvr`.

    Unverified in the paper text and so exposed: the normaliser (`1/|D|` as
    NISE restates it, the default, or self-normalised `"snips"`,
    `N = sum o/p̂`, `N* = sum (1-o)/(1-p̂)`, a third-party reading of its
    Eq. 13) and whether the twin has its own tower (`"separate"`, NISE's
    code, the default) or shares the CVR tower with its own head
    (`"shared"`).

    Reference: Zhu et al., "DCMT: A Direct Entire-Space Causal Multi-Task
    Framework for Post-Click Conversion Estimation", ICDE 2023.

    Args:
        ctr_weight: float. Weight of `L_CTR`. Defaults to 1.0.
        cvr_weight: float. Weight of `L_DCMT`. Defaults to 1.0.
        ctcvr_weight: float. Weight of `L_CTCVR`. Defaults to 1.0.
        constraint_weight: float. `λ`. Defaults to 1e-3.
        normalization: str. `"exposure"` or `"snips"`. Defaults to
            `"exposure"`.
        propensity_floor: float. Lower clip of `ô` in the factual term.
            NISE's code clips only at 1e-15, ESCIM's at 0.05. Defaults to
            1e-6.
        unclick_propensity_floor: float. Lower clip of `1 - ô` in the
            counterfactual term. Defaults to 1e-6.
        stop_gradient_propensity: bool. Defaults to True (NISE detaches
            every weight).
        twin_tower: str. `"separate"` or `"shared"`. Defaults to
            `"separate"`.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
    """

    tasks = (keys.CTR, keys.CVR, keys.COUNTERFACTUAL_CVR)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        cvr_weight=1.0,
        ctcvr_weight=1.0,
        constraint_weight=1e-3,
        normalization="exposure",
        propensity_floor=1e-6,
        unclick_propensity_floor=1e-6,
        stop_gradient_propensity=True,
        twin_tower="separate",
        **kwargs,
    ):
        if twin_tower not in TWIN_TOWERS:
            raise ValueError(
                f"twin_tower must be one of {TWIN_TOWERS}. Received: "
                f"twin_tower={twin_tower!r}"
            )
        if twin_tower == "shared":
            # Read by CVRModel.__init__: no backbone task for the twin.
            self.tasks = (keys.CTR, keys.CVR)
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            cvr_weight=cvr_weight,
            ctcvr_weight=ctcvr_weight,
            constraint_weight=constraint_weight,
        )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}. Received: "
                f"normalization={normalization!r}"
            )
        for name, floor in (
            ("propensity_floor", propensity_floor),
            ("unclick_propensity_floor", unclick_propensity_floor),
        ):
            if not isinstance(floor, (int, float)) or not 0.0 < floor < 1.0:
                raise ValueError(
                    f"{name} must be in (0, 1). Received: {name}={floor!r}"
                )
        self.twin_head = None
        if twin_tower == "shared":
            self.twin_head = keras.layers.Dense(
                1, dtype="float32", name=f"{keys.COUNTERFACTUAL_CVR}_logit"
            )
        self.factual_loss = IPWLoss(
            normalization=normalization,
            propensity_floor=propensity_floor,
            stop_gradient_propensity=stop_gradient_propensity,
            epsilon=self.epsilon,
        )
        self.counterfactual_loss = IPWLoss(
            normalization=normalization,
            propensity_floor=unclick_propensity_floor,
            stop_gradient_propensity=stop_gradient_propensity,
            epsilon=self.epsilon,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.cvr_weight = cvr_weight
        self.ctcvr_weight = ctcvr_weight
        self.constraint_weight = constraint_weight
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.unclick_propensity_floor = unclick_propensity_floor
        self.stop_gradient_propensity = stop_gradient_propensity
        self.twin_tower = twin_tower

    def task_logits(self, features, training=False):
        if self.twin_head is None:
            return super().task_logits(features, training=training)
        x = self.embedding(features)
        ctr_rep, cvr_rep = self.backbone(x, training=training)
        cvr_rep = ops.cast(cvr_rep, "float32")
        return {
            keys.CTR: self.heads[0](ops.cast(ctr_rep, "float32")),
            keys.CVR: self.heads[1](cvr_rep),
            keys.COUNTERFACTUAL_CVR: self.twin_head(cvr_rep),
        }

    def outputs_from_logits(self, logits, features=None, training=False):
        outputs = super().outputs_from_logits(logits, features, training)
        outputs[keys.COUNTERFACTUAL_CVR] = ops.sigmoid(
            logits[keys.COUNTERFACTUAL_CVR]
        )
        return outputs

    def loss_terms(self, labels, outputs):
        click = labels[keys.CLICK]
        conversion = labels[keys.CONVERSION]
        ctr = outputs[keys.CTR]
        cvr = outputs[keys.CVR]
        twin = outputs[keys.COUNTERFACTUAL_CVR]
        factual = self.factual_loss(
            observed=click, target=conversion, prediction=cvr, propensity=ctr
        )
        # The twin's factual space is the counterfactual one: the unclicked
        # rows, with flipped labels and propensity 1 - ô.
        counterfactual = self.counterfactual_loss(
            observed=1.0 - click,
            target=1.0 - conversion,
            prediction=twin,
            propensity=1.0 - ctr,
        )
        constraint = F.batch_mean(ops.abs(1.0 - (cvr + twin)))
        return {
            keys.CTR: self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "factual": self.cvr_weight * factual,
            "counterfactual": self.cvr_weight * counterfactual,
            "constraint": self.cvr_weight * self.constraint_weight * constraint,
            keys.CTCVR: self.ctcvr_weight
            * F.batch_mean(
                self.bce(click * conversion, outputs[keys.CTCVR])
            ),
        }
