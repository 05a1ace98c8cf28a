from keras import ops

from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "nise",
    paper="Huang et al., Utilizing Non-click Samples via Semi-supervised "
    "Learning for Conversion Rate Prediction (NISE), RecSys 2024",
)
class NISE(CVRModel):
    """Non-click samples Improved Semi-supErvised CVR model (NISE).

    Drops the CTCVR task and treats unclicked rows as unlabeled: the CVR
    tower is supervised on clicks and, on unclicked rows, takes its own
    prediction as a soft pseudo label, i.e. minimises the entropy
    `H(r̂) = e(r̂, r̂)` with the gradient through both sides:
    `L = mean_D e(o, ô) + w * [(1/B) sum_D o e(r, r̂)
                                + u * (1/B) sum_D (1 - o) H(r̂)]`.
    The CVR weight is dynamic, `w = α * min(sg(L_ctr / L_cvr), β)`, so the
    sparse CVR loss keeps the CTR loss's scale (official code
    `Hjh233/NISE`, `adaptive_ucvrlc`, with `α = 1`, `β = 50`); the CTR
    task only shares the embeddings.

    Reference: Huang et al., "Utilizing Non-click Samples via
    Semi-supervised Learning for Conversion Rate Prediction", RecSys 2024.

    Args:
        alpha: float. `α`, scale of the CVR weight. Defaults to 1.0.
        beta: float. `β`, cap of the loss ratio. Defaults to 50.0.
        dynamic_weight: bool. With False the CVR weight is the constant
            `alpha`. Defaults to True.
        unclicked_weight: float. `u`, weight of the entropy term on
            unclicked rows (0 is the paper's ablation without them).
            Defaults to 1.0.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
            The paper's network is an MMoE (8 experts of [80], towers [40]).
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(
        self,
        schema,
        alpha=1.0,
        beta=50.0,
        dynamic_weight=True,
        unclicked_weight=1.0,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(alpha=alpha, beta=beta, unclicked_weight=unclicked_weight)
        if not isinstance(dynamic_weight, bool):
            raise ValueError(
                "dynamic_weight must be True or False. Received: "
                f"dynamic_weight={dynamic_weight!r}"
            )
        # === Config ===
        self.alpha = alpha
        self.beta = beta
        self.dynamic_weight = dynamic_weight
        self.unclicked_weight = unclicked_weight

    def cvr_weight(self, ctr_loss, cvr_loss):
        """`α * min(sg(L_ctr / L_cvr), β)`, or `α` when not dynamic."""
        if not self.dynamic_weight:
            return ops.convert_to_tensor(self.alpha, "float32")
        # The ratio of the global batch's losses, not of this replica's
        # shares of them.
        ctr_total = F.cross_replica_sum(ops.stop_gradient(ctr_loss))
        cvr_total = F.cross_replica_sum(ops.stop_gradient(cvr_loss))
        ratio = ctr_total / ops.maximum(cvr_total, self.epsilon)
        return self.alpha * ops.minimum(ratio, self.beta)

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        cvr = outputs[keys.CVR]
        ctr_loss = F.batch_mean(self.bce(click, outputs[keys.CTR]))
        clicked = F.batch_mean(click * self.bce(labels[keys.CONVERSION], cvr))
        unclicked = F.batch_mean(
            (1.0 - click) * F.binary_entropy(F.flat(cvr), self.epsilon)
        )
        cvr_loss = clicked + self.unclicked_weight * unclicked
        return {
            keys.CTR: ctr_loss,
            keys.CVR: self.cvr_weight(ctr_loss, cvr_loss) * cvr_loss,
        }
