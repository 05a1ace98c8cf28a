import keras
from keras import ops

from tfcvr.features import keys
from tfcvr.layers.core.ait_module import AITModule
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_flags
from tfcvr.models.cvr_model import check_floors
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator

IPS_SCALINGS = ("snips_batch_mean", "snips")


@register_estimator(
    "ddpo",
    paper="Su et al., DDPO: Direct Dual Propensity Optimization for "
    "Post-Click Conversion Rate Estimation, SIGIR 2024",
)
class DDPO(CVRModel):
    """Direct Dual Propensity Optimization: IPS-weighted CVR learning in
    the click and the non-click space, with pseudo labels for the latter.

    Three towers: the click propensity `ô` (CTR), the CVR `r̂` (served) and
    the conversion propensity `ĉ`, learnt on clicks only; `ĉ` is the pseudo
    conversion label of every unclicked row and the soft label of every
    clicked unconverted one (the paper's dynamic soft labels, Eq. 9:
    `r* = min(r + sg(ĉ), 1)`). Paper Eqs. 6, 10, 15-18 and the official
    code (`TL-UESTC/DDPO`, `main.py`, `train`) agree:

        L = w_o mean_D e(o, ô) + w_t mean_D e(o r, ô r̂)
          + w_c mean_D o e(r, ĉ)
          + w_r [ s(sum_D u_i e(r*_i, r̂_i)) + n s(sum_D v_i e(sg(ĉ_i), r̂_i)) ],

    `u_i = (o_i / p_i) / sum_j (o_j / p_j)`, `p = max(sg(ô), floor)`, and
    `v_i = ((1 - o_i) / q_i) / sum_j ((1 - o_j) / q_j)`,
    `q = max(1 - sg(ô), floor)`: self-normalised (SNIPS) weights over the
    clicked and the unclicked rows. `s` is the scaling: the paper's Eq. 10
    keeps its `1/|D|` after Eq. 15's SNIPS substitution and the code takes
    `torch.mean` of the SNIPS-weighted rows, so both IPS terms carry an
    extra `1/B` (`"snips_batch_mean"`, the default, because DDPO's numbers
    were obtained with it); `"snips"` drops it, the plain self-normalised
    estimate. The official scaling makes the two IPS terms about `1/B`
    times the others (1/2048 at DDPO's batch size), so it depends on the
    batch size; `"snips"` does not.

    Two causal transfer modules (CTM, paper Eqs. 12-14) feed the CVR tower
    with the other two: `f_ro = T_o([g_o(f_o), f_r])`,
    `f_rc = T_c([g_c(f_c), f_r])`, `f_r' = ReLU(W_t [f_ro; f_rc])`, with
    `T` the self-attention pooling `sum_u softmax_u(<W_q u, W_k u> /
    sqrt(d)) W_v u` (`tfcvr.layers.AITModule`) and `g` a Dense + ReLU of
    the CVR representation's width `d` (the official code's `ctr_info`,
    `ctcvr_info`); gradients of the CVR loss reach the other two towers
    through them, as in the code. The backbone's three task outputs are
    `f_o`, `f_r`, `f_c`; each logit is one Dense (the paper's "single fully
    connected layer"). The official Q/K/V maps carry biases; AITModule's
    are bias-free.

    Reference: Su et al., "DDPO: Direct Dual Propensity Optimization for
    Post-Click Conversion Rate Estimation", SIGIR 2024. Official setting:
    one MLP `[128, 64]` per task (tfcvr's `towers` backbone), towers
    `[64, 32]` after the CTMs, batch norm and dropout 0.2, embedding 5
    (Ali-CCP), batch 2048, Adam 1e-3, weight decay 1e-6, all `w` = 1.

    Args:
        ctr_weight: float. `w_o`. Defaults to 1.0.
        ctcvr_weight: float. `w_t`. Defaults to 1.0.
        conversion_weight: float. `w_c`, the conversion propensity loss
            (Eq. 6). Defaults to 1.0.
        cvr_weight: float. `w_r`, both IPS terms (Eq. 10). Defaults to 1.0.
        unclicked_weight: float. `n`; 0 is the paper's ablation without
            the non-click space ("w/o Nclk"). Defaults to 1.0.
        ips_scaling: str. `"snips_batch_mean"` or `"snips"`. Defaults to
            `"snips_batch_mean"`.
        propensity_floor: float. Lower clip of `ô`. Defaults to 1e-6.
        unclick_propensity_floor: float. Lower clip of `1 - ô`. Defaults
            to 1e-6.
        soft_click_labels: bool. Clicked rows learn `min(r + sg(ĉ), 1)`;
            False gives them `r` (Eq. 8, the paper's "w/o DSL" ablation).
            Defaults to True.
        causal_transfer: bool. Use the two CTMs; False is the paper's
            "w/o CTM" ablation. Defaults to True.
        stop_gradient_propensity: bool. The IPS weights are detached, as in
            the official code. Defaults to True.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Outputs: `(batch, 1)` `ctr`, `cvr`, `ctcvr` (`ô r̂`) and
    `conversion_propensity` (`ĉ`).
    """

    tasks = (keys.CTR, keys.CVR, keys.CONVERSION_PROPENSITY)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        ctcvr_weight=1.0,
        conversion_weight=1.0,
        cvr_weight=1.0,
        unclicked_weight=1.0,
        ips_scaling="snips_batch_mean",
        propensity_floor=1e-6,
        unclick_propensity_floor=1e-6,
        soft_click_labels=True,
        causal_transfer=True,
        stop_gradient_propensity=True,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(
            ctr_weight=ctr_weight,
            ctcvr_weight=ctcvr_weight,
            conversion_weight=conversion_weight,
            cvr_weight=cvr_weight,
            unclicked_weight=unclicked_weight,
        )
        if ips_scaling not in IPS_SCALINGS:
            raise ValueError(
                f"ips_scaling must be one of {IPS_SCALINGS}. Received: "
                f"ips_scaling={ips_scaling!r}"
            )
        check_floors(
            propensity_floor=propensity_floor,
            unclick_propensity_floor=unclick_propensity_floor,
        )
        check_flags(
            soft_click_labels=soft_click_labels,
            causal_transfer=causal_transfer,
            stop_gradient_propensity=stop_gradient_propensity,
        )

        # === Layers ===
        # The CTM widths are the CVR representation's, known once the
        # backbone has seen the embeddings; they are created in `build`.
        self.click_transfer = None
        self.conversion_transfer = None
        self.fusion = None
        self.click_ctm = None
        self.conversion_ctm = None

        # === Config ===
        self.ctr_weight = ctr_weight
        self.ctcvr_weight = ctcvr_weight
        self.conversion_weight = conversion_weight
        self.cvr_weight = cvr_weight
        self.unclicked_weight = unclicked_weight
        self.ips_scaling = ips_scaling
        self.propensity_floor = propensity_floor
        self.unclick_propensity_floor = unclick_propensity_floor
        self.soft_click_labels = soft_click_labels
        self.causal_transfer = causal_transfer
        self.stop_gradient_propensity = stop_gradient_propensity

    def build(self, input_shape=None):
        if self.built:
            return
        if self.causal_transfer:
            x = self.embedding(self.dummy_inputs())
            width = int(self.backbone(x)[1].shape[-1])

            def dense(name):
                return keras.layers.Dense(
                    width, activation="relu", dtype=self.dtype_policy,
                    name=name,
                )

            self.click_transfer = dense("click_transfer")
            self.conversion_transfer = dense("conversion_transfer")
            self.fusion = dense("cvr_fusion")
            self.click_ctm = AITModule(dtype=self.dtype_policy, name="click_ctm")
            self.conversion_ctm = AITModule(
                dtype=self.dtype_policy, name="conversion_ctm"
            )
        super().build(input_shape)

    # === Forward ===

    def task_logits(self, features, training=False):
        x = self.embedding(features)
        f_click, f_cvr, f_conversion = self.backbone(x, training=training)
        if self.causal_transfer:
            fused_click = self.click_ctm([self.click_transfer(f_click), f_cvr])
            fused_conversion = self.conversion_ctm(
                [self.conversion_transfer(f_conversion), f_cvr]
            )
            f_cvr = self.fusion(
                ops.concatenate([fused_click, fused_conversion], axis=-1)
            )
        reps = (f_click, f_cvr, f_conversion)
        return {
            task: head(ops.cast(rep, "float32"))
            for task, head, rep in zip(self.tasks, self.heads, reps)
        }

    # === Objective ===

    def ips_term(self, observed, propensity, floor, values):
        weights = F.propensity_weights(
            observed,
            propensity,
            normalization="snips",
            floor=floor,
            stop_gradient=self.stop_gradient_propensity,
        )
        rows = weights * values
        if self.ips_scaling == "snips_batch_mean":
            return F.batch_mean(rows)
        return ops.sum(rows)

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        conversion = F.flat(labels[keys.CONVERSION])
        ctr = F.flat(outputs[keys.CTR])
        cvr = F.flat(outputs[keys.CVR])
        propensity = F.flat(outputs[keys.CONVERSION_PROPENSITY])
        pseudo = ops.stop_gradient(propensity)
        target = (
            ops.minimum(conversion + pseudo, 1.0)
            if self.soft_click_labels
            else conversion
        )
        weighted = (
            (keys.CTR, self.ctr_weight, lambda: F.batch_mean(
                self.bce(click, ctr))),
            (keys.CTCVR, self.ctcvr_weight, lambda: F.batch_mean(
                self.bce(click * conversion, outputs[keys.CTCVR]))),
            (keys.CONVERSION_PROPENSITY, self.conversion_weight,
             lambda: F.batch_mean(click * self.bce(conversion, propensity))),
            ("cvr_click", self.cvr_weight, lambda: self.ips_term(
                click, ctr, self.propensity_floor, self.bce(target, cvr))),
            ("cvr_unclick", self.cvr_weight * self.unclicked_weight,
             lambda: self.ips_term(
                 1.0 - click, 1.0 - ctr, self.unclick_propensity_floor,
                 self.bce(pseudo, cvr))),
        )
        # A zero weight removes its term (the paper's ablations).
        return {name: w * term() for name, w, term in weighted if w}
