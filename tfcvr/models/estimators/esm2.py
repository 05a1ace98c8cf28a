from keras import ops

from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator

ACTION = keys.ACTION
CTAVR = keys.CTAVR
# Heads (conditional probabilities; not outputs).
DACTION_GIVEN_CLICK = "daction"
BUY_GIVEN_DACTION = "cvr_daction"
BUY_GIVEN_OACTION = "cvr_oaction"


@register_estimator(
    "esm2",
    paper="Wen et al., Entire Space Multi-Task Modeling via Post-Click "
    "Behavior Decomposition (ESM2), SIGIR 2020",
)
class ESM2(CVRModel):
    """Entire Space Multi-task Model with post-click behaviour decomposition.

    The post-click path splits into DAction (purchase-related actions such
    as add-to-cart) and OAction (every other click). Four heads: y1 = pCTR,
    y2 = P(DAction | click), y3 = P(buy | DAction), y4 = P(buy | OAction);
    `pCTAVR = y1 y2`, `pCVR = y2 y3 + (1 - y2) y4`, `pCTCVR = y1 pCVR`, and
    `L = w_ctr BCE(o, y1) + w_ctavr BCE(o a, pCTAVR) + w_ctcvr BCE(o r,
    pCTCVR)`, each a mean over the batch of impressions (o click, a action,
    r conversion). The weights 1/1/1 are a reading of the paper that could
    not be checked against its text (reference/estimators.md §3).

    Reference: Wen et al., "Entire Space Multi-Task Modeling via Post-Click
    Behavior Decomposition for Conversion Rate Prediction", SIGIR 2020.

    Needs a third label, the DAction indicator, as a schema label column
    (Ali-CCP has none; a proxy must be built from the logs).

    Args:
        action_label: str. Name of the DAction label column in the schema's
            `labels`. Defaults to `"action"`.
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        ctavr_weight: float. Weight of the CTAVR term. Defaults to 1.0.
        ctcvr_weight: float. Weight of the CTCVR term. Defaults to 1.0.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Outputs: `(batch, 1)` `ctr`, `cvr`, `ctcvr` and `ctavr`.
    """

    tasks = (keys.CTR, DACTION_GIVEN_CLICK, BUY_GIVEN_DACTION, BUY_GIVEN_OACTION)

    def __init__(
        self,
        schema,
        action_label=ACTION,
        ctr_weight=1.0,
        ctavr_weight=1.0,
        ctcvr_weight=1.0,
        **kwargs,
    ):
        if not isinstance(action_label, str) or not action_label or (
            action_label in keys.LABEL_KEYS
        ):
            raise ValueError(
                "action_label must name a label column other than "
                f"{list(keys.LABEL_KEYS)}. Received: action_label={action_label!r}"
            )
        # Set before the base constructor, whose `_check_schema` reads it.
        self.action_label = action_label
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            ctavr_weight=ctavr_weight,
            ctcvr_weight=ctcvr_weight,
        )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.ctavr_weight = ctavr_weight
        self.ctcvr_weight = ctcvr_weight

    def _check_schema(self, schema):
        if self.action_label not in schema.labels:
            raise ValueError(
                f"ESM2 needs a post-click action label: add a label column "
                f"`{self.action_label}` (1 if the click led to a DAction such "
                "as add-to-cart) to the dataset spec's `labels`, or set "
                f"action_label. Received: labels={list(schema.labels)}"
            )

    def outputs_from_logits(self, logits, features=None, training=False):
        y1 = ops.sigmoid(logits[keys.CTR])
        y2 = ops.sigmoid(logits[DACTION_GIVEN_CLICK])
        y3 = ops.sigmoid(logits[BUY_GIVEN_DACTION])
        y4 = ops.sigmoid(logits[BUY_GIVEN_OACTION])
        cvr = y2 * y3 + (1.0 - y2) * y4
        return {
            keys.CTR: y1,
            keys.CVR: cvr,
            keys.CTCVR: y1 * cvr,
            CTAVR: y1 * y2,
        }

    def loss_terms(self, labels, outputs):
        if self.action_label not in labels:
            raise ValueError(
                f"ESM2 trains on labels with `{self.action_label}` (the "
                f"post-click action). Received label keys: {sorted(labels)}"
            )
        click = F.flat(labels[keys.CLICK])
        ctavr_label = click * F.flat(labels[self.action_label])
        ctcvr_label = click * F.flat(labels[keys.CONVERSION])
        return {
            "ctr": self.ctr_weight
            * F.batch_mean(self.bce(click, outputs[keys.CTR])),
            "ctavr": self.ctavr_weight
            * F.batch_mean(self.bce(ctavr_label, outputs[CTAVR])),
            "ctcvr": self.ctcvr_weight
            * F.batch_mean(self.bce(ctcvr_label, outputs[keys.CTCVR])),
        }
