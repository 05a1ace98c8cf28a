from keras import ops

from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_flags
from tfcvr.models.cvr_model import check_floors
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator

SAM_WEIGHTINGS = ("inverse", "multiplicative")


@register_estimator(
    "choruscvr",
    paper="Cheng et al., ChorusCVR: Chorus Supervision for Entire Space "
    "Post-Click Conversion Rate Modeling, WSDM 2026 — equations "
    "reconstructed from the abstract and third-party re-implementations; "
    "see docstring",
)
class ChorusCVR(CVRModel):
    """ChorusCVR: CVR, unCVR and CTR towers that supervise each other.

    *Reconstructed*: neither the paper's equations nor its code could be
    read. What the abstract fixes is implemented as stated; every choice
    it leaves open is an argument, with the default named below.

    Towers: CTR `ô`, CVR `r̂` (served) and unCVR `û ≈ P(r = 0 | o = 1)`;
    `ctcvr = ô r̂`, `ctuncvr = ô û` ("Eq. 6"). Unclicked rows are ambiguous
    negatives, clicked unconverted rows factual ones; the Negative sample
    Discrimination Module (NDM) learns `û` to tell them apart and the Soft
    Alignment Module (SAM) turns `1 - û` into soft CVR labels:

        L = w_ctcvr mean_D e(o r, ô r̂)                       (Eq. 3)
          + w_cvr   sum_D p_i o_i e(r, r̂)                    (Eq. 4)
          + w_ctuncvr mean_D e(o (1 - r), ô û)               (Eq. 7)
          + w_uncvr sum_D p_i o_i e(1 - r, û)                (Eq. 9)
          + λ [ sum_D a_i m_i + sum_D b_i m_i ]              (Eq. 10)
          + w_ctr mean_D e(o, ô),
        m_i = e(sg(1 - û_i), r̂_i) + e(sg(1 - r̂_i), û_i),

    `e(y, p)` the BCE, `p_i = 1 / clip(sg(ô_i), floor, 1)` normalised by
    `normalization`. The two SAM readings (estimators.md §10, two
    third-party re-implementations that disagree) set the weights
    `a` (click space) and `b` (unclick space):
    - `"inverse"` (reading A, the default): `a_i = o_i / clip(sg(ô_i))`
      and `b_i = (1 - o_i) / clip(1 - sg(ô_i))`, each normalised like the
      IPW terms (`"click"`: the mean over O, resp. over N), so the
      click-space and unclick-space losses are each transported to D;
    - `"multiplicative"` (reading B): `a_i = sg(ô_i) / |O|` and
      `b_i = (1 - sg(ô_i)) / |N|` on every row, no masking (D transported
      to O and to N); `|O|`, `|N|` the batch's clicked / unclicked rows.
    Reading A is the default because secondary summaries of the paper call
    SAM "IPW-weighted". Reading B's full objective is
    `sam_weighting="multiplicative", ctr_weight=1, cvr_weight=0,
    uncvr_weight=0, ctuncvr_weight=λ, align_weight=λ` (it has a CTR loss,
    no Eq. 4/9 terms, and λ on CTunCVR too).

    Defaults (reading A's): all weights 1 except `ctr_weight = 0` (the CTR
    tower is trained through both products, `o r + o (1 - r) = o`);
    `normalization="click"`; floors 0.01 (A clips to [0.01, 1]); both
    spaces aligned. A's own search found `align_weight = 0` best, and so
    did one reproduction on Ali-CCP; the paper's weight is unknown, and 1
    (A's objective) keeps SAM on. A weight of 0 removes its terms. Unlike
    A's code, the propensities enter every weight through `stop_gradient`
    (tfcvr's rule; `stop_gradient_propensity=False` lets them through, as
    A does); the soft labels always do.

    Reference: Cheng et al., "ChorusCVR: Chorus Supervision for Entire
    Space Post-Click Conversion Rate Modeling", WSDM 2026,
    arXiv:2502.08277. The re-implementations' network is a shared-bottom
    MLP `[256, 128]` with towers `[64, 32]` (`backbone="shared_bottom"`);
    tfcvr's default backbone is kept so estimators compare like for like.

    Args:
        ctcvr_weight: float. Eq. 3. Defaults to 1.0.
        cvr_weight: float. Eq. 4, the click-space IPW CVR term. Defaults to
            1.0.
        ctuncvr_weight: float. Eq. 7, the CTunCVR task. Defaults to 1.0.
        uncvr_weight: float. Eq. 9, the click-space IPW unCVR term.
            Defaults to 1.0.
        align_weight: float. λ, SAM's weight. Defaults to 1.0.
        ctr_weight: float. A separate `e(o, ô)` term (reading B has it).
            Defaults to 0.0.
        sam_weighting: str. `"inverse"` or `"multiplicative"`. Defaults to
            `"inverse"`.
        click_space_alignment: bool. Include SAM's click-space term (both
            readings do; the unclick-space term is SAM's core). Defaults to
            True.
        normalization: str. `"click"`, `"exposure"` or `"snips"`; of the
            inverse weights (Eqs. 4, 9 and reading A's SAM, over O and over
            N). Defaults to `"click"`.
        propensity_floor: float. Lower clip of `ô`. Defaults to 0.01.
        unclick_propensity_floor: float. Lower clip of `1 - ô`. Defaults
            to 0.01.
        stop_gradient_propensity: bool. Defaults to True.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Outputs: `(batch, 1)` `ctr`, `cvr`, `ctcvr`, `uncvr`, `ctuncvr`.
    """

    tasks = (keys.CTR, keys.CVR, keys.UNCVR)

    def __init__(
        self,
        schema,
        ctcvr_weight=1.0,
        cvr_weight=1.0,
        ctuncvr_weight=1.0,
        uncvr_weight=1.0,
        align_weight=1.0,
        ctr_weight=0.0,
        sam_weighting="inverse",
        click_space_alignment=True,
        normalization="click",
        propensity_floor=0.01,
        unclick_propensity_floor=0.01,
        stop_gradient_propensity=True,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(
            ctcvr_weight=ctcvr_weight,
            cvr_weight=cvr_weight,
            ctuncvr_weight=ctuncvr_weight,
            uncvr_weight=uncvr_weight,
            align_weight=align_weight,
            ctr_weight=ctr_weight,
        )
        if sam_weighting not in SAM_WEIGHTINGS:
            raise ValueError(
                f"sam_weighting must be one of {SAM_WEIGHTINGS}. Received: "
                f"sam_weighting={sam_weighting!r}"
            )
        if normalization not in F.NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {F.NORMALIZATIONS}. Received: "
                f"normalization={normalization!r}"
            )
        check_floors(
            propensity_floor=propensity_floor,
            unclick_propensity_floor=unclick_propensity_floor,
        )
        check_flags(
            click_space_alignment=click_space_alignment,
            stop_gradient_propensity=stop_gradient_propensity,
        )
        # === Config ===
        self.ctcvr_weight = ctcvr_weight
        self.cvr_weight = cvr_weight
        self.ctuncvr_weight = ctuncvr_weight
        self.uncvr_weight = uncvr_weight
        self.align_weight = align_weight
        self.ctr_weight = ctr_weight
        self.sam_weighting = sam_weighting
        self.click_space_alignment = click_space_alignment
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.unclick_propensity_floor = unclick_propensity_floor
        self.stop_gradient_propensity = stop_gradient_propensity

    def outputs_from_logits(self, logits, features=None, training=False):
        outputs = super().outputs_from_logits(logits, features, training)
        outputs[keys.CTUNCVR] = outputs[keys.CTR] * outputs[keys.UNCVR]
        return outputs

    # === Objective ===

    def inverse_weights(self, observed, propensity, floor):
        return F.propensity_weights(
            observed,
            propensity,
            normalization=self.normalization,
            floor=floor,
            stop_gradient=self.stop_gradient_propensity,
        )

    def alignment_weights(self, click, ctr):
        """`(a, b)`: SAM's per-row weights in the click and unclick space."""
        if self.sam_weighting == "inverse":
            return (
                self.inverse_weights(click, ctr, self.propensity_floor),
                self.inverse_weights(
                    1.0 - click, 1.0 - ctr, self.unclick_propensity_floor
                ),
            )
        p = ops.stop_gradient(ctr) if self.stop_gradient_propensity else ctr
        return (
            p / ops.maximum(F.batch_sum(click), 1.0),
            (1.0 - p) / ops.maximum(F.batch_sum(1.0 - click), 1.0),
        )

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        conversion = F.flat(labels[keys.CONVERSION])
        ctr = F.flat(outputs[keys.CTR])
        cvr = F.flat(outputs[keys.CVR])
        uncvr = F.flat(outputs[keys.UNCVR])
        clicked = self.inverse_weights(click, ctr, self.propensity_floor)

        def alignment():
            # Each tower learns the other's complement; the label side is a
            # constant, so each BCE moves only the tower it predicts.
            rows = self.bce(ops.stop_gradient(1.0 - uncvr), cvr) + self.bce(
                ops.stop_gradient(1.0 - cvr), uncvr
            )
            click_w, unclick_w = self.alignment_weights(click, ctr)
            terms = {"align_unclick": ops.sum(unclick_w * rows)}
            if self.click_space_alignment:
                terms["align_click"] = ops.sum(click_w * rows)
            return terms

        weighted = (
            (keys.CTCVR, self.ctcvr_weight, lambda: F.batch_mean(
                self.bce(click * conversion, outputs[keys.CTCVR]))),
            ("cvr_ipw", self.cvr_weight, lambda: ops.sum(
                clicked * self.bce(conversion, cvr))),
            (keys.CTUNCVR, self.ctuncvr_weight, lambda: F.batch_mean(
                self.bce(click * (1.0 - conversion), outputs[keys.CTUNCVR]))),
            ("uncvr_ipw", self.uncvr_weight, lambda: ops.sum(
                clicked * self.bce(1.0 - conversion, uncvr))),
            (keys.CTR, self.ctr_weight, lambda: F.batch_mean(
                self.bce(click, ctr))),
        )
        # A zero weight removes its term, so the rest is exactly the
        # objective without it.
        terms = {name: w * term() for name, w, term in weighted if w}
        if self.align_weight:
            for name, value in alignment().items():
                terms[name] = self.align_weight * value
        return terms
