import keras
from keras import ops

from tfcvr.features import keys
from tfcvr.layers.core.ait_module import AITModule
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "aitm",
    paper="Xi et al., Adaptive Information Transfer Multi-task (AITM), "
    "KDD 2021",
)
class AITM(CVRModel):
    """Adaptive Information Transfer Multi-task model on the click ->
    purchase funnel (T = 2 sequential tasks, both over all impressions).

    The backbone gives task representations q_1 (click) and q_2 (purchase).
    The transfer MLP `p_1 = g(q_1)` (Dense with q_2's width, ReLU, dropout)
    carries click information to the purchase task; the AIT module pools
    `{p_1, q_2}` with self-attention, `z_2 = sum_u softmax_u(<Qu, Ku> /
    sqrt(k)) Vu`; `y1 = sigmoid(Dense(q_1))`, `y2 = sigmoid(Dense(z_2))`,
    where y2 predicts click & purchase (tfcvr's `ctcvr`). Loss (paper and
    official code): `L = w_ctr mean BCE(o, y1) + w_ctcvr mean BCE(o r, y2)
    + alpha * reduce_batch max(y2 - y1, 0)`, the last term being the
    behavioural expectation calibrator.

    Reference: Xi et al., "Modeling the Sequential Dependence among
    Audience Multi-step Conversions with Multi-task Learning in Targeted
    Display Advertising", KDD 2021. Official setting: towers `[128, 64, 32]`
    with dropout `[0.1, 0.3, 0.3]` (so q has width k = 32), transfer
    Dense(32) with dropout 0.3, embedding dim 5, L2 1e-6 on embeddings and
    attention kernels, alpha 0.6.

    pCVR: AITM defines no CVR; the serving contract's `cvr` is the ratio
    `clip(y2 / max(y1, epsilon), 0, 1)` (`cvr_output="ratio"`, the only
    value), i.e. P(buy | click) = P(click & buy) / P(click). This is the
    ESMM paper's "DIVISION" estimate, unstable where y1 is tiny, which is
    why it is never trained on: it is read off the two trained outputs.
    `ctcvr` is y2 itself (what the paper evaluates), so `ctr * cvr` equals
    `ctcvr` wherever the calibrator holds (y2 <= y1) and is min(y1, y2)
    elsewhere. An ESMM-style alternative (y2 = y1 * sigmoid(head)) would
    make the calibrator vacuous and is not AITM.

    Args:
        ctr_weight: float. Weight of the click BCE. Defaults to 1.0.
        ctcvr_weight: float. Weight of the click & purchase BCE. Defaults
            to 1.0.
        calibrator_weight: float. alpha. Defaults to 0.6 (official code).
        calibrator_reduction: str. `"mean"` over the batch (official code)
            or `"sum"` (a third-party PyTorch re-implementation). Defaults
            to `"mean"`.
        attention_dim: int or None. k of the AIT maps; None uses q_2's
            width, as the official code. Defaults to None.
        transfer_dropout: float. Dropout after the transfer layer. Defaults
            to 0 (the official code uses 0.3; tfcvr's backbones default to
            no dropout).
        attention_l2: float. L2 penalty `attention_l2 * sum(W^2)` on the
            AIT kernels Q, K, V, the loss term `"attention_l2"`. Defaults to
            5e-7, the official `1e-6 * sum(W^2) / 2` (tf.contrib's
            l2_regularizer halves); the official code also penalises the
            embeddings, which `CVRModel` leaves unregularised.
        cvr_output: str. How `cvr` is read off the outputs; only
            `"ratio"`. Defaults to `"ratio"`.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Outputs: `(batch, 1)` `ctr` (y1), `ctcvr` (y2) and `cvr` (the ratio).
    """

    tasks = (keys.CTR, keys.CTCVR)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        ctcvr_weight=1.0,
        calibrator_weight=0.6,
        calibrator_reduction="mean",
        attention_dim=None,
        transfer_dropout=0.0,
        attention_l2=5e-7,
        cvr_output="ratio",
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            ctcvr_weight=ctcvr_weight,
            calibrator_weight=calibrator_weight,
            attention_l2=attention_l2,
        )
        if calibrator_reduction not in ("mean", "sum"):
            raise ValueError(
                "calibrator_reduction must be 'mean' or 'sum'. Received: "
                f"calibrator_reduction={calibrator_reduction!r}"
            )
        if isinstance(transfer_dropout, bool) or not isinstance(
            transfer_dropout, (int, float)
        ) or not 0.0 <= transfer_dropout < 1.0:
            raise ValueError(
                "transfer_dropout must be in [0, 1). Received: "
                f"transfer_dropout={transfer_dropout!r}"
            )
        if cvr_output != "ratio":
            raise ValueError(
                "cvr_output must be 'ratio'. Received: "
                f"cvr_output={cvr_output!r}"
            )

        # === Layers ===
        # The transfer layer's width is q_2's (p_1 and q_2 are attended
        # together), known once the backbone has seen the embeddings; it is
        # created in `build`.
        self.transfer = None
        self.transfer_dropout_layer = keras.layers.Dropout(
            transfer_dropout, name="transfer_dropout"
        )
        # The L2 penalty is a named loss term rather than a kernel
        # regularizer so the objective lists it with the other terms.
        self.ait = AITModule(
            attention_dim=attention_dim, dtype=self.dtype_policy, name="ait"
        )

        # === Config ===
        self.ctr_weight = ctr_weight
        self.ctcvr_weight = ctcvr_weight
        self.calibrator_weight = calibrator_weight
        self.calibrator_reduction = calibrator_reduction
        self.attention_dim = attention_dim
        self.transfer_dropout = transfer_dropout
        self.attention_l2 = attention_l2
        self.cvr_output = cvr_output

    def build(self, input_shape=None):
        if self.built:
            return
        x = self.embedding(self.dummy_inputs())
        width = int(self.backbone(x)[1].shape[-1])
        self.transfer = keras.layers.Dense(
            width, activation="relu", dtype=self.dtype_policy, name="transfer"
        )
        super().build(input_shape)

    # === Forward ===

    def task_logits(self, features, training=False):
        x = self.embedding(features)
        q_click, q_purchase = self.backbone(x, training=training)
        p_click = self.transfer_dropout_layer(
            self.transfer(q_click), training=training
        )
        z_purchase = self.ait([q_purchase, p_click])
        return {
            keys.CTR: self.heads[0](ops.cast(q_click, "float32")),
            keys.CTCVR: self.heads[1](ops.cast(z_purchase, "float32")),
        }

    def outputs_from_logits(self, logits, features=None, training=False):
        ctr = ops.sigmoid(logits[keys.CTR])
        ctcvr = ops.sigmoid(logits[keys.CTCVR])
        cvr = ops.clip(ctcvr / ops.maximum(ctr, self.epsilon), 0.0, 1.0)
        return {keys.CTR: ctr, keys.CVR: cvr, keys.CTCVR: ctcvr}

    # === Objective ===

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        ctcvr_label = click * F.flat(labels[keys.CONVERSION])
        ctr, ctcvr = F.flat(outputs[keys.CTR]), F.flat(outputs[keys.CTCVR])
        excess = ops.relu(ctcvr - ctr)
        if self.calibrator_reduction == "mean":
            calibrator = F.batch_mean(excess)
        else:
            calibrator = ops.sum(excess)
        terms = {
            "ctr": self.ctr_weight * F.batch_mean(self.bce(click, ctr)),
            "ctcvr": self.ctcvr_weight
            * F.batch_mean(self.bce(ctcvr_label, ctcvr)),
            "calibrator": self.calibrator_weight * calibrator,
        }
        if self.attention_l2:
            if not self.built:
                # Hand-made outputs (e.g. in tests) may reach an unbuilt model.
                self.build()
            kernels = (
                self.ait.query_kernel, self.ait.key_kernel, self.ait.value_kernel
            )
            terms["attention_l2"] = F.weight_penalty(
                self.attention_l2
                * ops.sum(ops.stack([ops.sum(ops.square(k)) for k in kernels]))
            )
        return terms
